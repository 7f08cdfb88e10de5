"""The eight Phase 2 strategies of seed 003, as config choices.

``training.phase2_strategy`` names one loss form and any number of modifiers, joined by
"+" (for example ``residual+grad_accumulation``):

loss forms (one):
  rollout          default: MSE of an Euler rollout of ``homeostasis_time_step`` steps
  residual         (1) MSE(MLP_node(c_t), dc/dt_observed - reaction part), on the window's frames
  separate_losses  (8) rollout whose reaction part is evaluated on a stop-gradient state,
                   so the error reaches MLP_node only through its own path
modifiers:
  amplification    (2) MLP_node output x amplification_factor (optionally decaying to 1x)
  contrastive      (3) embeddings pulled together / apart by the similarity of the learned
                   MLP_node response curves (no labels)
  curriculum       (4) rollout length time_step, then /2, ... over curriculum_stages stages
  lr_warmup        (5) linear warmup to warmup_peak_factor x lr, then cosine to lr_final_factor x lr
  multiscale       (6) each batch draws its rollout length from time_step, /2, /4, ...
  grad_accumulation (7) one optimizer step per accumulation_steps batches
  joint            (issue 17; relaxes seed 003's "Phase 1 frozen") log_k trained with MLP_node
                   at joint_lr_factor x learning_rate_k (0.01: 100x smaller); MLP_sub stays
                   frozen. With residual, the residual is taken against the live reaction part.
                   Guard: evaluation reports rate_constants_R2_drop (Phase 1's R2 minus the
                   final one); the demo spec zeroes the reward of a run that drops it by > 0.01.
  anchor           (issue 17, needs joint) + anchor_weight x mean((log_k - Phase 1 log_k)^2)
Neither uses labels: the guard is judged by the evaluation after training, like every metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from trainers.metabolism.config import parse_strategy
from trainers.metabolism.model import MetabolicModel


@dataclass
class Phase2Plan:
    """What each batch of Phase 2 does: length, amplification, learning-rate factor."""

    form: str
    modifiers: frozenset[str]
    time_step: int
    n_batches: int
    training: dict[str, Any]

    @classmethod
    def from_training(cls, training: dict[str, Any]) -> Phase2Plan:
        form, modifiers = parse_strategy(training["phase2_strategy"])
        return cls(form, modifiers, training["homeostasis_time_step"], training["data_augmentation_loop"], training)

    @property
    def joint(self) -> bool:
        """log_k is trained in Phase 2 (the strategy relaxes "Phase 1 frozen")."""
        return "joint" in self.modifiers

    @property
    def accumulation_steps(self) -> int:
        return self.training["accumulation_steps"] if "grad_accumulation" in self.modifiers else 1

    @property
    def n_optimizer_steps(self) -> int:
        return max(1, self.n_batches // self.accumulation_steps)

    def rollout_lengths(self) -> list[int]:
        """The lengths multiscale draws from: time_step, time_step/2, ... (at least 1)."""
        levels = self.training["multiscale_levels"]
        return sorted({max(1, self.time_step >> level) for level in range(levels)}, reverse=True)

    def rollout_length(self, batch: int, rng: np.random.Generator) -> int:
        if "curriculum" in self.modifiers:
            stages = self.training["curriculum_stages"]
            stage = min(stages - 1, batch * stages // self.n_batches)
            return max(1, self.time_step >> stage)
        if "multiscale" in self.modifiers:
            return int(rng.choice(self.rollout_lengths()))
        return self.time_step

    def amplification(self, batch: int) -> float:
        """The factor on MLP_node in dc/dt at this batch (1 without amplification)."""
        if "amplification" not in self.modifiers:
            return 1.0
        factor = float(self.training["amplification_factor"])
        if not self.training["amplification_decay"]:
            return factor
        progress = batch / max(1, self.n_batches - 1)
        return factor ** (1.0 - progress)

    def final_amplification(self) -> float:
        return self.amplification(self.n_batches - 1)

    def lr_multiplier(self, optimizer_step: int) -> float:
        if "lr_warmup" not in self.modifiers:
            return 1.0
        peak, final = self.training["warmup_peak_factor"], self.training["lr_final_factor"]
        warmup_steps = int(self.training["warmup_fraction"] * self.n_optimizer_steps)
        if optimizer_step < warmup_steps:
            return peak * (optimizer_step + 1) / warmup_steps
        progress = (optimizer_step - warmup_steps) / max(1, self.n_optimizer_steps - warmup_steps)
        return final + (peak - final) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def rollout(
    model: MetabolicModel,
    start: torch.Tensor,
    length: int,
    delta_t: float,
    amplification: float,
    stop_reaction_gradient: bool = False,
) -> torch.Tensor:
    """Euler steps of the model from ``start`` (batch, n): returns (batch, length, n)."""
    state, states = start, []
    for _ in range(length):
        reaction_input = state.detach() if stop_reaction_gradient else state
        derivative = model.reaction_derivative(reaction_input) + amplification * model.node_derivative(state)
        state = torch.clamp(state + delta_t * derivative, min=0.0)
        states.append(state)
    return torch.stack(states, dim=1)


def rollout_loss(
    model: MetabolicModel,
    windows: torch.Tensor,
    delta_t: float,
    amplification: float,
    stop_reaction_gradient: bool = False,
) -> torch.Tensor:
    """MSE between the rolled-out and observed states of windows (batch, length + 1, n)."""
    predicted = rollout(model, windows[:, 0], windows.shape[1] - 1, delta_t, amplification, stop_reaction_gradient)
    return torch.mean((predicted - windows[:, 1:]) ** 2)


def residual_loss(
    model: MetabolicModel, states: torch.Tensor, residuals: torch.Tensor, amplification: float
) -> torch.Tensor:
    """MSE(amplification x MLP_node(c), observed dc/dt minus the frozen reaction part)."""
    return torch.mean((amplification * model.node_derivative(states) - residuals) ** 2)


def anchor_penalty(model: MetabolicModel, phase1_log_k: torch.Tensor) -> torch.Tensor:
    """mean((log_k - Phase 1 log_k)^2): how far joint refinement has moved the rate constants."""
    return torch.mean((model.log_k - phase1_log_k) ** 2)


def response_curves(model: MetabolicModel, grid: torch.Tensor) -> torch.Tensor:
    """MLP_node of every metabolite on a concentration grid: (n_metabolites, len(grid))."""
    n_metabolites = model.embeddings.shape[0]
    return model.node_derivative(grid.unsqueeze(1).expand(-1, n_metabolites)).T


def contrastive_loss(model: MetabolicModel, grid: torch.Tensor) -> torch.Tensor:
    """Embedding kernel matched to the similarity of the learned response curves.

    The target similarity exp(-|r_i - r_j|^2 / median) comes from the model's own
    MLP_node curves (detached); no metabolite labels are involved.
    """
    with torch.no_grad():
        curves = response_curves(model, grid)
        curve_distance = torch.cdist(curves, curves) ** 2
        target = torch.exp(-curve_distance / curve_distance.median().clamp_min(1e-20))
    embedding_distance = torch.cdist(model.embeddings, model.embeddings) ** 2
    kernel = torch.exp(-embedding_distance / embedding_distance.detach().median().clamp_min(1e-12))
    return torch.mean((kernel - target) ** 2)
