"""The GFlowNet trainer's configuration: every key, its default, its allowed values.

Sections: ``reward`` (the fixed task), ``generation`` (sequence lengths), ``model`` and
``training``. Defaults are a recipe that works at a CPU size (a few hundred
steps); ``configs/gflownet/demo.yaml`` starts from seed 004's own defaults instead
(learning rate 3e-4, log Z at 10x, temperature 1), which do not converge that fast.
``model.policy_head: unconstrained`` is seed 000's failure: non-negative scores normalised
by their sum with a where-guarded log instead of a softmax; the first step is finite, its
gradient is nan, and every step after is nan at any learning rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainers.common import load_config, require

DEFAULTS: dict[str, dict[str, Any]] = {
    "reward": {
        "seed": 0,  # the hidden motifs
        "n_motifs": 4,
        "motif_length": 4,
        "floor": 0.01,  # reward of a sequence with no motif residue, and of an invalid one
    },
    "generation": {
        "min_length": 4,  # shorter sequences are invalid (reward = floor)
        "max_length": 8,
    },
    "model": {
        "d_model": 64,
        "n_layers": 2,
        "policy_head": "softmax",  # softmax | unconstrained (seed 000's failure)
    },
    "training": {
        "seed": 0,
        "device": "auto",  # auto | cpu | cuda | cuda:N
        "torch_threads": 0,  # 0 = $OMP_NUM_THREADS, else a quarter of the cores
        "n_steps": 300,
        "batch_size": 64,
        "learning_rate": 1.0e-3,
        "log_z_lr_multiplier": 100.0,  # log Z must travel ~20 nats: 10x (seed 004) is too slow on CPU budgets
        "exploration_eps": 0.001,  # share of uniform random actions while sampling for training
        "max_grad_norm": 1.0,  # 0 = no clipping
        "reward_temperature": 0.25,  # trains on R^(1/T): lower T sharpens the modes (and risks collapse)
        "n_eval_samples": 256,
    },
}

CHOICES = {"model.policy_head": ("softmax", "unconstrained")}


def load(path: str | Path) -> dict[str, dict[str, Any]]:
    """The config at ``path`` over the defaults, checked; ConfigError names the first bad key."""
    config = load_config(path, DEFAULTS, CHOICES)
    reward, generation, model, training = (config[name] for name in ("reward", "generation", "model", "training"))
    for key in ("n_motifs", "motif_length"):
        require(reward[key] >= 1, path, f"reward.{key}", "must be a positive integer")
    require(0.0 < reward["floor"] < 1.0, path, "reward.floor", "must be in (0, 1)")
    require(generation["min_length"] >= 1, path, "generation.min_length", "must be a positive integer")
    require(
        generation["max_length"] >= max(generation["min_length"], reward["motif_length"]),
        path,
        "generation.max_length",
        "must be at least min_length and reward.motif_length",
    )
    for key in ("d_model", "n_layers"):
        require(model[key] >= 1, path, f"model.{key}", "must be a positive integer")
    for key in ("n_steps", "batch_size", "n_eval_samples"):
        require(training[key] >= 1, path, f"training.{key}", "must be a positive integer")
    for key in ("learning_rate", "log_z_lr_multiplier", "reward_temperature"):
        require(training[key] > 0, path, f"training.{key}", "must be positive")
    require(0.0 <= training["exploration_eps"] <= 1.0, path, "training.exploration_eps", "must be in [0, 1]")
    require(training["max_grad_norm"] >= 0, path, "training.max_grad_norm", "must not be negative")
    return config
