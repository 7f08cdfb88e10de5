"""Evaluation: the only code that reads the ground truth.

`Evaluator` holds what a run's evaluation needs besides the model (the truth, the observed
states, Phase 1's ceilings and R2). train.py builds it after Phase 1 and asks it for the
metrics of the model at the progress checkpoints of Phase 2 (numbers written to
progress.jsonl, never a loss or a gradient) and after training (analysis.log); both go
through the same `Evaluator.model_metrics`, so the last checkpoint says what the log says.

Owns the seed's metrics: rate-constant R2 (log10, identity line; fitted-line and trimmed
variants), per-type slope/offset of the node function against -lambda_t (c - c_base_t),
node magnitude, and embedding clustering (DBSCAN on isotropically standardised
embeddings, Hungarian matching to the true types).

Beyond the seed (issue 17):

- the identifiable ceiling per type: the least-squares line through the one-step
  residuals (observed dc/dt minus the frozen Phase 1 reaction part) of the type's
  metabolites, over the same states as the slope fit. It is the best linear homeostatic
  term any MLP_node can fit on top of that Phase 1; ``slope_vs_ceiling`` = learned slope /
  ceiling slope, ``slope_ceiling_ratio`` = ceiling slope / true slope.
- ``worst_slope_ratio``: the slope ratio of the type furthest from 1 in log distance
  (|log r|; a ratio <= 0 is the furthest possible, the first such type counts; nan if any
  ratio is nan). It is the ratio itself (0.62, not 0.38), so 1.0 is best and a band
  [0.8, 1.25) on it holds only when every type is within it. ``worst_slope_vs_ceiling``
  is the same rule on the vs-ceiling ratios.
- clustering that does not reward DBSCAN noise: ``embedding_cluster_acc_strict`` counts
  noise points as misclassified (only real clusters are matched to types);
  ``embedding_ari`` is the adjusted Rand index with every noise point its own singleton.
  ``embedding_cluster_acc`` (the seed's figure, noise matched as one more group) stays
  for comparison with the seed's logs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score, silhouette_score

from trainers.metabolism.simulator import GroundTruth

# A node function maps concentrations (n_points, n_metabolites) to dc/dt contributions of
# the same shape: column i is metabolite i's homeostatic term at those concentrations.
NodeFunction = Callable[[np.ndarray], np.ndarray]

RANGE_PERCENTILES = (1.0, 99.0)  # fit over the concentrations the data visits
TRIM_FRACTION = 0.05
DBSCAN_EPS = 0.5
DBSCAN_MIN_SAMPLES = 3
EMBEDDING_METRICS = (
    "embedding_cluster_acc",
    "embedding_cluster_acc_strict",
    "embedding_ari",
    "embedding_n_clusters",
    "embedding_silhouette",
)


class Evaluator:
    """The ground-truth side of one run's evaluation."""

    def __init__(
        self, truth: GroundTruth, observed: np.ndarray, phase1_residuals: np.ndarray, phase1_log_k: np.ndarray
    ):
        self.truth = truth
        self.observed = observed
        self.ceilings = ceiling_fits(observed[:-1], phase1_residuals, truth)
        self.phase1_r2 = rate_constant_metrics(phase1_log_k, truth.log_k)["rate_constants_R2"]

    def fits(self, node_function: NodeFunction) -> list[dict[str, float]]:
        """Per type: the node function's line against the truth, with the type's ceiling."""
        return with_ceilings(node_function_fits(node_function, self.observed, self.truth), self.ceilings)

    def rate_metrics(self, log_k: np.ndarray) -> dict[str, float]:
        """The rate constants' R2 and friends, Phase 1's R2 and the drop from it."""
        metrics = rate_constant_metrics(log_k, self.truth.log_k)
        return {
            **metrics,
            "phase1_rate_constants_R2": self.phase1_r2,
            "rate_constants_R2_drop": self.phase1_r2 - metrics["rate_constants_R2"],
        }

    def model_metrics(
        self, fits: list[dict[str, float]], node_function: NodeFunction, embeddings: np.ndarray
    ) -> dict[str, float]:
        """The node function's and the embeddings' metrics (``fits`` from `fits`)."""
        return {
            **node_metrics(fits, node_magnitude(node_function, self.observed)),
            **embedding_clusters(embeddings, self.truth.types),
        }

    def checkpoint_metrics(
        self, node_function: NodeFunction, embeddings: np.ndarray, log_k: np.ndarray
    ) -> dict[str, float]:
        """Every truth-side metric of a model during training, as analysis.log names them."""
        return {
            **self.rate_metrics(log_k),
            **self.model_metrics(self.fits(node_function), node_function, embeddings),
        }


def r_squared(predicted: np.ndarray, observed: np.ndarray) -> float:
    residual = np.sum((observed - predicted) ** 2)
    total = np.sum((observed - observed.mean()) ** 2)
    return float(1.0 - residual / total) if total > 0 else float("nan")


def rate_constant_metrics(learned_log_k: np.ndarray, true_log_k: np.ndarray) -> dict[str, float]:
    """R2 of learned vs true log10 k: against y = x, against the fitted line, and trimmed."""
    if not np.all(np.isfinite(learned_log_k)):
        nan = float("nan")
        return {"rate_constants_R2": nan, "rate_constants_R2_fit": nan, "rate_constants_R2_trimmed": nan}
    slope, intercept = np.polyfit(true_log_k, learned_log_k, 1)
    errors = np.abs(learned_log_k - true_log_k)
    keep = errors <= np.quantile(errors, 1.0 - TRIM_FRACTION)
    return {
        "rate_constants_R2": r_squared(learned_log_k, true_log_k),
        "rate_constants_R2_fit": r_squared(slope * true_log_k + intercept, learned_log_k),
        "rate_constants_R2_trimmed": r_squared(learned_log_k[keep], true_log_k[keep]),
    }


def ground_truth_node_function(truth: GroundTruth) -> NodeFunction:
    lambdas, baselines = truth.lambdas[truth.types], truth.baselines[truth.types]
    return lambda concentrations: -lambdas * (concentrations - baselines)


def type_concentration_range(concentrations: np.ndarray, types: np.ndarray, type_index: int) -> tuple[float, float]:
    low, high = np.percentile(concentrations[:, types == type_index], RANGE_PERCENTILES)
    return float(low), float(high)


def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """slope, offset and R2 of y ~ slope x + offset (R2 = 1 for a constant y)."""
    slope, offset = (float(v) for v in np.polyfit(x, y, 1))
    linearity = r_squared(slope * x + offset, y) if np.ptp(y) > 0 else 1.0
    return slope, offset, linearity


def node_function_fits(
    node_function: NodeFunction, concentrations: np.ndarray, truth: GroundTruth
) -> list[dict[str, float]]:
    """Per type: line through the node term at the states the data visits, with the truth.

    The fit uses the points (c_i(t), f_i(c_i(t))) of every frame t and every metabolite i
    of the type, so each metabolite's curve is judged where it was trained and not
    extrapolated. linearity_r2 is the mean R2 of the per-metabolite line fits.
    """
    values = node_function(concentrations)
    fits = []
    for type_index, (lam, baseline) in enumerate(zip(truth.lambdas, truth.baselines)):
        members = np.flatnonzero(truth.types == type_index)
        gt_slope, gt_offset = -float(lam), float(lam * baseline)
        x, y = concentrations[:, members], values[:, members]
        if np.all(np.isfinite(y)):
            slope, offset, _ = linear_fit(x.ravel(), y.ravel())
            linearity = float(np.mean([linear_fit(x[:, i], y[:, i])[2] for i in range(len(members))]))
        else:
            slope = offset = linearity = float("nan")
        fits.append(
            {
                "type": type_index,
                "slope": slope,
                "gt_slope": gt_slope,
                "offset": offset,
                "gt_offset": gt_offset,
                "slope_ratio": slope / gt_slope,
                "offset_ratio": offset / gt_offset,
                "linearity_r2": linearity,
                "range": list(type_concentration_range(concentrations, truth.types, type_index)),
            }
        )
    return fits


def ceiling_fits(states: np.ndarray, residuals: np.ndarray, truth: GroundTruth) -> list[dict[str, float]]:
    """Per type: the least-squares line through (c_i(t), residual_i(t)) of the type's metabolites.

    ``states`` (frames, n) are the observed states c_t, ``residuals`` the observed one-step
    dc/dt at them minus the Phase 1 reaction part (nan where the reaction part is nan).
    """
    ceilings = []
    for type_index, lam in enumerate(truth.lambdas):
        members = np.flatnonzero(truth.types == type_index)
        x, y = states[:, members].ravel(), residuals[:, members].ravel()
        if np.all(np.isfinite(y)):
            slope, offset, _ = linear_fit(x, y)
        else:
            slope = offset = float("nan")
        ceilings.append({"slope_ceiling": slope, "offset_ceiling": offset, "slope_ceiling_ratio": slope / -float(lam)})
    return ceilings


def with_ceilings(fits: list[dict[str, float]], ceilings: list[dict[str, float]]) -> list[dict[str, float]]:
    """The fits with their type's ceiling and the learned slope's ratio to it."""
    return [
        {**fit, **ceiling, "slope_vs_ceiling": fit["slope"] / ceiling["slope_ceiling"]}
        for fit, ceiling in zip(fits, ceilings)
    ]


def worst_ratio(ratios: list[float]) -> float:
    """The ratio furthest from 1 in log distance; a ratio <= 0 is furthest; nan if any is nan."""
    if not ratios or any(np.isnan(r) for r in ratios):
        return float("nan")
    return max(ratios, key=lambda r: abs(np.log(r)) if r > 0 else np.inf)


def node_magnitude(node_function: NodeFunction, concentrations: np.ndarray) -> float:
    """Mean |node term| over every observed state of every metabolite."""
    return float(np.mean(np.abs(node_function(concentrations))))


def standardise(embeddings: np.ndarray) -> np.ndarray:
    """Centre, then divide by one overall scale (the RMS distance to the centre).

    Isotropic on purpose: scaling each axis to unit variance would blow a direction that
    carries only jitter up to the size of the one that separates the clusters.
    """
    centred = embeddings - embeddings.mean(axis=0)
    scale = np.sqrt(np.mean(np.sum(centred**2, axis=1)))
    return centred / scale if scale > 0 else centred


def embedding_clusters(embeddings: np.ndarray, types: np.ndarray) -> dict[str, float]:
    """DBSCAN on standardised embeddings; accuracy after the best cluster-to-type matching.

    ``embedding_cluster_acc`` (the seed's figure): DBSCAN noise points form one more group
    for the matching (they match at most one type), so one cluster plus outliers can score
    high. ``embedding_cluster_acc_strict``: only real clusters are matched, noise points
    count as misclassified. ``embedding_ari``: adjusted Rand index, each noise point its
    own singleton cluster. The silhouette of a single cluster is undefined; it is reported
    as 0.0.
    """
    if not np.all(np.isfinite(embeddings)):
        return dict.fromkeys(EMBEDDING_METRICS, float("nan"))
    standardised = standardise(embeddings)
    labels = DBSCAN(eps=DBSCAN_EPS, min_samples=DBSCAN_MIN_SAMPLES).fit_predict(standardised)
    clusters = np.unique(labels)
    n_types = int(types.max()) + 1
    contingency = np.array(
        [[np.sum((labels == cluster) & (types == t)) for t in range(n_types)] for cluster in clusters]
    )
    accuracy = matched_fraction(contingency, len(types))
    strict = matched_fraction(contingency[clusters >= 0], len(types))
    n_clusters = int(np.sum(clusters >= 0))
    distinct = len(clusters)
    silhouette = float(silhouette_score(standardised, labels)) if 1 < distinct < len(labels) else 0.0
    noise = labels < 0
    singletons = np.where(noise, labels.max() + 1 + np.cumsum(noise), labels)
    return {
        "embedding_cluster_acc": accuracy,
        "embedding_cluster_acc_strict": strict,
        "embedding_ari": float(adjusted_rand_score(types, singletons)),
        "embedding_n_clusters": float(n_clusters),
        "embedding_silhouette": silhouette,
    }


def matched_fraction(contingency: np.ndarray, n_points: int) -> float:
    """Points on the best one-to-one matching of clusters (rows) to types, over all points."""
    if contingency.size == 0:
        return 0.0
    rows, columns = linear_sum_assignment(-contingency)
    return float(contingency[rows, columns].sum() / n_points)


def node_metrics(fits: list[dict[str, float]], magnitude: float) -> dict[str, float]:
    """The analysis.log names of the node-function metrics (``fits`` with their ceilings)."""
    metrics = {"phase2_node_magnitude": magnitude}
    for fit in fits:
        t = fit["type"]
        metrics.update(
            {
                f"MLP_node_slope_{t}": fit["slope"],
                f"MLP_node_gt_slope_{t}": fit["gt_slope"],
                f"MLP_node_offset_{t}": fit["offset"],
                f"MLP_node_gt_offset_{t}": fit["gt_offset"],
                f"MLP_node_slope_ratio_{t}": fit["slope_ratio"],
                f"MLP_node_offset_ratio_{t}": fit["offset_ratio"],
                f"MLP_node_slope_ceiling_{t}": fit["slope_ceiling"],
                f"MLP_node_offset_ceiling_{t}": fit["offset_ceiling"],
                f"MLP_node_slope_ceiling_ratio_{t}": fit["slope_ceiling_ratio"],
                f"MLP_node_slope_vs_ceiling_{t}": fit["slope_vs_ceiling"],
            }
        )
    metrics["avg_slope_ratio"] = float(np.mean([fit["slope_ratio"] for fit in fits]))
    metrics["worst_slope_ratio"] = worst_ratio([fit["slope_ratio"] for fit in fits])
    metrics["worst_slope_vs_ceiling"] = worst_ratio([fit["slope_vs_ceiling"] for fit in fits])
    return metrics
