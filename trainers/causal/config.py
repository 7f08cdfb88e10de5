"""The causal trainer's configuration: every key, its default, its allowed values.

Sections: ``data`` (the synthetic SEM), ``model`` and ``training``. The defaults are the
notes' fixed recipe (seed 002: standardised inputs, mean-reduced losses, rebalanced
lambdas, ReduceLROnPlateau, clip 1.0); the failure modes of seed 001 are one knob away:
``standardize_inputs: false`` (exploding gradients, every step clipped, logits stuck
together), ``loss_reduction: sum`` (larger still), ``lambda_acyclic`` or
``lambda_sparse`` too strong (collapse to no edges).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainers.common import load_config, require

DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {
        "seed": 0,  # the graph, its weights and the samples
        "n_variables": 13,
        "n_edges": 13,  # edges of the true DAG
        "n_samples": 2000,
        "val_fraction": 0.2,
        "noise_df": 3.0,  # Student-t degrees of freedom (heavy tails)
        "raw_scale_max": 2775.0,  # the widest feature spans about 0..raw_scale_max
    },
    "model": {
        "latent_dim": 16,  # per-variable latent code (the disentanglement term acts on it)
        "hidden_dim": 32,
        "sparsify_method": "sigmoid",  # sigmoid: every gate learns; topk: only the top n_variables gates
    },
    "training": {
        "seed": 0,
        "device": "auto",  # auto | cpu | cuda | cuda:N
        "torch_threads": 0,  # 0 = $OMP_NUM_THREADS, else a quarter of the cores
        "epochs": 30,
        "batch_size": 64,
        "learning_rate_init": 3.0e-4,  # linear warmup from here ...
        "learning_rate_max": 3.0e-3,  # ... to here over warmup_epochs
        "warmup_epochs": 3,
        "lr_schedule": "plateau",  # none | plateau (ReduceLROnPlateau on the validation loss)
        "plateau_patience": 3,
        "plateau_factor": 0.5,
        "lambda_recon": 1.0,
        "lambda_sparse": 1.0e-2,
        "lambda_acyclic": 1.0e-3,
        "lambda_disen": 1.0e-4,
        "loss_reduction": "mean",  # mean | sum (sum over batch and variables, as before the fix)
        "grad_clip_norm": 1.0,  # 0 = no clipping
        "weight_decay": 1.0e-4,
        "standardize_inputs": True,  # false = raw feature scales (0..2775)
        "edge_threshold": 0.5,  # edge_count counts gates above it
    },
}

CHOICES = {
    "model.sparsify_method": ("sigmoid", "topk"),
    "training.lr_schedule": ("none", "plateau"),
    "training.loss_reduction": ("mean", "sum"),
}


def load(path: str | Path) -> dict[str, dict[str, Any]]:
    """The config at ``path`` over the defaults, checked; ConfigError names the first bad key."""
    config = load_config(path, DEFAULTS, CHOICES)
    data, model, training = config["data"], config["model"], config["training"]
    d = data["n_variables"]
    require(d >= 2, path, "data.n_variables", "must be at least 2")
    require(0 <= data["n_edges"] <= d * (d - 1) // 2, path, "data.n_edges", f"must be in [0, {d * (d - 1) // 2}]")
    require(0.0 < data["val_fraction"] < 1.0, path, "data.val_fraction", "must be in (0, 1)")
    require(data["noise_df"] > 2.0, path, "data.noise_df", "must exceed 2 (finite variance)")
    require(data["raw_scale_max"] >= 1.0, path, "data.raw_scale_max", "must be at least 1")
    require(
        data["n_samples"] * data["val_fraction"] >= 2, path, "data.n_samples", "leaves fewer than 2 validation samples"
    )
    for key in ("latent_dim", "hidden_dim"):
        require(model[key] >= 1, path, f"model.{key}", "must be a positive integer")
    for key in ("epochs", "batch_size"):
        require(training[key] >= 1, path, f"training.{key}", "must be a positive integer")
    for key in ("learning_rate_init", "learning_rate_max"):
        require(training[key] > 0, path, f"training.{key}", "must be positive")
    require(training["warmup_epochs"] >= 0, path, "training.warmup_epochs", "must not be negative")
    require(training["plateau_patience"] >= 0, path, "training.plateau_patience", "must not be negative")
    require(0.0 < training["plateau_factor"] < 1.0, path, "training.plateau_factor", "must be in (0, 1)")
    for key in ("lambda_recon", "lambda_sparse", "lambda_acyclic", "lambda_disen", "grad_clip_norm", "weight_decay"):
        require(training[key] >= 0, path, f"training.{key}", "must not be negative")
    require(0.0 < training["edge_threshold"] < 1.0, path, "training.edge_threshold", "must be in (0, 1)")
    return config
