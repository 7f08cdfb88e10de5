"""Phase 1: learn the rate constants and MLP_sub on one-step dc/dt, and cache the result.

With ``training.phase1_train_node`` (issue 17) MLP_node and the embeddings are trained
jointly with them on the same one-step loss, as the seed's own system does: the
homeostatic signal then has a place to go other than the rate constants. They are
re-initialised from PHASE1_SEED first and cached with the reaction part, and Phase 2
starts from them (training.seed then no longer changes Phase 2's starting point, only its
batches).

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
CACHED_PREFIXES = ("log_k", "substrate.")  # the reaction part
NODE_PREFIXES = ("node.", "embeddings")  # cached too when Phase 1 trains MLP_node


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
    train_node = training["phase1_train_node"]
    groups = [
        {"params": [model.log_k], "lr": training["learning_rate_k"]},
        {"params": list(model.substrate.parameters()), "lr": training["learning_rate_sub"]},
    ]
    if train_node:
        model.reset_homeostasis()
        groups += [
            {"params": list(model.node.parameters()), "lr": training["learning_rate_node"]},
            {"params": [model.embeddings], "lr": training["learning_rate_embedding"]},
        ]
    generator = torch.Generator(device="cpu").manual_seed(PHASE1_SEED)
    states, targets = one_step_targets(concentrations, delta_t)
    optimizer = torch.optim.Adam(groups)
    n_iterations = training["phase1_iterations"]
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / n_iterations))
    )
    batch_size = min(training["phase1_batch_size"], len(states))
    losses = []
    start = time.perf_counter()
    for iteration in range(n_iterations):
        batch = torch.randint(len(states), (batch_size,), generator=generator).to(states.device)
        prediction = phase1_derivative(model, states[batch], train_node)
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
        full_loss = torch.mean((phase1_derivative(model, states, train_node) - targets) ** 2).item()
    return {"losses": losses, "final_loss": full_loss, "seconds": time.perf_counter() - start}


def phase1_derivative(model: MetabolicModel, states: torch.Tensor, train_node: bool) -> torch.Tensor:
    """What Phase 1 fits to dc/dt: the reaction part, plus MLP_node with phase1_train_node."""
    derivative = model.reaction_derivative(states)
    return derivative + model.node_derivative(states) if train_node else derivative


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
            with_node = " (with MLP_node and embeddings)" if config["training"]["phase1_train_node"] else ""
            if config["training"]["skip_phase1"]:
                log(f"phase1: skip_phase1 is set but no cached Phase 1 exists at {path}; training it now{with_node}")
            else:
                log(f"phase1: training{with_node}, then caching at {path}")
            checkpoint = train_phase1(model, concentrations, observations.delta_t, config["training"], log)
            cached = CACHED_PREFIXES + (NODE_PREFIXES if config["training"]["phase1_train_node"] else ())
            checkpoint["reaction_state"] = {
                name: value.detach().cpu() for name, value in model.state_dict().items() if name.startswith(cached)
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
