"""The log's Visual line from run_dir/visual.json (what the plots show, in words).

MLP_node=active: slopes -0.0009/-0.0018 vs GT -0.001/-0.002, near-linear,
Embeddings=separated: 2 clusters, acc=0.97
"""

from __future__ import annotations

import math
from typing import Any

INACTIVE_FRACTION = 0.01  # node magnitude below 1% of the true one = flat at zero
NEAR_LINEAR_R2 = 0.95
SEPARATED_ACCURACY = 0.9


def number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def slopes_text(per_type: list[dict[str, Any]]) -> str:
    learned = "/".join(f"{round(number(fit['slope']), 4) + 0.0:.4f}" for fit in per_type)  # no "-0.0000"
    truth = "/".join(f"{number(fit['gt_slope']):g}" for fit in per_type)
    return f"slopes {learned} vs GT {truth}"


def describe_node(node: dict[str, Any], diverged: bool) -> str:
    per_type = node["per_type"]
    magnitude, gt_magnitude = number(node["magnitude"]), number(node.get("gt_magnitude"))
    if diverged or not math.isfinite(magnitude):
        return f"MLP_node=diverged: nan output, {slopes_text(per_type)}"
    if math.isfinite(gt_magnitude) and magnitude < INACTIVE_FRACTION * gt_magnitude:
        return f"MLP_node=inactive: flat at zero (magnitude {magnitude:.1g}), {slopes_text(per_type)}"
    linearity = min(number(fit["linearity_r2"]) for fit in per_type)
    shape = "near-linear" if linearity >= NEAR_LINEAR_R2 else f"non-linear (linear fit R2 {linearity:.2f})"
    return f"MLP_node=active: {slopes_text(per_type)}, {shape}"


def describe_embeddings(embedding: dict[str, Any]) -> str:
    n_clusters, accuracy = number(embedding["n_clusters"]), number(embedding["accuracy"])
    if not (math.isfinite(n_clusters) and math.isfinite(accuracy)):
        return "Embeddings=nan"
    count = int(n_clusters)
    plural = "cluster" if count == 1 else "clusters"
    if count <= 1:
        label = "collapsed"
    elif count == embedding.get("n_types", 2) and accuracy >= SEPARATED_ACCURACY:
        label = "separated"
    else:
        label = "mixed"
    return f"Embeddings={label}: {count} {plural}, acc={accuracy:.2f}"


def describe_visual(visual: dict) -> str:
    """visual.json (as a dict) -> the text after 'Visual: '."""
    return (
        f"{describe_node(visual['mlp_node'], bool(visual.get('diverged')))}, {describe_embeddings(visual['embedding'])}"
    )
