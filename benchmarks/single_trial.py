"""A saved search run read the other way: the best single trial of each campaign, not the recommendation.

    python -m benchmarks.single_trial LABEL [--results DIR]

Runs saved before the harness's final check were scored by the reward of the config each
searcher would recommend: for ucbx a pooled mean over its seed replicates, for the peers their
best single result at the base seed, not the same kind of number on a task whose training seed
matters (the real trainers). This prints, from ``results/search_<LABEL>.json``, the regret table
twice: as the harness scores it (the final check where the run has one), and with every searcher
scored by its best single trial (ucbx's replicates included), against the best single reward any
searcher found on that seed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks.harness import Campaign, from_json, table

REPO = Path(__file__).resolve().parents[1]


def by_best_single_trial(campaign: Campaign) -> Campaign:
    """The campaign scored by its best single trial so far instead of its recommendation."""
    rewards = [0.0 if reward is None else reward for reward in campaign.rewards]
    return replace(campaign, best_so_far=list(itertools.accumulate(rewards, max)), final_rewards=[])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("label")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    path = args.results / f"search_{args.label}.json"
    campaigns = from_json(json.loads(path.read_text(encoding="utf-8")))
    print(f"As the harness scores it:\n\n{table(campaigns)}\n")
    print(f"Scored by the best single trial:\n\n{table([by_best_single_trial(c) for c in campaigns])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
