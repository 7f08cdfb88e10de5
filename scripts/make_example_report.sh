#!/usr/bin/env bash
# Regenerate docs/example_report/ (REPORT.md and the PNGs it embeds) from a fresh demo exploration.
#   bash scripts/make_example_report.sh [ITERATIONS]
# Runs `ucbx run configs/demo.yaml` with the tiny trainer preset for ITERATIONS log entries
# (default 24: a few minutes on CPU) in a temporary folder, then `ucbx report` into docs/example_report/.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
iterations="${1:-24}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m agent.cli run configs/demo.yaml --workdir "$work/demo" --iterations "$iterations" \
    --set trainer.base_config=metabolism/tiny.yaml
rm -rf docs/example_report
mkdir -p docs/example_report
"$python" -m agent.cli report --workdir "$work/demo" --out docs/example_report
