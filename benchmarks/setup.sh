# Sourced by leaderboard.sh and tune.sh with the dataset name: sets REPO, SHARED, WORK and PY, prepares the dataset
# from ../shared/data on first use, points ST-VFM at the shared backbone weights, and moves into benchmarks/work/.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${STVFM_SHARED:-$REPO/../shared}
WORK=$REPO/benchmarks/work
PY=${PYTHON:-python}
case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;; esac  # a relative path survives the cd below
PREPARE_ARGS=()
case $1 in
  LosLoop) RAW=$SHARED/data/los_loop ;;
  SZTaxi) RAW=$SHARED/data/sz_taxi ;;
  # the grid benchmark: 2014 up to September (the files lack most of each September), both channels (trip starts and
  # ends), the issue's own measuring ground (3,499 / 1,166 / 1,167 hourly steps)
  TaxiNYC) RAW=$SHARED/data/taxi_nyc; PREPARE_ARGS=(--years 2014 --until 2014-09-01) ;;
  *) echo "error: these scripts know LosLoop, SZTaxi and TaxiNYC; for others call python -m stvfm_plugin.leaderboard" >&2
     exit 2 ;;
esac
# a relative weights path given by the caller means the caller's folder, not benchmarks/work/ (the cd below)
case ${STVFM_BACKBONE_WEIGHTS:-} in ""|/*) ;; *) STVFM_BACKBONE_WEIGHTS=$(pwd)/$STVFM_BACKBONE_WEIGHTS ;; esac
mkdir -p "$WORK"
cd "$WORK"
if [ ! -f "datasets/$1/meta.json" ]; then
  [ -d "$RAW" ] || { echo "error: raw data not found at $RAW (set STVFM_SHARED)" >&2; exit 2; }
  "$PY" -m stvfm_plugin.data prepare --preset "$1" --src "$RAW" "${PREPARE_ARGS[@]}"
fi
export STVFM_BACKBONE_WEIGHTS=${STVFM_BACKBONE_WEIGHTS:-$SHARED/weights}
