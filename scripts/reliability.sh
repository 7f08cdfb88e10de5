#!/usr/bin/env bash
# The reliability suites (tests/reliability, RELIABILITY.md), with their figures.
#   bash scripts/reliability.sh            # long profile: more kills, more examples, 100,000 entries (~40 min)
#   bash scripts/reliability.sh quick      # the CI profile (what `pytest tests/` runs), with figures
#   bash scripts/reliability.sh long -k restart    # extra arguments go to pytest
# Figures: JSON lines in $UCBX_RELIABILITY_FIGURES (default /tmp/ucbx-reliability-<profile>.jsonl), summed at the end.
# The SLURM tests use the single-node SLURM of scripts/slurm-local.sh (start it first: scripts/slurm-local.sh up).
set -uo pipefail
cd "$(dirname "$0")/.."
profile="${1:-long}"
[ $# -gt 0 ] && shift
case "$profile" in
    long) export UCBX_RELIABILITY=long ;;
    quick) unset UCBX_RELIABILITY ;;
    *) echo "usage: scripts/reliability.sh [long|quick] [pytest args...]" >&2; exit 2 ;;
esac
export UCBX_RELIABILITY_FIGURES="${UCBX_RELIABILITY_FIGURES:-/tmp/ucbx-reliability-$profile.jsonl}"
: > "$UCBX_RELIABILITY_FIGURES"
if [ -z "${SLURM_CONF:-}" ] && [ -x scripts/slurm-local.sh ]; then
    conf="$(scripts/slurm-local.sh env 2>/dev/null | sed -n 's/^SLURM_CONF=//p')"
    [ -n "$conf" ] && [ -f "$conf" ] && export SLURM_CONF="$conf"
fi
python=".venv/bin/python"
[ -x "$python" ] || python=python3
started=$(date +%s)
"$python" -m pytest tests/reliability -q -rxXs -p no:cacheprovider "$@"
status=$?
echo "reliability ($profile): pytest exit $status in $(( $(date +%s) - started )) s"
"$python" -m tests.reliability.figures "$UCBX_RELIABILITY_FIGURES"
exit "$status"
