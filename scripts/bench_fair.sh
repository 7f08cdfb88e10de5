#!/usr/bin/env bash
# Every fair-protocol table and figure (issue 15) for one seed range, with one command.
#   bash scripts/bench_fair.sh FIRST_SEED N_SEEDS [--held-out]
#   bash scripts/bench_fair.sh 0 30                 # development seeds 0-29
#   bash scripts/bench_fair.sh 7000 30 --held-out   # the held-out range (HELD_OUT_FROM), once, after the engine is frozen
# Writes benchmarks/results/search_fair_<FIRST>_<LAST>_<what>.{md,json,png}:
#   b24, b48, b96      every searcher but gp, synthetic + standard tasks, priorities equal
#   b48_spec           the same at budget 48 with the spec's priorities (labelled so)
#   b48_gp             ucbx and Optuna's GPSampler at budget 48 on GP_SEEDS seeds (GP: 20-60 s a campaign here)
#   trainers_b48       ucbx and every peer but gp on the real trainers (the demo's weak regime, causal, gflownet)
#                      on TRAINER_SEEDS seeds: tens of seconds per trial; skipped unless TRAINERS=1
# Environment: PYTHON (default .venv/bin/python), GP_SEEDS (default 5), TRAINER_SEEDS (default 3),
# TRAINERS=1 to run the trainers, WORKERS (default 2) training processes for them.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
if [ "$#" -lt 2 ]; then
    echo "usage: bash scripts/bench_fair.sh FIRST_SEED N_SEEDS [--held-out]" >&2
    exit 2
fi
first="$1"
count="$2"
shift 2
held=("$@")
last=$((first + count - 1))
tag="fair_${first}_${last}"
tasks=(synthetic-lr-cliff synthetic-slot-optimum synthetic-noisy synthetic-lr-cliff-near synthetic-strategy
       standard-branin standard-hartmann6 standard-log-ridge standard-conditional)
peers=(ucbx tpe tpe-per-slot cmaes random grid public-rule)
search() {
    local started=$SECONDS
    "$python" -W ignore -m benchmarks search --first-seed "$first" "${held[@]}" "$@"
    echo "== $* : $((SECONDS - started)) s" >&2
}

for budget in 24 48 96; do
    search --n-seeds "$count" --budget "$budget" --tasks "${tasks[@]}" --searchers "${peers[@]}" \
        --priorities equal --label "${tag}_b${budget}"
done
search --n-seeds "$count" --budget 48 --tasks "${tasks[@]}" --searchers "${peers[@]}" \
    --priorities spec --label "${tag}_b48_spec"
search --n-seeds "$(( ${GP_SEEDS:-5} < count ? ${GP_SEEDS:-5} : count ))" --budget 48 --tasks "${tasks[@]}" \
    --searchers ucbx gp --priorities equal --label "${tag}_b48_gp"
if [ "${TRAINERS:-0}" = 1 ]; then
    search --n-seeds "$(( ${TRAINER_SEEDS:-3} < count ? ${TRAINER_SEEDS:-3} : count ))" --budget 48 \
        --tasks trainer-metabolism-weak trainer-causal trainer-gflownet --searchers "${peers[@]}" \
        --workers "${WORKERS:-2}" --priorities equal --label "${tag}_trainers_b48"
fi
