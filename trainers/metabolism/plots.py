"""Plots under run_dir/tmp_training/: node function per type, rate constants, embeddings, loss.

File names follow the seed: function/MLP_node/MLP_node_p2_<iter>.png,
rate_constants/comparison_p2_<iter>.png, embedding/embedding_p2_<iter>.png, loss.png.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from trainers.metabolism.model import MetabolicModel  # noqa: E402
from trainers.metabolism.simulator import GroundTruth  # noqa: E402

TYPE_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def save(figure: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_node_function(
    path: Path, model: MetabolicModel, truth: GroundTruth, fits: list[dict], amplification: float
) -> None:
    """Each metabolite's learned curve (thin), per type, with the ground truth dashed."""
    figure, axes = plt.subplots(1, len(fits), figsize=(4.5 * len(fits), 3.6), squeeze=False)
    n_metabolites = len(truth.types)
    for axis, fit in zip(axes[0], fits):
        t, color = fit["type"], TYPE_COLORS[fit["type"] % len(TYPE_COLORS)]
        grid = np.linspace(*fit["range"], 64)
        with torch.no_grad():
            states = torch.as_tensor(
                np.repeat(grid[:, None], n_metabolites, axis=1), dtype=torch.float32, device=model.log_k.device
            )
            values = (amplification * model.node_derivative(states)).cpu().numpy()
        for column in np.flatnonzero(truth.types == t):
            axis.plot(grid, values[:, column], color=color, alpha=0.35, linewidth=0.8)
        axis.plot(grid, fit["gt_slope"] * grid + fit["gt_offset"], "k--", linewidth=1.5, label="ground truth")
        axis.set_title(f"type {t}: slope {fit['slope']:.2g} vs GT {fit['gt_slope']:.2g}")
        axis.set_xlabel("concentration")
        axis.set_ylabel("MLP_node (enters dc/dt)")
        axis.legend(loc="best", fontsize=8)
    save(figure, path)


def plot_rate_constants(path: Path, learned_log_k: np.ndarray, true_log_k: np.ndarray) -> None:
    figure, axis = plt.subplots(figsize=(4.2, 4.0))
    axis.scatter(true_log_k, learned_log_k, s=10, alpha=0.7)
    low, high = float(np.min(true_log_k)), float(np.max(true_log_k))
    axis.plot([low, high], [low, high], "k--", linewidth=1)
    axis.set_xlabel("true log10 k")
    axis.set_ylabel("learned log10 k")
    axis.set_title("rate constants (frozen in Phase 2)")
    save(figure, path)


def plot_embeddings(path: Path, embeddings: np.ndarray, types: np.ndarray) -> None:
    """Coloured by the true type (evaluation only)."""
    figure, axis = plt.subplots(figsize=(4.2, 4.0))
    for t in np.unique(types):
        chosen = types == t
        axis.scatter(
            embeddings[chosen, 0],
            embeddings[chosen, 1],
            s=18,
            color=TYPE_COLORS[int(t) % len(TYPE_COLORS)],
            label=f"type {t}",
        )
    axis.set_xlabel("a_0")
    axis.set_ylabel("a_1")
    axis.legend(fontsize=8)
    axis.set_title("embeddings")
    save(figure, path)


def plot_loss(path: Path, losses: list[float]) -> None:
    figure, axis = plt.subplots(figsize=(5.0, 3.4))
    if losses:
        axis.plot(np.arange(1, len(losses) + 1), losses, color="tab:blue", linewidth=2, label="training loss per batch")
        if np.all(np.asarray(losses) > 0) and np.all(np.isfinite(losses)):
            axis.set_yscale("log")
        axis.legend()
    axis.set_xlabel("batch")
    axis.set_title("Phase 2 training loss")
    save(figure, path)


def write_all(
    folder: Path,
    iteration: int,
    model: MetabolicModel,
    truth: GroundTruth,
    fits: list[dict],
    losses: list[float],
    amplification: float,
    diverged: bool,
) -> None:
    """All plots of one run; after a blow-up only the loss and rate constants are drawn."""
    plot_loss(folder / "loss.png", losses)
    plot_rate_constants(
        folder / "rate_constants" / f"comparison_p2_{iteration}.png", model.log_k.detach().cpu().numpy(), truth.log_k
    )
    if diverged:
        return
    plot_node_function(
        folder / "function" / "MLP_node" / f"MLP_node_p2_{iteration}.png", model, truth, fits, amplification
    )
    plot_embeddings(
        folder / "embedding" / f"embedding_p2_{iteration}.png", model.embeddings.detach().cpu().numpy(), truth.types
    )
