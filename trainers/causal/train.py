"""The causal trainer's loop and its run: data -> training -> evaluation -> analysis.log.

`train(observations, config)` sees only the observations (never the true graph) and
returns the per-epoch `History`; `run(config_path, run_dir)` builds the SEM, trains,
and only then hands the final gates and the true graph to `evaluate.score_graph`.

Per epoch it records what seeds 001/002 watched: the loss components, the share of steps
whose gradient norm was clipped, the spread of the edge logits, the edges above the
threshold, the learning rate. A non-finite loss or gradient stops training: the run is
diverged (nan metrics, ``diverged: 1``) and still exits 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainers.causal.config import load
from trainers.causal.data import Observations, make_sem
from trainers.causal.evaluate import THRESHOLDS, score_graph, sweep
from trainers.causal.model import (
    StructureLearner,
    acyclicity_loss,
    disentanglement_loss,
    reconstruction_loss,
    sparsity_loss,
)
from trainers.common import (
    ProgressLog,
    cap_threads,
    is_finite,
    pick_device,
    plot_curves,
    seed_everything,
    write_analysis_log,
    write_visual_json,
)

CURVES = (
    "train_loss",
    "loss_recon",
    "loss_sparse",
    "loss_acyclic",
    "loss_disen",
    "val_loss",
    "grad_clip_ratio",
    "grad_norm",
    "learning_rate",
    "logit_std",
    "edge_count",
)
PLOTTED = ("train_loss", "grad_norm", "grad_clip_ratio", "logit_std", "edge_count")


@dataclass
class History:
    """Per-epoch curves (names in CURVES), the gates after each epoch, and whether training diverged."""

    curves: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in CURVES})
    gates: list[np.ndarray] = field(default_factory=list)
    max_grad_norm: float = 0.0
    input_max: float = 0.0
    diverged: bool = False

    def last(self, name: str) -> float:
        values = self.curves[name]
        return values[-1] if values else math.nan


def prepare_inputs(observations: Observations, standardize: bool, device: torch.device):
    """Training and validation tensors, standardised with the training statistics if asked."""
    train, val = observations.train, observations.val
    if standardize:
        mean, std = train.mean(0), train.std(0) + 1e-8
        train, val = (train - mean) / std, (val - mean) / std
    as_tensor = lambda array: torch.tensor(array, dtype=torch.float32, device=device)  # noqa: E731
    return as_tensor(train), as_tensor(val)


def warmup_learning_rate(epoch: int, training: dict[str, Any]) -> float:
    """Linear from learning_rate_init (epoch 0) to learning_rate_max (epoch warmup_epochs)."""
    start, peak, warmup = training["learning_rate_init"], training["learning_rate_max"], training["warmup_epochs"]
    return peak if epoch >= warmup else start + (peak - start) * epoch / warmup


def loss_terms(model: StructureLearner, x: torch.Tensor, reduction: str) -> dict[str, torch.Tensor]:
    reconstruction, latent, gates = model(x)
    return {
        "recon": reconstruction_loss(reconstruction, x, reduction),
        "sparse": sparsity_loss(gates, reduction),
        "acyclic": acyclicity_loss(gates),
        "disen": disentanglement_loss(latent, reduction),
    }


def train_epoch(
    model: StructureLearner,
    optimizer: torch.optim.Optimizer,
    batches: list[torch.Tensor],
    weights: dict[str, float],
    clip: float,
    reduction: str,
) -> dict[str, float] | None:
    """One pass over ``batches``: mean loss terms, mean and max pre-clip gradient norm, share of steps clipped.

    None as soon as a loss or a gradient norm is not finite (the step is not taken).
    """
    sums = dict.fromkeys(("train_loss", *(f"loss_{name}" for name in weights), "grad_norm", "grad_clip_ratio"), 0.0)
    max_grad_norm = 0.0
    for x in batches:
        terms = loss_terms(model, x, reduction)
        loss = sum(weights[name] * value for name, value in terms.items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
        if not (math.isfinite(loss.item()) and math.isfinite(grad_norm)):
            return None
        optimizer.step()
        sums["train_loss"] += loss.item()
        for name, value in terms.items():
            sums[f"loss_{name}"] += value.item()
        sums["grad_norm"] += grad_norm
        sums["grad_clip_ratio"] += grad_norm > clip
        max_grad_norm = max(max_grad_norm, grad_norm)
    return {**{name: total / len(batches) for name, total in sums.items()}, "max_grad_norm": max_grad_norm}


def train(
    observations: Observations,
    config: dict[str, dict[str, Any]],
    device: torch.device,
    progress: ProgressLog | None = None,
) -> History:
    """Train a StructureLearner on ``observations``; the true graph is not an argument. ``progress``:
    the epoch's training and validation loss and edge count, every epoch."""
    model_config, training = config["model"], config["training"]
    x_train, x_val = prepare_inputs(observations, training["standardize_inputs"], device)
    model = StructureLearner(
        x_train.shape[1], model_config["hidden_dim"], model_config["latent_dim"], model_config["sparsify_method"]
    ).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=training["learning_rate_init"], weight_decay=training["weight_decay"]
    )
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=training["plateau_factor"], patience=training["plateau_patience"], cooldown=1
    )
    weights = {name: training[f"lambda_{name}"] for name in ("recon", "sparse", "acyclic", "disen")}
    clip = training["grad_clip_norm"] if training["grad_clip_norm"] > 0 else math.inf
    shuffler = torch.Generator().manual_seed(training["seed"])
    history = History(input_max=float(x_train.abs().max()))

    for epoch in range(training["epochs"]):
        if epoch <= training["warmup_epochs"] or training["lr_schedule"] == "none":
            for group in optimizer.param_groups:
                group["lr"] = warmup_learning_rate(epoch, training)
        order = torch.randperm(len(x_train), generator=shuffler).to(device)
        batches = [x_train[indices] for indices in order.split(training["batch_size"])]
        stats = train_epoch(model, optimizer, batches, weights, clip, training["loss_reduction"])
        with torch.no_grad():
            val_loss = float(loss_terms(model, x_val, "mean")["recon"])
            logits = model.edge_logits[model.off_diagonal.bool()]
            gates = model.gates()
        if stats is None or not math.isfinite(val_loss) or not is_finite(model):
            history.diverged = True
            break
        if training["lr_schedule"] == "plateau" and epoch >= training["warmup_epochs"]:
            plateau.step(val_loss)
        history.max_grad_norm = max(history.max_grad_norm, stats.pop("max_grad_norm"))
        for name, value in stats.items():
            history.curves[name].append(value)
        history.curves["val_loss"].append(val_loss)
        history.curves["learning_rate"].append(optimizer.param_groups[0]["lr"])
        history.curves["logit_std"].append(float(logits.std()))
        history.curves["edge_count"].append(float((gates > training["edge_threshold"]).sum()))
        history.gates.append(gates.cpu().numpy())
        if progress is not None:
            report = {"train_loss": stats["train_loss"], "val_loss": val_loss, "edge_count": history.last("edge_count")}
            progress.report(epoch + 1, report)
        print(
            f"epoch {epoch + 1}/{training['epochs']} | loss {stats['train_loss']:.4g} | val {val_loss:.4g} | "
            f"edges {history.last('edge_count'):.0f} | clip {stats['grad_clip_ratio']:.0%} | "
            f"logit std {history.last('logit_std'):.3f} | lr {history.last('learning_rate'):.2e}",
            flush=True,
        )
    return history


def final_metrics(history: History, true_adjacency: np.ndarray, lambda_recon: float) -> dict[str, float]:
    """analysis.log's metrics: the last epoch's health, and the graph score of the last gates."""
    if history.diverged or not history.gates:
        graph = dict.fromkeys(("val_f1", "val_shd", "best_threshold", "edge_count", "logit_std"), math.nan)
        losses = dict.fromkeys(
            ("train_loss", "val_loss", "loss_recon", "loss_sparse", "loss_acyclic", "loss_disen", "recon_fraction"),
            math.nan,
        )
    else:
        score = score_graph(history.gates[-1], true_adjacency)
        graph = {
            "val_f1": float(score.f1),
            "val_shd": score.shd,
            "best_threshold": score.threshold,
            "edge_count": history.last("edge_count"),
            "logit_std": history.last("logit_std"),
        }
        losses = {
            name: history.last(name)
            for name in ("train_loss", "val_loss", "loss_recon", "loss_sparse", "loss_acyclic", "loss_disen")
        }
        losses["recon_fraction"] = recon_fraction(history, lambda_recon)
    return {
        **graph,
        "true_edges": float(true_adjacency.sum()),
        "grad_clip_ratio": history.last("grad_clip_ratio"),
        "grad_norm": history.last("grad_norm"),
        "max_grad_norm": history.max_grad_norm,
        **losses,
        "learning_rate": history.last("learning_rate"),
        "input_max": history.input_max,
        "epochs_run": float(len(history.gates)),
    }


def recon_fraction(history: History, lambda_recon: float) -> float:
    """Share of the last epoch's training loss that is the weighted reconstruction term (seed 001's Recon%)."""
    total = history.last("train_loss")
    return history.last("loss_recon") * lambda_recon / total if total else math.nan


def run(config_path: Path, run_dir: Path) -> dict[str, float]:
    """The whole trainer: config, SEM, training, evaluation, analysis.log + visual.json + plots."""
    config = load(config_path)
    training = config["training"]
    cap_threads(training["torch_threads"])
    device = pick_device(training["device"])
    seed_everything(training["seed"])
    observations, truth = make_sem(config["data"])

    history = train(observations, config, device, ProgressLog(run_dir, training["epochs"], training["epochs"]))

    metrics = final_metrics(history, truth.adjacency, training["lambda_recon"])
    run_dir = Path(run_dir)
    write_analysis_log(run_dir, metrics, history.diverged)
    f1_per_epoch = [score_graph(gates, truth.adjacency).f1 for gates in history.gates]
    final_sweep = [score.f1 for score in sweep(history.gates[-1], truth.adjacency)] if history.gates else []
    write_visual_json(
        run_dir,
        {
            "curves": {**history.curves, "val_f1": f1_per_epoch},
            "thresholds": THRESHOLDS,
            "f1_per_threshold": final_sweep,
            "final_gates": history.gates[-1] if history.gates else [],
            "true_graph": truth.adjacency,
            "edge_threshold": training["edge_threshold"],
            "diverged": history.diverged,
        },
    )
    if history.gates:
        plotted = {name: history.curves[name] for name in PLOTTED} | {"val_f1": f1_per_epoch}
        plot_curves(
            run_dir / "tmp_training" / "training.png",
            plotted,
            "causal structure learning",
            log_y=("train_loss", "grad_norm"),
        )
    return metrics
