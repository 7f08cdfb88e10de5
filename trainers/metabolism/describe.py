"""The log's Visual line from run_dir/visual.json (what the plots show, in words).

MLP_node=active: slopes -0.0009/-0.0018 vs GT -0.001/-0.002 (ceiling -0.0010/-0.0014), near-linear,
Embeddings=separated: 2 clusters, acc=0.97 (strict 0.97, ARI 0.88)

The ceiling (issue 17) and the noise-honest figures are shown when visual.json has them;
the label (separated/mixed/collapsed) uses the strict accuracy then, the seed's otherwise.
"""

from __future__ import annotations

import math
from typing import Any

INACTIVE_FRACTION = 0.01  # node magnitude below 1% of the true one = flat at zero
NEAR_LINEAR_R2 = 0.95
SEPARATED_ACCURACY = 0.9


def number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def slopes_joined(per_type: list[dict[str, Any]], key: str) -> str:
    return "/".join(f"{round(number(fit[key]), 4) + 0.0:.4f}" for fit in per_type)  # no "-0.0000"


def slopes_text(per_type: list[dict[str, Any]]) -> str:
    truth = "/".join(f"{number(fit['gt_slope']):g}" for fit in per_type)
    text = f"slopes {slopes_joined(per_type, 'slope')} vs GT {truth}"
    if all("slope_ceiling" in fit for fit in per_type):
        text += f" (ceiling {slopes_joined(per_type, 'slope_ceiling')})"
    return text


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
    strict = number(embedding.get("accuracy_strict", accuracy))
    count = int(n_clusters)
    plural = "cluster" if count == 1 else "clusters"
    if count <= 1:
        label = "collapsed"
    elif count == embedding.get("n_types", 2) and strict >= SEPARATED_ACCURACY:
        label = "separated"
    else:
        label = "mixed"
    text = f"Embeddings={label}: {count} {plural}, acc={accuracy:.2f}"
    if "accuracy_strict" in embedding:
        text += f" (strict {strict:.2f}, ARI {number(embedding.get('adjusted_rand_index')):.2f})"
    return text


def describe_visual(visual: dict) -> str:
    """visual.json (as a dict) -> the text after 'Visual: '."""
    return (
        f"{describe_node(visual['mlp_node'], bool(visual.get('diverged')))}, {describe_embeddings(visual['embedding'])}"
    )
