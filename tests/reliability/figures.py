"""Sum the figures the reliability suites wrote: `python -m tests.reliability.figures FILE.jsonl`.

Each suite appends JSON lines to $UCBX_RELIABILITY_FIGURES (see harness.record_figures);
this prints them grouped by suite, with the totals RELIABILITY.md quotes.
"""

from __future__ import annotations

import collections
import json
import sys


def summarise(lines: list[dict]) -> str:
    out = []
    by_suite = collections.defaultdict(list)
    for line in lines:
        by_suite[line.pop("suite")].append(line)
    kills = sum(r.get("injected_kills", 0) + r.get("random_kills", 0) for r in by_suite.get("restart", []))
    faults = sum(r.get("faults", 0) for s in ("training-faults", "training-faults-slurm") for r in by_suite.get(s, []))
    folder = sum(r.get("tried", 0) for r in by_suite.get("folder-faults", []))
    bad = sum(v for r in by_suite.get("bad-input", []) for k, v in r.items() if isinstance(v, int) and k != "long")
    out.append(
        f"kills survived: {kills}; training faults classified: {faults}; folder faults tried: {folder}; "
        f"bad inputs tried: {bad}"
    )
    for suite, records in by_suite.items():
        for record in records:
            out.append(f"- {suite}: " + ", ".join(f"{k}={v}" for k, v in record.items()))
    return "\n".join(out)


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(summarise([json.loads(line) for line in handle if line.strip()]))
