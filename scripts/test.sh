#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine of this kind, then run it.
#   bash scripts/test.sh [pytest args...]
# - a virtual environment in .venv with ucbx and its test extras (torch==2.13.0: the local CPU build);
# - the single-node SLURM of scripts/slurm-local.sh when running as root (SLURM tests skip otherwise;
#   a SLURM that was already up is used and left running);
# - pytest on tests/.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet torch==2.13.0 -e '.[test,bench]'

started_slurm=0
if [ "$(id -u)" = 0 ] && ! scripts/slurm-local.sh status >/dev/null 2>&1; then
    if scripts/slurm-local.sh up; then
        started_slurm=1
    else
        echo "scripts/test.sh: SLURM did not start; the SLURM tests will skip" >&2
    fi
fi
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$started_slurm" = 1 ]; then
    scripts/slurm-local.sh down || true
fi
exit "$status"
