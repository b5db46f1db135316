#!/usr/bin/env bash
# Stop every benchmark script of this machine (leaderboard.sh, tune.sh, few_shot.sh) and the runs under them, at once;
# the same commands resume them later from their last checkpoints. Usage: bash benchmarks/stop.sh
# The whole process tree is frozen first, then killed: killing a script first orphans its current run, which trains on
# holding its run folder's lock; killing the run first lets the leaderboard record a failure and start the next one.
tree() { echo "$1"; for child in $(pgrep -P "$1"); do tree "$child"; done; }
PIDS=$(for script in $(pgrep -f "benchmarks/(leaderboard|tune|few_shot)\.sh"); do tree "$script"; done)
if [ -z "$PIDS" ]; then
  echo "no benchmark script is running"
  exit 0
fi
# shellcheck disable=SC2086  # a list of process ids
kill -STOP $PIDS && kill -9 $PIDS
echo "stopped $(echo $PIDS | wc -w) processes"
