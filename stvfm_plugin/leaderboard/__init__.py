"""The head-to-head leaderboard: `python -m stvfm_plugin.leaderboard run|report`."""
