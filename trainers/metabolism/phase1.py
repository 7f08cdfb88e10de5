"""Phase 1: learn the rate constants and MLP_sub on one-step dc/dt, and cache the result.

The stoichiometry is given (freeze_stoichiometry). The checkpoint is keyed by the hash of
(simulation, Phase 1 settings) and shared by every Phase 2 run of every slot; a file lock
makes four slots that start together train it once. Phase 1 is deterministic given that
hash (its own seed, not training.seed), so a cached checkpoint is reused whether or not
``skip_phase1`` is set; without one, it is trained first, and the log says so.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from trainers.metabolism.config import phase1_settings, section_hash
from trainers.metabolism.model import MetabolicModel
from trainers.metabolism.simulator import Observations

PHASE1_SEED = 0  # Phase 1 is shared by all runs, so it does not use training.seed
GAUGE_PENALTY = 100.0


def phase1_checkpoint_path(cache_dir: Path, config: dict[str, Any]) -> Path:
    return cache_dir / f"phase1_{section_hash(config['simulation'], phase1_settings(config))}.pt"


def one_step_targets(concentrations: torch.Tensor, delta_t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """States c_t and finite-difference derivatives (c_{t+1} - c_t) / delta_t."""
    return concentrations[:-1], (concentrations[1:] - concentrations[:-1]) / delta_t


def train_phase1(
    model: MetabolicModel,
    concentrations: torch.Tensor,
    delta_t: float,
    training: dict[str, Any],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Adam on MSE(dc/dt) with cosine decay; returns the loss history and wall time.

    MLP_sub is re-initialised from PHASE1_SEED first, so the cached checkpoint does not
    depend on which run (with which training.seed) happened to train it.
    """
    torch.manual_seed(PHASE1_SEED)
    for module in model.substrate.modules():
        if isinstance(module, torch.nn.Linear):
            module.reset_parameters()
    generator = torch.Generator(device="cpu").manual_seed(PHASE1_SEED)
    states, targets = one_step_targets(concentrations, delta_t)
    optimizer = torch.optim.Adam(
        [
            {"params": [model.log_k], "lr": training["learning_rate_k"]},
            {"params": list(model.substrate.parameters()), "lr": training["learning_rate_sub"]},
        ]
    )
    n_iterations = training["phase1_iterations"]
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / n_iterations))
    )
    batch_size = min(training["phase1_batch_size"], len(states))
    losses = []
    start = time.perf_counter()
    for iteration in range(n_iterations):
        batch = torch.randint(len(states), (batch_size,), generator=generator).to(states.device)
        prediction = model.reaction_derivative(states[batch])
        loss = torch.mean((prediction - targets[batch]) ** 2)
        gauge = torch.sum((model.unit_substrate_values() - 1.0) ** 2)
        optimizer.zero_grad(set_to_none=True)
        (loss + GAUGE_PENALTY * gauge).backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if (iteration + 1) % max(1, n_iterations // 10) == 0:
            log(f"phase1 iteration {iteration + 1}/{n_iterations} loss {loss.item():.6g}")
    with torch.no_grad():
        full_loss = torch.mean((model.reaction_derivative(states) - targets) ** 2).item()
    return {"losses": losses, "final_loss": full_loss, "seconds": time.perf_counter() - start}


def load_or_train_phase1(
    model: MetabolicModel,
    observations: Observations,
    concentrations: torch.Tensor,
    config: dict[str, Any],
    cache_dir: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Fill the reaction part of ``model`` from the cache, training and caching it if absent."""
    path = phase1_checkpoint_path(cache_dir, config)
    with FileLock(str(path) + ".lock"):
        if path.exists():
            log(f"phase1: reusing cached checkpoint {path}")
            checkpoint = torch.load(path, map_location=concentrations.device, weights_only=False)
            checkpoint["cached"] = True
        else:
            if config["training"]["skip_phase1"]:
                log(f"phase1: skip_phase1 is set but no cached Phase 1 exists at {path}; training it now")
            else:
                log(f"phase1: training, then caching at {path}")
            checkpoint = train_phase1(model, concentrations, observations.delta_t, config["training"], log)
            checkpoint["reaction_state"] = {
                name: value.detach().cpu()
                for name, value in model.state_dict().items()
                if name.startswith(("log_k", "substrate."))
            }
            save_checkpoint_atomic(path, checkpoint)
            checkpoint["cached"] = False
    model.load_state_dict(checkpoint["reaction_state"], strict=False)
    return checkpoint


def save_checkpoint_atomic(path: Path, checkpoint: dict[str, Any]) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        torch.save(checkpoint, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
