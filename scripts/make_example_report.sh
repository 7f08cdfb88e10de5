#!/usr/bin/env bash
# Regenerate docs/example_report/ (REPORT.md and the PNGs it embeds) from a fresh demo exploration.
#   bash scripts/make_example_report.sh [ITERATIONS]
# Default: `ucbx run configs/demo.yaml` as shipped (the demo trainer preset, from lr_node_homeo 1e-5)
# for 48 log entries (issue 17; 14 min on a 2-core CPU with the Phase 1 cache warm, ~3 min more the
# first time), then `ucbx report` into docs/example_report/. The reading of the committed report:
# README.md ("What the example report found") and BENCHMARKS.md (issue 17, 48-iteration demo).
# Environment:
#   EXAMPLE_PRESET=tiny  the quick version: trainer preset metabolism/tiny.yaml, 24 entries by default
#                        (a few minutes; for checking the pipeline, not the committed report)
#   EXAMPLE_WORKDIR=DIR  keep the exploration folder in DIR (must not exist yet) instead of a
#                        temporary folder that is deleted at exit
#   EXAMPLE_OUT=DIR      write the report to DIR instead of docs/example_report (replaced either way)
#   PYTHON               interpreter (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
preset="${EXAMPLE_PRESET:-demo}"
case "$preset" in
    demo) default_iterations=48; overrides=() ;;
    tiny) default_iterations=24; overrides=(--set trainer.base_config=metabolism/tiny.yaml) ;;
    *) echo "make_example_report.sh: EXAMPLE_PRESET must be demo or tiny, got '$preset'" >&2; exit 2 ;;
esac
iterations="${1:-$default_iterations}"
out="${EXAMPLE_OUT:-docs/example_report}"
if [[ -n "${EXAMPLE_WORKDIR:-}" ]]; then
    if [[ -e "$EXAMPLE_WORKDIR" ]]; then
        echo "make_example_report.sh: EXAMPLE_WORKDIR $EXAMPLE_WORKDIR already exists" >&2
        exit 2
    fi
    work="$EXAMPLE_WORKDIR"
else
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    work="$tmp/demo"
fi

"$python" -m agent.cli run configs/demo.yaml --workdir "$work" --iterations "$iterations" "${overrides[@]}"
rm -rf "$out"
mkdir -p "$out"
"$python" -m agent.cli report --workdir "$work" --out "$out"
