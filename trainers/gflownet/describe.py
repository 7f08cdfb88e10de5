"""The log's Visual line from a GFlowNet run's visual.json (what the plots show, in words).

Loss=falling: 362 -> 0.57 over 300 steps, log Z 21.6,
Samples=diverse: 4/4 modes, mean reward 0.35, e.g. MKWEYLAT, QRCPSSHN
"""

from __future__ import annotations

import math
from typing import Any

FALLING_FACTOR = 0.5  # the last tenth of the steps at most half the first tenth
COLLAPSED_DIVERSITY = 0.2


def number(value: Any) -> float:
    return math.nan if value is None else float(value)


def tenth_mean(values: list, last: bool) -> float:
    size = max(1, len(values) // 10)
    part = values[-size:] if last else values[:size]
    return sum(number(value) for value in part) / len(part)


def describe_loss(curves: dict[str, list]) -> str:
    losses = curves["loss"]
    start, end = tenth_mean(losses, last=False), tenth_mean(losses, last=True)
    label = "falling" if end <= FALLING_FACTOR * start else "flat"
    return f"Loss={label}: {start:.3g} -> {end:.3g} over {len(losses)} steps, log Z {number(curves['log_z'][-1]):.3g}"


def describe_samples(visual: dict[str, Any]) -> str:
    statistics = visual["statistics"]
    label = "collapsed" if number(statistics["diversity"]) < COLLAPSED_DIVERSITY else "diverse"
    return (
        f"Samples={label}: {statistics['modes_found']}/{visual['n_motifs']} modes, "
        f"mean reward {number(statistics['mean_reward']):.2f}, e.g. {', '.join(visual['samples'][:2])}"
    )


def describe_visual(visual: dict) -> str:
    """visual.json (as a dict) -> the text after 'Visual: '."""
    if visual.get("diverged"):
        losses = visual["curves"]["loss"]
        finite = sum(1 for value in losses if value is not None)
        return f"Loss=diverged: finite for {finite} step(s), nan from step {finite + 1}"
    return f"{describe_loss(visual['curves'])}, {describe_samples(visual)}"
