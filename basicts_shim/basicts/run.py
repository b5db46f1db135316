"""`python -m basicts.run -c CONFIG.py`: installed by stvfm-plugin; see `stvfm_plugin.run`."""
from stvfm_plugin.run import main

if __name__ == "__main__":
    raise SystemExit(main())
