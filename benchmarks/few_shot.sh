#!/usr/bin/env bash
# Few-shot rows (issue 47) of a dataset's committed report: bash benchmarks/few_shot.sh SZTaxi|TaxiNYC
#
# The rows trained on the most recent 10 % and 25 % of the training split (FRACTIONS), under the committed
# leaderboard's budget, protocol, seeds and report folder (benchmarks/leaderboard.sh with ROWS; the report's "Few-shot"
# section and few_shot.png put them against the same rows on all of the data): ST-VFM with its pretrained, random and
# no backbone, STID, the dataset's best converged baseline (BEST), GPT4TS (the other frozen foundation model) and the
# historical mean (the only naive reference that learns from the training split; the others give the same numbers at
# every share). Every row at 10 % first: the issue's goal is decided there. Resumes like leaderboard.sh.
set -euo pipefail
DATASET=${1:?usage: bash benchmarks/few_shot.sh SZTaxi|TaxiNYC}
case $DATASET in
  SZTaxi) BEST=${BEST:-STLLM} ;;  # results/SZTaxi: ST-LLM 3.218 ± 0.007, the best converged baseline
  TaxiNYC) BEST=${BEST:?set BEST to the best converged baseline of results/TaxiNYC (its report is not converged yet)} ;;
  *) echo "error: few-shot rows are planned for SZTaxi and TaxiNYC (Los-loop's 4 training days are too few to cut)" >&2
     exit 2 ;;
esac
ROWS=""
for F in ${FRACTIONS:-0.1 0.25}; do
  for ROW in STVFM STVFM:pretrained=False STVFM:vfm_layers=0 STID "$BEST" GPT4TS HistoricalMean; do
    case $ROW in *:*) ROWS="$ROWS $ROW,train_fraction=$F" ;; *) ROWS="$ROWS $ROW:train_fraction=$F" ;; esac
  done
done
ROWS=$ROWS exec bash "$(dirname "$0")/leaderboard.sh" "$DATASET"
