"""A saved search run read the other way: the best single trial of each campaign, not the recommendation.

    python -m benchmarks.single_trial LABEL [--results DIR]

The harness scores a campaign by the reward of the config it would recommend. ucbx recommends
a node only after its seed replicates and reports the pooled mean over those seeds, while the
peers run every trial at the base seed and report their best single result. On a task whose
training seed matters (the real trainers) the two are not the same kind of number. This prints,
from ``results/search_<LABEL>.json``, the same regret table with every searcher scored by its
best single trial (ucbx's replicates included), beside the harness's figure, so a reader can
see both ways. Regret is against the best single reward any searcher found on that seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from benchmarks.harness import REFERENCE, Campaign, from_json, optima
from benchmarks.stats import bootstrap_interval, paired_test, simple_regret, wins_ties_losses

REPO = Path(__file__).resolve().parents[1]


def best_single(campaign: Campaign) -> float:
    return max((reward for reward in campaign.rewards if reward is not None), default=0.0)


def table(campaigns: list[Campaign]) -> str:
    """Per task and searcher: median regret of the recommendation and of the best single trial, with ucbx paired."""
    reference = optima(campaigns)
    lines = [
        "| task | searcher | regret of the recommendation: median [95% CI] | regret of the best single trial: "
        "median [95% CI] | ucbx best single trial: wins/ties/losses, Wilcoxon p |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    tasks = sorted({c.task for c in campaigns})
    for task in tasks:
        by_searcher: dict[str, dict[int, Campaign]] = {}
        for c in campaigns:
            if c.task == task:
                by_searcher.setdefault(c.searcher, {})[c.seed] = c
        ours = by_searcher.get(REFERENCE, {})
        for searcher, runs in by_searcher.items():
            seeds = sorted(runs)
            recommended = [simple_regret(reference[(task, s)], runs[s].best) for s in seeds]
            single = [simple_regret(reference[(task, s)], best_single(runs[s])) for s in seeds]
            compared = "-"
            if searcher != REFERENCE and ours:
                paired = [s for s in seeds if s in ours]
                mine = [simple_regret(reference[(task, s)], best_single(ours[s])) for s in paired]
                theirs = [simple_regret(reference[(task, s)], best_single(runs[s])) for s in paired]
                wins, ties, losses = wins_ties_losses(mine, theirs)
                compared = f"{wins}/{ties}/{losses}, {paired_test(mine, theirs).p_value:.3g}"
            lines.append(f"| {task} | {searcher} | {cell(recommended)} | {cell(single)} | {compared} |")
    return "\n".join(lines)


def cell(values: list[float]) -> str:
    low, high = bootstrap_interval(values)
    return f"{statistics.median(values):.3f} [{low:.3f}, {high:.3f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("label")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    path = args.results / f"search_{args.label}.json"
    print(table(from_json(json.loads(path.read_text(encoding="utf-8")))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
