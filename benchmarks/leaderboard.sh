#!/usr/bin/env bash
# The committed CPU leaderboard of one dataset: bash benchmarks/leaderboard.sh LosLoop|SZTaxi
#
# Prepares the dataset from ../shared/data on first use, trains the eleven models under one budget
# (see BUDGET below) and writes the report to benchmarks/results/<dataset>/. Runs and logs live in
# benchmarks/work/ (not committed). Interrupt it at any time: the same command resumes, skipping
# finished models. Threads: OMP_NUM_THREADS (torch's default: all cores).
set -euo pipefail
DATASET=${1:?usage: bash benchmarks/leaderboard.sh LosLoop|SZTaxi}
REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${STVFM_SHARED:-$REPO/../shared}
WORK=$REPO/benchmarks/work
PY=${PYTHON:-python}
case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;; esac  # a relative path survives the cd below

case $DATASET in
  LosLoop) RAW=$SHARED/data/los_loop ;;
  SZTaxi) RAW=$SHARED/data/sz_taxi ;;
  *) echo "error: this script knows LosLoop and SZTaxi; for others call python -m stvfm_plugin.leaderboard" >&2; exit 2 ;;
esac
mkdir -p "$WORK"
cd "$WORK"
if [ ! -f "datasets/$DATASET/meta.json" ]; then
  [ -d "$RAW" ] || { echo "error: raw data not found at $RAW (set STVFM_SHARED)" >&2; exit 2; }
  "$PY" -m stvfm_plugin.data prepare --preset "$DATASET" --src "$RAW"
fi
export STVFM_BACKBONE_WEIGHTS=${STVFM_BACKBONE_WEIGHTS:-$SHARED/weights}

# BUDGET: the same for every model. 3 epochs at most (early stopping on validation MAE, patience 3), seed 1.
# Every frozen foundation backbone uses its first 2 blocks/layers (ST-VFM: DINOv2-S/14; GPT4TS and ST-LLM:
# all-MiniLM-L6-v2, the language model these machines have; ST-LLM trains the attention of its last layer).
# Cheap models first, so that a cut-short run still ranks most of them.
"$PY" -m stvfm_plugin.leaderboard run --dataset "$DATASET" \
  --models STID DLinear StemGNN STVFM GWNet STLLM iTransformer PatchTST GPT4TS NHiTS DeepAR \
  --epochs 3 --patience 3 --seeds 1 \
  --config-dir "$REPO/baselines_cfg" --out "$WORK/leaderboard/$DATASET" \
  --report-dir "$REPO/benchmarks/results/$DATASET" \
  --set STVFM:model_config.vfm_layers=2 \
  --set GPT4TS:model_config.backbone=all-minilm-l6-v2 --set GPT4TS:model_config.llm_layers=2 \
  --set STLLM:model_config.backbone=all-minilm-l6-v2 --set STLLM:model_config.llm_layers=2 \
  --set STLLM:model_config.unfrozen_layers=1
