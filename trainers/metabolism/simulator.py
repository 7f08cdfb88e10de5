"""The metabolic network simulator and its on-disk data cache.

Owns the ground truth: reaction structure, rate constants, metabolite types, homeostatic
lambdas and baselines. It writes two files per simulation section hash:

- ``observations.npz``: what training may see (concentrations over time, the reaction
  structure: substrate indices, substrate orders, stoichiometric matrix);
- ``ground_truth.npz``: what only evaluation may read (log10 rate constants, types,
  per-type lambdas and baselines).

Dynamics: dc_i/dt = sum_j S_ij k_j prod_s c_s^|s| - lambda_t(i) (c_i - c_base_t(i)),
forward Euler with step delta_t, concentrations clamped at zero.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from trainers.metabolism.config import section_hash

MAX_SUBSTRATES = 2


@dataclass(frozen=True)
class Observations:
    """Everything the training path receives: concentrations and reaction structure."""

    concentrations: np.ndarray  # (n_frames, n_metabolites), float32
    substrate_index: np.ndarray  # (n_reactions, MAX_SUBSTRATES) metabolite index, -1 = none
    substrate_order: np.ndarray  # (n_reactions, MAX_SUBSTRATES) |s| in {1, 2}, 0 = none
    stoichiometry: np.ndarray  # (n_metabolites, n_reactions) net coefficients S_ij
    delta_t: float


@dataclass(frozen=True)
class GroundTruth:
    """Read by evaluation only (evaluate.Evaluator): never by a loss."""

    log_k: np.ndarray  # (n_reactions,) log10 rate constants
    types: np.ndarray  # (n_metabolites,) type of each metabolite
    lambdas: np.ndarray  # (n_types,)
    baselines: np.ndarray  # (n_types,)


def build_reactions(simulation: dict[str, Any], rng: np.random.Generator):
    """Autocatalytic cycle steps (food + catalyst -> 2 catalyst) and random mass-balanced reactions.

    No two reactions share the same substrate set: two reactions with equal rate laws
    would make their rate constants unidentifiable from any data.
    """
    n_metabolites, n_reactions = simulation["n_metabolites"], simulation["n_reactions"]
    n_cycle = int(round(simulation["cycle_fraction"] * n_reactions))
    cycle_length = min(simulation["cycle_length"], n_metabolites)
    substrate_index = np.full((n_reactions, MAX_SUBSTRATES), -1, dtype=np.int64)
    substrate_order = np.zeros((n_reactions, MAX_SUBSTRATES), dtype=np.int64)
    stoichiometry = np.zeros((n_metabolites, n_reactions), dtype=np.float64)
    used_substrate_sets: set[frozenset] = set()
    reaction = 0
    for _attempt in range(1000 * n_reactions):
        if reaction == n_reactions:
            break
        if reaction < n_cycle:
            members = rng.choice(n_metabolites, size=cycle_length, replace=False)
            steps = [(members[p], members[(p + 1) % cycle_length]) for p in range(cycle_length)]
            steps = steps[: n_cycle - reaction]
            keys = [frozenset(step) for step in steps]
            if len(set(keys)) < len(keys) or used_substrate_sets.intersection(keys):
                continue
            for (food, catalyst), key in zip(steps, keys):  # food + catalyst -> 2 catalyst
                substrate_index[reaction] = (food, catalyst)
                substrate_order[reaction] = (1, 1)
                stoichiometry[food, reaction] -= 1
                stoichiometry[catalyst, reaction] += 1
                used_substrate_sets.add(key)
                reaction += 1
        elif rng.random() < 0.5:  # 2A -> B + C: a second-order substrate term
            a, b, c = rng.choice(n_metabolites, size=3, replace=False)
            if frozenset([(a, 2)]) in used_substrate_sets:
                continue
            used_substrate_sets.add(frozenset([(a, 2)]))
            substrate_index[reaction, 0], substrate_order[reaction, 0] = a, 2
            stoichiometry[a, reaction] -= 2
            stoichiometry[[b, c], reaction] += 1
            reaction += 1
        else:  # A + B -> C + D
            a, b, c, d = rng.choice(n_metabolites, size=4, replace=False)
            if frozenset((a, b)) in used_substrate_sets:
                continue
            used_substrate_sets.add(frozenset((a, b)))
            substrate_index[reaction] = (a, b)
            substrate_order[reaction] = (1, 1)
            stoichiometry[[a, b], reaction] -= 1
            stoichiometry[[c, d], reaction] += 1
            reaction += 1
    if reaction < n_reactions:
        raise ValueError(
            f"cannot place {n_reactions} reactions with distinct substrates among {n_metabolites} metabolites"
        )
    return substrate_index, substrate_order, stoichiometry


def reaction_rates(
    concentrations: np.ndarray, rate_constants: np.ndarray, substrate_index: np.ndarray, substrate_order: np.ndarray
) -> np.ndarray:
    """Mass-action v_j = k_j prod_s c_s^|s| for one state (n_metabolites,)."""
    padded = np.append(concentrations, 1.0)  # index -1 points at a constant 1
    return rate_constants * np.prod(padded[substrate_index] ** substrate_order, axis=1)


def simulate(simulation: dict[str, Any]) -> tuple[Observations, GroundTruth]:
    """Generate one trajectory; every random draw comes from ``simulation.seed``."""
    rng = np.random.default_rng(simulation["seed"])
    n_metabolites, n_types = simulation["n_metabolites"], simulation["n_metabolite_types"]
    substrate_index, substrate_order, stoichiometry = build_reactions(simulation, rng)
    log_k = rng.uniform(simulation["log_k_min"], simulation["log_k_max"], size=simulation["n_reactions"])
    types = rng.permutation(np.arange(n_metabolites) % n_types)
    lambdas = np.asarray(simulation["homeostatic_lambda_per_type"], dtype=np.float64)
    baselines = np.asarray(simulation["homeostatic_baseline_per_type"], dtype=np.float64)
    rate_constants = 10.0**log_k
    state = rng.uniform(simulation["concentration_min"], simulation["concentration_max"], size=n_metabolites)
    delta_t = simulation["delta_t"]
    frames = np.empty((simulation["n_frames"], n_metabolites))
    for frame in range(simulation["n_frames"]):
        frames[frame] = state
        derivative = stoichiometry @ reaction_rates(state, rate_constants, substrate_index, substrate_order)
        derivative -= lambdas[types] * (state - baselines[types])
        state = np.maximum(state + delta_t * derivative, 0.0)
    noise = simulation["measurement_noise"] * rng.standard_normal(frames.shape)
    observed = np.maximum(frames + noise, 0.0) if simulation["measurement_noise"] > 0 else frames
    observations = Observations(
        observed.astype(np.float32), substrate_index, substrate_order, stoichiometry.astype(np.float32), float(delta_t)
    )
    truth = GroundTruth(log_k, types, lambdas, baselines)
    return observations, truth


def data_folder(cache_dir: Path, simulation: dict[str, Any]) -> Path:
    return cache_dir / f"data_{section_hash(simulation)}"


def ensure_data(cache_dir: Path, simulation: dict[str, Any]) -> Path:
    """Simulate once per simulation section; concurrent runs wait on a file lock."""
    folder = data_folder(cache_dir, simulation)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".lock")):
        if not (folder / "observations.npz").exists():
            observations, truth = simulate(simulation)
            save_npz_atomic(
                folder / "ground_truth.npz",
                log_k=truth.log_k,
                types=truth.types,
                lambdas=truth.lambdas,
                baselines=truth.baselines,
            )
            save_npz_atomic(
                folder / "observations.npz",
                concentrations=observations.concentrations,
                substrate_index=observations.substrate_index,
                substrate_order=observations.substrate_order,
                stoichiometry=observations.stoichiometry,
                delta_t=np.float64(observations.delta_t),
            )
    return folder


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """np.savez into memory, then one atomic rename."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_observations(folder: Path) -> Observations:
    with np.load(folder / "observations.npz") as data:
        return Observations(
            data["concentrations"],
            data["substrate_index"],
            data["substrate_order"],
            data["stoichiometry"],
            float(data["delta_t"]),
        )


def load_ground_truth(folder: Path) -> GroundTruth:
    """Only evaluation reads this (train.py builds evaluate.Evaluator with it); no loss ever sees it."""
    with np.load(folder / "ground_truth.npz") as data:
        return GroundTruth(data["log_k"], data["types"], data["lambdas"], data["baselines"])
