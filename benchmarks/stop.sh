#!/usr/bin/env bash
# Stop every benchmark script of this machine (leaderboard.sh, tune.sh, few_shot.sh) and the runs under them, at once;
# the same commands resume them later from their last checkpoints. Usage: bash benchmarks/stop.sh
# Freeze the whole tree first, then kill it (killing a parent first
# orphans its runs, which train on; killing a run first lets its parent record a failure and start the next one)
tree() { echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
PIDS=$(for p in $(pgrep -f "bash benchmarks/(leaderboard|tune|few_shot).sh"); do tree "$p"; done)
[ -n "$PIDS" ] && kill -STOP $PIDS && kill -9 $PIDS
