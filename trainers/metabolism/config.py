"""The trainer's configuration: defaults, loading with yaml.safe_load, and validation.

A config has the sections ``simulation:``, ``graph_model:`` and ``training:`` (plus an
optional ``description`` text). Every key is known here; trainers.common checks each
value's type against its default, this module the ranges and combinations. An unknown
key or a bad value raises ``ConfigError`` with a one-line message naming the key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from memory.errors import ConfigError
from trainers import common

LOSS_FORMS = ("rollout", "residual", "separate_losses")
MODIFIERS = (
    "amplification",
    "contrastive",
    "curriculum",
    "lr_warmup",
    "multiscale",
    "grad_accumulation",
    "joint",  # issue 17: relaxes "Phase 1 frozen" (log_k trained at joint_lr_factor x learning_rate_k)
    "anchor",  # issue 17: with joint, a penalty keeping log_k close to Phase 1's
)
STRATEGIES = LOSS_FORMS + MODIFIERS

DEFAULTS: dict[str, dict[str, Any]] = {
    "simulation": {
        "n_metabolites": 24,
        "n_metabolite_types": 2,
        "n_reactions": 48,
        "n_frames": 600,
        "delta_t": 0.1,
        "seed": 42,
        "concentration_min": 1.0,
        "concentration_max": 9.0,
        "cycle_fraction": 1.0,  # share of reactions that are autocatalytic cycle steps
        "cycle_length": 3,
        "log_k_min": -2.0,
        "log_k_max": -1.0,
        "homeostatic_lambda_per_type": [0.001, 0.002],
        "homeostatic_baseline_per_type": [4.0, 6.0],
        "measurement_noise": 0.0,  # std of Gaussian noise added to observed concentrations
    },
    "graph_model": {
        "hidden_dim_sub": 64,
        "n_layers_sub": 3,
        "hidden_dim_node": 64,
        "n_layers_node": 3,
        "embedding_dim": 2,
        "embedding_init_std": 0.01,  # embeddings start as N(0, std^2) draws (training.seed)
    },
    "training": {
        "seed": 0,
        "device": "auto",  # auto | cpu | cuda | cuda:N
        "torch_threads": 0,  # 0 = auto: $OMP_NUM_THREADS, else a quarter of the cores
        "cache_dir": "",  # "" = $UCBX_CACHE_DIR or ~/.cache/ucbx/metabolism
        "freeze_stoichiometry": True,
        # Phase 1: rate constants and MLP_sub on one-step dc/dt
        "skip_phase1": False,
        "phase1_iterations": 3000,
        "phase1_batch_size": 64,  # frames per gradient step
        "learning_rate_k": 0.005,
        "learning_rate_sub": 0.001,
        # issue 17: MLP_node and embeddings trained in Phase 1 too (as the seed's own system does)
        "phase1_train_node": False,
        "learning_rate_node": 0.001,  # Phase 1's MLP_node learning rate (only with phase1_train_node)
        "learning_rate_embedding": 0.001,  # Phase 1's embedding learning rate (only with phase1_train_node)
        # Phase 2: MLP_node and embeddings, everything of Phase 1 frozen
        "homeostasis_training": True,
        "homeostasis_time_step": 4,
        "learning_rate_node_homeostasis": 0.001,
        "learning_rate_embedding_homeostasis": 0.001,
        "data_augmentation_loop": 200,  # gradient steps of Phase 2
        "batch_size": 8,  # rollouts per gradient step
        "phase2_strategy": "rollout",  # one loss form, optionally "+"-joined with modifiers
        "amplification_factor": 50.0,
        "amplification_decay": False,  # decay the factor geometrically to 1x over training
        "contrastive_weight": 0.1,
        "curriculum_stages": 2,  # stage s rolls out time_step / 2**s steps
        "warmup_fraction": 0.1,
        "warmup_peak_factor": 10.0,  # peak learning rate = factor x base learning rate
        "lr_final_factor": 0.01,  # cosine decays to factor x base learning rate
        "multiscale_levels": 4,  # rollout lengths time_step, /2, /4, ... (levels of them)
        "accumulation_steps": 4,
        "joint_lr_factor": 0.01,  # joint: log_k's Phase 2 learning rate = factor x learning_rate_k
        "anchor_weight": 1.0,  # anchor: weight of mean((log_k - Phase 1 log_k)^2) in the loss
        # issue 16: progress lines with the evaluation metrics of the current model (slope ratios,
        # clustering, R2) at this many evenly spaced points of Phase 2; 0: phase2_loss lines only
        "progress_checkpoints": 5,
    },
}

POSITIVE = {
    "simulation": ("n_metabolites", "n_metabolite_types", "n_reactions", "n_frames", "cycle_length", "delta_t"),
    "graph_model": (
        "hidden_dim_sub",
        "n_layers_sub",
        "hidden_dim_node",
        "n_layers_node",
        "embedding_dim",
        "embedding_init_std",
    ),
    "training": (
        "phase1_iterations",
        "phase1_batch_size",
        "homeostasis_time_step",
        "data_augmentation_loop",
        "batch_size",
        "curriculum_stages",
        "multiscale_levels",
        "accumulation_steps",
        "learning_rate_k",
        "learning_rate_sub",
        "learning_rate_node",
        "learning_rate_embedding",
        "learning_rate_node_homeostasis",
        "learning_rate_embedding_homeostasis",
        "amplification_factor",
        "warmup_peak_factor",
        "lr_final_factor",
        "joint_lr_factor",
        "anchor_weight",
    ),
}


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config over the defaults (trainers.common), then check ranges and combinations."""
    config = common.load_config(path, DEFAULTS)
    validate(config, path)
    return config


def validate(config: dict[str, Any], path: str | Path) -> None:
    """The first problem raises ConfigError naming its key."""
    require = common.require
    for section, keys in POSITIVE.items():
        for key in keys:
            value = config[section][key]
            require(value > 0, path, f"{section}.{key}", f"must be positive, got {value!r}")
    simulation, training = config["simulation"], config["training"]
    n_types = simulation["n_metabolite_types"]
    for key in ("homeostatic_lambda_per_type", "homeostatic_baseline_per_type"):
        values = simulation[key]
        require(
            isinstance(values, list) and len(values) == n_types,
            path,
            f"simulation.{key}",
            f"must list one number per type ({n_types})",
        )
    require(0.0 <= simulation["cycle_fraction"] <= 1.0, path, "simulation.cycle_fraction", "must be in [0, 1]")
    require(
        simulation["concentration_min"] < simulation["concentration_max"],
        path,
        "simulation.concentration_min",
        "must be below concentration_max",
    )
    require(
        simulation["log_k_min"] <= simulation["log_k_max"], path, "simulation.log_k_min", "must not exceed log_k_max"
    )
    require(
        simulation["n_frames"] > training["homeostasis_time_step"] + 1,
        path,
        "simulation.n_frames",
        "must exceed training.homeostasis_time_step + 1",
    )
    require(
        training["freeze_stoichiometry"],
        path,
        "training.freeze_stoichiometry",
        "must be true (learning S is not built)",
    )
    require(0.0 <= training["warmup_fraction"] < 1.0, path, "training.warmup_fraction", "must be in [0, 1)")
    checkpoints = training["progress_checkpoints"]
    require(checkpoints >= 0, path, "training.progress_checkpoints", f"must be 0 or more, got {checkpoints!r}")
    parse_strategy(training["phase2_strategy"], path)


def parse_strategy(text: Any, source: str | Path = "config") -> tuple[str, frozenset[str]]:
    """``"residual+grad_accumulation"`` -> ("residual", {"grad_accumulation"}); refuses bad combinations."""
    parts = [part.strip() for part in str(text).split("+") if part.strip()]
    unknown = [part for part in parts if part not in STRATEGIES]
    if not parts or unknown:
        raise ConfigError(
            f"{source}: 'training.phase2_strategy' unknown strategy {unknown or text!r} "
            f"(known: {', '.join(STRATEGIES)})"
        )
    forms = [part for part in parts if part in LOSS_FORMS]
    if len(forms) > 1:
        raise ConfigError(f"{source}: 'training.phase2_strategy' combines loss forms {forms}; pick one")
    form = forms[0] if forms else "rollout"
    modifiers = frozenset(part for part in parts if part in MODIFIERS)
    if {"curriculum", "multiscale"} <= modifiers:
        raise ConfigError(f"{source}: 'training.phase2_strategy' cannot combine curriculum and multiscale")
    if "anchor" in modifiers and "joint" not in modifiers:
        raise ConfigError(f"{source}: 'training.phase2_strategy' anchor keeps a trained log_k near Phase 1; add joint")
    if form == "residual" and modifiers & {"curriculum", "multiscale"}:
        raise ConfigError(
            f"{source}: 'training.phase2_strategy' residual has no rollout to schedule "
            f"(curriculum/multiscale need rollout or separate_losses)"
        )
    return form, modifiers


def section_hash(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (cache keys)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def phase1_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What determines a Phase 1 checkpoint besides the simulation.

    With ``phase1_train_node`` the MLP_node and embedding settings join the key; without it
    the key is what it was before the option existed, so earlier caches stay valid.
    """
    training = config["training"]
    graph = config["graph_model"]
    settings = {
        "phase1_iterations": training["phase1_iterations"],
        "phase1_batch_size": training["phase1_batch_size"],
        "learning_rate_k": training["learning_rate_k"],
        "learning_rate_sub": training["learning_rate_sub"],
        "hidden_dim_sub": graph["hidden_dim_sub"],
        "n_layers_sub": graph["n_layers_sub"],
    }
    if training["phase1_train_node"]:
        settings.update(
            {
                "phase1_train_node": True,
                "learning_rate_node": training["learning_rate_node"],
                "learning_rate_embedding": training["learning_rate_embedding"],
                "hidden_dim_node": graph["hidden_dim_node"],
                "n_layers_node": graph["n_layers_node"],
                "embedding_dim": graph["embedding_dim"],
                "embedding_init_std": graph["embedding_init_std"],
            }
        )
    return settings
