"""Phase 2: train MLP_node and the embeddings with everything of Phase 1 frozen.

The ``joint`` strategy modifier (issue 17) is the one exception: log_k is trained too, at
a learning rate 100x smaller, optionally anchored to its Phase 1 values (``anchor``).

One batch = ``batch_size`` windows of the observed trajectory, sampled with
``training.seed``; ``data_augmentation_loop`` batches in all. The loss form, schedules and
auxiliary terms come from the strategy plan (strategies.py). A non-finite or exploding
loss stops training and marks the run diverged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trainers.common import ProgressLog
from trainers.metabolism.model import MetabolicModel
from trainers.metabolism.phase1 import one_step_targets
from trainers.metabolism.strategies import (
    Phase2Plan,
    anchor_penalty,
    contrastive_loss,
    residual_loss,
    rollout_loss,
)

DIVERGENCE_LOSS_FACTOR = 1e4  # a loss this many times the first batch's counts as blown up
N_EVALUATION_WINDOWS = 64


@dataclass
class Phase2Result:
    losses: list[float] = field(default_factory=list)
    diverged: bool = False
    divergence_reason: str = ""
    final_amplification: float = 1.0
    seconds: float = 0.0


def freeze_reaction_part(model: MetabolicModel, joint: bool = False) -> None:
    """Phase 1's parameters stop learning; with ``joint`` log_k keeps learning."""
    for parameter in model.reaction_parameters():
        parameter.requires_grad_(False)
    model.log_k.requires_grad_(joint)


def build_optimizer(model: MetabolicModel, training: dict[str, Any], joint: bool = False) -> torch.optim.Adam:
    groups = [
        {"params": list(model.node.parameters()), "lr": training["learning_rate_node_homeostasis"]},
        {"params": [model.embeddings], "lr": training["learning_rate_embedding_homeostasis"]},
    ]
    if joint:
        groups.append({"params": [model.log_k], "lr": training["joint_lr_factor"] * training["learning_rate_k"]})
    return torch.optim.Adam(groups)


def observed_residuals(model: MetabolicModel, concentrations: torch.Tensor, delta_t: float) -> torch.Tensor:
    """dc/dt observed minus the frozen reaction part, for every frame but the last."""
    states, targets = one_step_targets(concentrations, delta_t)
    with torch.no_grad():
        return targets - model.reaction_derivative(states)


def residual_targets(
    model: MetabolicModel, plan: Phase2Plan, concentrations: torch.Tensor, delta_t: float
) -> torch.Tensor | None:
    """What the residual form fits: the frozen-Phase-1 residuals, or the observed dc/dt with joint."""
    if plan.form != "residual":
        return None
    if plan.joint:
        return one_step_targets(concentrations, delta_t)[1]
    return observed_residuals(model, concentrations, delta_t)


def batch_loss(
    model: MetabolicModel,
    plan: Phase2Plan,
    concentrations: torch.Tensor,
    residuals: torch.Tensor | None,
    starts: torch.Tensor,
    length: int,
    delta_t: float,
    amplification: float,
) -> torch.Tensor:
    """The plan's loss form on windows starting at ``starts``."""
    offsets = torch.arange(length + 1, device=concentrations.device)
    windows = concentrations[starts.unsqueeze(1) + offsets]  # (batch, length + 1, n)
    if plan.form == "residual":
        frames = starts.unsqueeze(1) + offsets[:-1]
        targets = residuals[frames]
        if plan.joint:  # ``residuals`` holds the observed dc/dt: subtract the live reaction part
            targets = targets - model.reaction_derivative(windows[:, :-1])
        return residual_loss(model, windows[:, :-1], targets, amplification)
    return rollout_loss(model, windows, delta_t, amplification, stop_reaction_gradient=plan.form == "separate_losses")


def train_phase2(
    model: MetabolicModel,
    concentrations: torch.Tensor,
    delta_t: float,
    training: dict[str, Any],
    log: Callable[[str], None],
    progress: ProgressLog | None = None,
    checkpoint: Callable[[MetabolicModel, float], dict[str, float]] | None = None,
) -> Phase2Result:
    """The Phase 2 loop; ``model``'s homeostasis part is trained in place. ``progress``: phase2_loss (the
    evaluation rollout loss on the current model: one forward rollout of 64 windows, a few percent of a
    batch's cost) and the batch's training loss, every few percent of the batches; at the progress
    checkpoints also ``checkpoint(model, amplification)``'s metrics (evaluation only: it reads the model
    without a gradient and draws no random number, so a run trains the same with or without it)."""
    plan = Phase2Plan.from_training(training)
    freeze_reaction_part(model, plan.joint)
    optimizer = build_optimizer(model, training, plan.joint)
    phase1_log_k = model.log_k.detach().clone()
    base_rates = [group["lr"] for group in optimizer.param_groups]
    generator = torch.Generator(device="cpu").manual_seed(training["seed"])
    rng = np.random.default_rng(training["seed"])
    residuals = residual_targets(model, plan, concentrations, delta_t)
    grid = torch.linspace(float(concentrations.min()), float(concentrations.max()), 32, device=concentrations.device)
    n_frames = concentrations.shape[0]
    result = Phase2Result(final_amplification=plan.final_amplification())
    start_time = time.perf_counter()
    optimizer_step = 0
    for batch in range(plan.n_batches):
        length = plan.rollout_length(batch, rng)
        starts = torch.randint(n_frames - length, (training["batch_size"],), generator=generator)
        loss = batch_loss(
            model,
            plan,
            concentrations,
            residuals,
            starts.to(concentrations.device),
            length,
            delta_t,
            plan.amplification(batch),
        )
        total = loss
        if "contrastive" in plan.modifiers:
            total = total + training["contrastive_weight"] * contrastive_loss(model, grid)
        if "anchor" in plan.modifiers:
            total = total + training["anchor_weight"] * anchor_penalty(model, phase1_log_k)
        (total / plan.accumulation_steps).backward()
        result.losses.append(loss.item())
        if blown_up(result.losses):
            result.diverged = True
            result.divergence_reason = f"phase2 loss {result.losses[-1]:.6g} at batch {batch + 1}"
            break
        if (batch + 1) % plan.accumulation_steps == 0:
            for group, base_rate in zip(optimizer.param_groups, base_rates):
                group["lr"] = base_rate * plan.lr_multiplier(optimizer_step)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            optimizer_step += 1
        if progress is not None and progress.due(batch + 1):
            time_step, amplification = training["homeostasis_time_step"], plan.amplification(batch)
            loss_now = evaluation_rollout_loss(model, concentrations, delta_t, time_step, amplification)
            reported = {"phase2_loss": loss_now, "phase2_train_loss": loss.item()}
            if checkpoint is not None and progress.checkpoint(batch + 1):
                reported.update(checkpoint(model, amplification))
            progress.report(batch + 1, reported)
        if (batch + 1) % max(1, plan.n_batches // 10) == 0:
            log(f"phase2 batch {batch + 1}/{plan.n_batches} length {length} loss {loss.item():.6g}")
    trained = [*model.homeostasis_parameters(), model.log_k]
    if not result.diverged and not all(torch.isfinite(p).all() for p in trained):
        result.diverged, result.divergence_reason = True, "non-finite MLP_node, embedding or log_k parameters"
    result.seconds = time.perf_counter() - start_time
    return result


def blown_up(losses: list[float]) -> bool:
    """Non-finite, or DIVERGENCE_LOSS_FACTOR times the loss of the first batch (before any update)."""
    latest = losses[-1]
    return not np.isfinite(latest) or latest > DIVERGENCE_LOSS_FACTOR * max(losses[0], 1e-12)


def evaluation_rollout_loss(
    model: MetabolicModel, concentrations: torch.Tensor, delta_t: float, time_step: int, amplification: float
) -> float:
    """phase2_loss: rollout MSE over time_step steps on fixed, evenly spaced windows.

    The same windows for every strategy and seed, so the number compares across runs.
    """
    n_frames = concentrations.shape[0]
    starts = torch.linspace(0, n_frames - time_step - 1, N_EVALUATION_WINDOWS, device=concentrations.device).long()
    windows = concentrations[starts.unsqueeze(1) + torch.arange(time_step + 1, device=concentrations.device)]
    with torch.no_grad():
        return rollout_loss(model, windows, delta_t, amplification).item()
