"""The GFlowNet trainer's loop and its run: reward -> Trajectory Balance -> samples -> analysis.log.

Each step samples ``batch_size`` sequences from P_F (with ``exploration_eps`` uniform
actions), scores them, and minimises the Trajectory Balance loss
``(log Z + log P_F(trajectory) - log R(x) / T)**2`` (P_B = 1 for sequences), with log Z
learning ``log_z_lr_multiplier`` times faster than the policy. `train` receives the
scoring function only; after training `run` samples from the policy and only then asks
the hidden motifs how many modes were found.

A non-finite loss or parameter stops training: the step where it appeared is
``first_nan_step``, the run is diverged (nan metrics, ``diverged: 1``) and exits 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

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
from trainers.gflownet.config import load
from trainers.gflownet.evaluate import modes_found, sample_statistics
from trainers.gflownet.policy import ForwardPolicy, sample, trajectory_log_pf
from trainers.gflownet.reward import RewardFunction, decode, make_reward

CURVES = ("loss", "log_z", "mean_log_pf", "mean_log_reward", "mean_reward")


@dataclass
class History:
    """Per-step curves (names in CURVES); the first step whose loss was not finite (0 = none)."""

    curves: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in CURVES})
    first_nan_step: int = 0

    @property
    def diverged(self) -> bool:
        return self.first_nan_step > 0

    def tail_mean(self, name: str) -> float:
        """Mean over the last tenth of the steps (at least one)."""
        values = self.curves[name]
        tail = values[-max(1, len(values) // 10) :]
        return sum(tail) / len(tail) if tail else math.nan


def train(
    score: RewardFunction, config: dict[str, dict[str, Any]], device: torch.device, progress: ProgressLog | None = None
) -> tuple[ForwardPolicy, History]:
    """Train P_F and log Z on ``score``; the hidden motifs are not an argument. ``progress``: loss and
    mean reward every few percent of the steps."""
    model, training, max_length = config["model"], config["training"], config["generation"]["max_length"]
    policy = ForwardPolicy(model["d_model"], model["n_layers"], max_length, model["policy_head"]).to(device)
    log_z = nn.Parameter(torch.zeros((), device=device))
    optimizer = torch.optim.Adam(
        [
            {"params": policy.parameters(), "lr": training["learning_rate"]},
            {"params": [log_z], "lr": training["learning_rate"] * training["log_z_lr_multiplier"]},
        ]
    )
    clip = training["max_grad_norm"] if training["max_grad_norm"] > 0 else math.inf
    generator = torch.Generator().manual_seed(training["seed"])
    history = History()

    for step in range(1, training["n_steps"] + 1):
        if not (is_finite(policy) and math.isfinite(log_z.item())):
            history.first_nan_step = step  # the last update made the parameters nan
            for name in CURVES:
                history.curves[name].append(math.nan)
            break
        tokens, lengths = sample(policy, training["batch_size"], max_length, training["exploration_eps"], generator)
        rewards = score(tokens, lengths)
        log_reward = rewards.log() / training["reward_temperature"]
        log_pf = trajectory_log_pf(policy, tokens, lengths)
        loss = ((log_z + log_pf - log_reward) ** 2).mean()
        for name, value in (
            ("loss", loss),
            ("log_z", log_z),
            ("mean_log_pf", log_pf.mean()),
            ("mean_log_reward", log_reward.mean()),
            ("mean_reward", rewards.mean()),
        ):
            history.curves[name].append(value.item())
        if not math.isfinite(loss.item()):
            history.first_nan_step = step
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*policy.parameters(), log_z], clip)
        optimizer.step()
        if progress is not None and progress.due(step):
            progress.report(step, {"loss": loss.item(), "mean_reward": rewards.mean().item()})
        if step % max(1, training["n_steps"] // 10) == 0 or step == 1:
            print(
                f"step {step}/{training['n_steps']} | loss {loss.item():.4g} | log Z {log_z.item():.3g} | "
                f"mean reward {rewards.mean().item():.3f}",
                flush=True,
            )
    return policy, history


def final_metrics(history: History, statistics: dict[str, float], modes: int, n_steps_run: int) -> dict[str, float]:
    """analysis.log's metrics: the training tail, the evaluation samples, the modes found."""
    if history.diverged:
        trained = dict.fromkeys(
            (
                "loss",
                "log_z",
                "mean_log_pf",
                "mean_reward",
                "max_reward",
                "diversity",
                "valid_fraction",
                "unique_fraction",
                "modes_found",
            ),
            math.nan,
        )
    else:
        trained = {
            "loss": history.tail_mean("loss"),
            "log_z": history.curves["log_z"][-1],
            "mean_log_pf": history.tail_mean("mean_log_pf"),
            **statistics,
            "modes_found": modes,
        }
    return {**trained, "first_nan_step": history.first_nan_step, "steps_run": n_steps_run}


def run(config_path: Path, run_dir: Path) -> dict[str, float]:
    """The whole trainer: config, reward, training, evaluation samples, analysis.log + visual.json + plots."""
    config = load(config_path)
    training, min_length = config["training"], config["generation"]["min_length"]
    cap_threads(training["torch_threads"])
    device = pick_device(training["device"])
    seed_everything(training["seed"])
    score, hidden_modes = make_reward(config["reward"], min_length, device)

    policy, history = train(score, config, device, ProgressLog(run_dir, training["n_steps"]))

    statistics, modes, samples = {}, 0, []
    if not history.diverged:
        generator = torch.Generator().manual_seed(training["seed"] + 1)
        tokens, lengths = sample(policy, training["n_eval_samples"], config["generation"]["max_length"], 0.0, generator)
        statistics = sample_statistics(tokens, lengths, score(tokens, lengths), min_length)
        modes = modes_found(tokens, lengths, hidden_modes)
        samples = decode(tokens[:20], lengths[:20])
    metrics = final_metrics(history, statistics, modes, len(history.curves["loss"]))
    run_dir = Path(run_dir)
    write_analysis_log(run_dir, metrics, history.diverged)
    write_visual_json(
        run_dir,
        {
            "curves": history.curves,
            "samples": samples,
            "n_motifs": len(hidden_modes.motifs),
            "statistics": {**statistics, "modes_found": modes},
            "diverged": history.diverged,
        },
    )
    plot_curves(
        run_dir / "tmp_training" / "training.png", history.curves, "GFlowNet (Trajectory Balance)", log_y=("loss",)
    )
    return metrics
