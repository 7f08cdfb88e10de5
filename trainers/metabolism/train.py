"""One training run, top to bottom: config -> data -> Phase 1 -> Phase 2 -> metrics and plots.

Writes ``run_dir/analysis.log`` (``name: value`` lines), ``run_dir/visual.json``,
``run_dir/model.pt`` (the trained model's state) and the plots under
``run_dir/tmp_training/``. A run that blows up still writes its metrics (nan where they
cannot be computed) with ``diverged: 1`` and returns normally.
"""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainers.common import ProgressLog, cap_threads, pick_device, write_analysis_log, write_visual_json
from trainers.metabolism import evaluate, plots
from trainers.metabolism.config import load_config
from trainers.metabolism.model import MetabolicModel
from trainers.metabolism.phase1 import load_or_train_phase1, save_checkpoint_atomic
from trainers.metabolism.phase2 import Phase2Result, evaluation_rollout_loss, observed_residuals, train_phase2
from trainers.metabolism.simulator import ensure_data, load_ground_truth, load_observations
from trainers.metabolism.strategies import Phase2Plan


def cache_directory(training: dict[str, Any]) -> Path:
    """training.cache_dir, else $UCBX_CACHE_DIR, else ~/.cache/ucbx/metabolism."""
    chosen = training["cache_dir"] or os.environ.get("UCBX_CACHE_DIR") or Path.home() / ".cache/ucbx/metabolism"
    path = Path(chosen).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_node_function(model: MetabolicModel, amplification: float) -> evaluate.NodeFunction:
    """The node term that really enters dc/dt (amplified when a factor is in force)."""
    device = model.log_k.device

    def node_function(concentrations: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            states = torch.as_tensor(concentrations, dtype=torch.float32, device=device)
            return (amplification * model.node_derivative(states)).double().cpu().numpy()

    return node_function


def undefined_function(values: np.ndarray) -> np.ndarray:
    """What a blown-up run's node function and embeddings are reported as: nan."""
    return np.full_like(values, np.nan, dtype=np.float64)


def checkpoint_metrics(evaluator: evaluate.Evaluator, model: MetabolicModel, amplification: float) -> dict[str, float]:
    """The evaluation metrics of the model as it is now ({} while a parameter is not finite)."""
    trained = [*model.homeostasis_parameters(), model.log_k]
    if not all(torch.isfinite(parameter).all() for parameter in trained):
        return {}
    return evaluator.checkpoint_metrics(
        model_node_function(model, amplification),
        model.embeddings.detach().cpu().double().numpy(),
        model.log_k.detach().cpu().double().numpy(),
    )


def tail_mean(losses: list[float]) -> float:
    """Mean training loss over the last tenth of the batches."""
    return float(np.mean(losses[-max(1, len(losses) // 10) :])) if losses else float("nan")


def run(config_path: str | Path, run_dir: str | Path) -> dict[str, float]:
    """Train as configured; returns the metrics written to analysis.log."""
    started = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = load_config(config_path)
    simulation, training = config["simulation"], config["training"]

    def log(message: str) -> None:
        print(f"[metabolism {time.perf_counter() - started:7.1f}s] {message}", flush=True)

    device = pick_device(training["device"])
    log(f"device {device}, torch threads {cap_threads(training['torch_threads'])}")

    # -- data: simulated once per simulation section, cached on disk
    cache_dir = cache_directory(training)
    data_dir = ensure_data(cache_dir, simulation)
    observations = load_observations(data_dir)
    concentrations = torch.as_tensor(observations.concentrations, device=device)
    log(
        f"data {data_dir.name}: {concentrations.shape[0]} frames x {concentrations.shape[1]} metabolites, "
        f"{observations.stoichiometry.shape[1]} reactions"
    )

    # -- model; training.seed fixes MLP_node's initialisation and the embeddings
    torch.manual_seed(training["seed"])
    initial_log_k = 0.5 * (simulation["log_k_min"] + simulation["log_k_max"])
    model = MetabolicModel(observations, config["graph_model"], initial_log_k).to(device)

    # -- Phase 1: rate constants and MLP_sub (cached, shared by every Phase 2 run)
    phase1 = load_or_train_phase1(model, observations, concentrations, config, cache_dir, log)
    phase1_log_k = model.log_k.detach().cpu().double().numpy().copy()
    phase1_residuals = observed_residuals(model, concentrations, observations.delta_t).double().cpu().numpy()

    # -- the ground truth, read here for evaluation only: the checkpoints' metrics and the final ones
    evaluator = evaluate.Evaluator(
        load_ground_truth(data_dir), observations.concentrations.astype(np.float64), phase1_residuals, phase1_log_k
    )

    # -- Phase 2: MLP_node and embeddings, Phase 1 frozen
    plan = Phase2Plan.from_training(training)
    phase2 = Phase2Result(final_amplification=plan.final_amplification())
    if training["homeostasis_training"]:
        relaxed = " (relaxes Phase 1 frozen: log_k trained)" if plan.joint else ""
        log(
            f"phase2: strategy {training['phase2_strategy']}{relaxed}, time_step "
            f"{training['homeostasis_time_step']}, {plan.n_batches} batches of {training['batch_size']}"
        )
        progress = ProgressLog(run_dir, plan.n_batches, checkpoints=training["progress_checkpoints"])
        checkpoint = partial(checkpoint_metrics, evaluator)
        phase2 = train_phase2(model, concentrations, observations.delta_t, training, log, progress, checkpoint)
        if phase2.diverged:
            log(f"phase2 diverged: {phase2.divergence_reason}")

    # -- evaluation of the trained model
    observed = evaluator.observed
    node_function = undefined_function if phase2.diverged else model_node_function(model, phase2.final_amplification)
    embeddings = model.embeddings.detach().cpu().double().numpy()
    fits = evaluator.fits(node_function)
    metrics = {
        **evaluator.rate_metrics(model.log_k.detach().cpu().double().numpy()),
        "phase1_loss": float(phase1["final_loss"]),
        "phase1_time_min": phase1["seconds"] / 60.0,
        "phase1_cached": float(phase1["cached"]),
        "phase2_time_min": phase2.seconds / 60.0,
        "phase2_loss": float("nan")
        if phase2.diverged
        else evaluation_rollout_loss(
            model, concentrations, observations.delta_t, training["homeostasis_time_step"], phase2.final_amplification
        ),
        "phase2_train_loss": tail_mean(phase2.losses),
        **evaluator.model_metrics(
            fits, node_function, undefined_function(embeddings) if phase2.diverged else embeddings
        ),
        "diverged": float(phase2.diverged),
    }
    truth = evaluator.truth
    phase1_r2 = evaluator.phase1_r2

    # -- plots and the numbers behind them
    visual = {
        "diverged": phase2.diverged,
        "amplification": phase2.final_amplification,
        "mlp_node": {
            "magnitude": metrics["phase2_node_magnitude"],
            "gt_magnitude": evaluate.node_magnitude(evaluate.ground_truth_node_function(truth), observed),
            "per_type": fits,
        },
        "worst_slope_ratio": metrics["worst_slope_ratio"],
        "worst_slope_vs_ceiling": metrics["worst_slope_vs_ceiling"],
        "embedding": {
            "n_clusters": metrics["embedding_n_clusters"],
            "accuracy": metrics["embedding_cluster_acc"],
            "accuracy_strict": metrics["embedding_cluster_acc_strict"],
            "adjusted_rand_index": metrics["embedding_ari"],
            "silhouette": metrics["embedding_silhouette"],
            "n_types": len(truth.lambdas),
        },
        "rate_constants_R2": metrics["rate_constants_R2"],
        "phase1_rate_constants_R2": phase1_r2,
    }
    save_checkpoint_atomic(run_dir / "model.pt", {"model": model.state_dict(), "config": config})
    write_visual_json(run_dir, visual)
    plots.write_all(
        run_dir / "tmp_training",
        plan.n_batches,
        model,
        truth,
        fits,
        phase2.losses,
        phase2.final_amplification,
        phase2.diverged,
    )

    metrics["training_time_min"] = (time.perf_counter() - started) / 60.0
    write_analysis_log(run_dir, metrics, phase2.diverged)
    log(
        f"done: avg_slope_ratio {metrics['avg_slope_ratio']:.4g}, worst_slope_ratio "
        f"{metrics['worst_slope_ratio']:.4g}, worst_slope_vs_ceiling {metrics['worst_slope_vs_ceiling']:.4g}, "
        f"rate_constants_R2 "
        f"{metrics['rate_constants_R2']:.4g}, embedding_cluster_acc {metrics['embedding_cluster_acc']:.3g}, "
        f"diverged {int(phase2.diverged)}"
    )
    return metrics
