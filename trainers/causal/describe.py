"""The log's Visual line from a causal run's visual.json (what the plots show, in words).

    Graph=learning: 11 edges above 0.5, logit std 0.18, F1 0.42 (best threshold 0.50),
    Gradients=calm: clipped 96% -> 0% of steps (first -> last epoch), norm 0.13

Graph is ``collapsed`` (no edge above the threshold, or all logits alike), ``undecided``
(the best threshold is 0: nothing beats predicting every edge) or ``learning``.
"""

from __future__ import annotations

import math
from typing import Any

COLLAPSED_LOGIT_STD = 0.01  # below this every edge logit is the same number (seed 001's "quantization")
EXPLODING_CLIP_RATIO = 0.9  # a last epoch this clipped never calmed down


def number(value: Any) -> float:
    return math.nan if value is None else float(value)


def describe_graph(curves: dict[str, list], visual: dict[str, Any]) -> str:
    edges, spread = number(curves["edge_count"][-1]), number(curves["logit_std"][-1])
    f1s = [number(value) for value in visual["f1_per_threshold"]]
    best = max(range(len(f1s)), key=lambda i: f1s[i])
    if edges == 0 or spread < COLLAPSED_LOGIT_STD:
        label = "collapsed"
    elif best == 0:
        label = "undecided"  # no threshold beats predicting every edge (seed 002's "best threshold 0.000")
    else:
        label = "learning"
    return (
        f"Graph={label}: {edges:.0f} edges above {number(visual['edge_threshold']):g}, logit std {spread:.2g}, "
        f"F1 {f1s[best]:.2f} (best threshold {number(visual['thresholds'][best]):.2f})"
    )


def describe_gradients(curves: dict[str, list]) -> str:
    first, last = number(curves["grad_clip_ratio"][0]), number(curves["grad_clip_ratio"][-1])
    label = "exploding" if last >= EXPLODING_CLIP_RATIO else "calm"
    return (
        f"Gradients={label}: clipped {first:.0%} -> {last:.0%} of steps (first -> last epoch), "
        f"norm {number(curves['grad_norm'][-1]):.2g}"
    )


def describe_visual(visual: dict) -> str:
    """visual.json (as a dict) -> the text after 'Visual: '."""
    curves = visual["curves"]
    if visual.get("diverged") or not curves["edge_count"]:
        return f"Graph=diverged: non-finite loss after {len(curves['edge_count'])} epochs"
    return f"{describe_graph(curves, visual)}, {describe_gradients(curves)}"
