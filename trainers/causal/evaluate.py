"""Scoring a learned graph against the true one, after training (seed 002, section 6).

The only reader of `GroundTruth`. Twenty-one thresholds (0, 0.05, ..., 1.0) are tried on
the edge gates; an edge is predicted where its gate is above the threshold. The best F1
wins (the lowest threshold on ties) and gives ``val_f1``, ``val_shd`` and ``best_threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THRESHOLDS = np.linspace(0.0, 1.0, 21)


@dataclass(frozen=True)
class GraphScore:
    f1: float
    shd: int
    threshold: float
    predicted_edges: int


def f1_score(predicted: np.ndarray, true: np.ndarray) -> float:
    hits = float((predicted * true).sum())
    if hits == 0:
        return 0.0
    precision, recall = hits / predicted.sum(), hits / true.sum()
    return 2 * precision * recall / (precision + recall)


def structural_hamming_distance(predicted: np.ndarray, true: np.ndarray) -> int:
    """Missing + extra edges, a reversed edge counting once."""
    undirected_true, undirected_predicted = np.triu(true + true.T) > 0, np.triu(predicted + predicted.T) > 0
    missing_or_extra = int((undirected_true != undirected_predicted).sum())
    reversed_edges = int(((true == 1) & (predicted.T == 1) & (predicted == 0)).sum())
    return missing_or_extra + reversed_edges


def sweep(gates: np.ndarray, true_adjacency: np.ndarray) -> list[GraphScore]:
    """The score at each of the 21 thresholds for the gates ``gates`` (d x d, diagonal ignored)."""
    off_diagonal = 1 - np.eye(len(gates))
    scores = []
    for threshold in THRESHOLDS:
        predicted = ((gates > threshold) * off_diagonal).astype(float)
        scores.append(
            GraphScore(
                f1=f1_score(predicted, true_adjacency),
                shd=structural_hamming_distance(predicted, true_adjacency),
                threshold=float(threshold),
                predicted_edges=int(predicted.sum()),
            )
        )
    return scores


def score_graph(gates: np.ndarray, true_adjacency: np.ndarray) -> GraphScore:
    """The best F1 of the sweep (the lowest threshold among equals)."""
    return max(sweep(gates, true_adjacency), key=lambda score: score.f1)
