"""The synthetic SEM: a random DAG, heavy-tailed noise, features on very different raw scales.

Like the 13 UCI Air Quality sensors of seed 001: each feature lives on its own scale
(the widest spans about 0..2775, the narrowest about 0..1), the noise is Student-t.
`make_sem` returns two separate things: `Observations` (what training may see) and
`GroundTruth` (the true graph, read only by the evaluation after training).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Observations:
    """Samples x variables, raw scale, split once; the only thing training receives."""

    train: np.ndarray
    val: np.ndarray


@dataclass(frozen=True)
class GroundTruth:
    """``adjacency[i, j] = 1`` when variable i causes variable j."""

    adjacency: np.ndarray


def random_dag(n_variables: int, n_edges: int, rng: np.random.Generator) -> np.ndarray:
    """A DAG with exactly ``n_edges`` edges: forward edges of a random order of the variables."""
    order = rng.permutation(n_variables)
    forward = [(order[a], order[b]) for a in range(n_variables) for b in range(a + 1, n_variables)]
    chosen = rng.choice(len(forward), size=n_edges, replace=False)
    adjacency = np.zeros((n_variables, n_variables))
    for index in chosen:
        adjacency[forward[index]] = 1.0
    return adjacency


def topological_order(adjacency: np.ndarray) -> list[int]:
    """Variables ordered so that every parent comes before its children."""
    remaining = set(range(len(adjacency)))
    order: list[int] = []
    while remaining:
        ready = sorted(j for j in remaining if not any(adjacency[i, j] for i in remaining))
        order.extend(ready)
        remaining -= set(ready)
    return order


def sample_sem(adjacency: np.ndarray, n_samples: int, noise_df: float, rng: np.random.Generator) -> np.ndarray:
    """Samples of x_j = sum_i w_ij * g(x_i) + t-noise, each x_j rescaled to unit spread.

    ``g(x) = x + tanh(x)`` keeps the effects monotone but not linear; weights are
    +-[0.5, 2.0]. Rescaling after each variable keeps deep variables from blowing up.
    """
    d = len(adjacency)
    weights = adjacency * rng.uniform(0.5, 2.0, size=(d, d)) * rng.choice([-1.0, 1.0], size=(d, d))
    x = np.zeros((n_samples, d))
    for j in topological_order(adjacency):
        signal = (x + np.tanh(x)) @ weights[:, j]
        noise = rng.standard_t(noise_df, size=n_samples)
        column = signal + noise
        x[:, j] = (column - np.median(column)) / (np.percentile(column, 75) - np.percentile(column, 25))
    return x


def raw_scales(n_variables: int, scale_max: float, rng: np.random.Generator) -> np.ndarray:
    """One scale per feature, log-spaced from 1 to scale_max / 8, shuffled."""
    return rng.permutation(np.logspace(0.0, np.log10(max(scale_max / 8.0, 1.0)), n_variables))


def make_sem(data: dict[str, Any]) -> tuple[Observations, GroundTruth]:
    """Build the SEM of the ``data`` config section; the split is by sample, after shuffling."""
    rng = np.random.default_rng(data["seed"])
    adjacency = random_dag(data["n_variables"], data["n_edges"], rng)
    x = sample_sem(adjacency, data["n_samples"], data["noise_df"], rng)
    scales = raw_scales(data["n_variables"], data["raw_scale_max"], rng)
    raw = np.clip(x * scales + 4.0 * scales, 0.0, None)  # sensor-like: non-negative, offset, own scale
    n_val = int(round(data["n_samples"] * data["val_fraction"]))
    return Observations(train=raw[n_val:], val=raw[:n_val]), GroundTruth(adjacency=adjacency)
