"""A surrogate of the reward over the search space, fitted on the finished nodes.

A Gaussian process (scikit-learn) on the searched values, each scaled to [0, 1]
(log10 for log-scaled parameters, one-hot for choices), plus the slot's index. The
policy uses it to rank candidate mutations by mean + `KAPPA` x std. With fewer than
`MIN_POINTS` successful runs there is no surrogate and ranking falls back to evidence
and priority alone.

The fit is bounded whatever the log's length: it uses at most `MAX_POINTS` runs, the
`BEST_POINTS` best rewards and the most recent of the others (log order), so a fit costs
the same at 300 entries and at 100,000. The kernel's hyperparameters are optimised only
every `TUNE_EVERY` new results (the policy passes the last tuned kernel back); in between
a fit keeps them fixed and costs one Cholesky factorisation of at most 256 x 256.
Fit and prediction run with one BLAS/OpenMP thread (threadpoolctl): the agent shares the
machine with the trainers, and a GP this small is slower, not faster, with many threads.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import ThreadpoolController

from agent.history import NodeRecord
from slots.space import Parameter, SearchSpace

if TYPE_CHECKING:  # scikit-learn is imported when a first surrogate is fitted: every ucbx command starts faster
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import Kernel

MIN_POINTS = 5
MAX_POINTS = 256  # runs a fit uses at most ...
BEST_POINTS = 64  # ... of which the best rewards; the rest are the most recent
KAPPA = 1.0
TUNE_EVERY = 16  # new results between two optimisations of the kernel's hyperparameters


@functools.cache
def _controller() -> ThreadpoolController:
    """The process's BLAS/OpenMP libraries, found once (finding them reads /proc: ~10 ms a time)."""
    return ThreadpoolController()


def one_thread():
    """A context in which BLAS and OpenMP use one thread."""
    return _controller().limit(limits=1)


def _encode(parameter: Parameter, value: Any) -> list[float]:
    if parameter.kind == "choice":
        return [1.0 if value == choice else 0.0 for choice in parameter.choices]
    if parameter.kind == "bool":
        return [1.0 if value else 0.0]
    if parameter.log:
        low, high, value = math.log10(parameter.low), math.log10(parameter.high), math.log10(value)
    else:
        low, high = parameter.low, parameter.high
    return [(float(value) - low) / (high - low)]


def training_set(points: list[NodeRecord]) -> list[NodeRecord]:
    """``points`` (in log order) cut to `MAX_POINTS`: the `BEST_POINTS` best rewards, then the most recent."""
    if len(points) <= MAX_POINTS:
        return points
    best = set(sorted(range(len(points)), key=lambda i: -points[i].reward)[:BEST_POINTS])
    recent = [i for i in range(len(points)) if i not in best][-(MAX_POINTS - BEST_POINTS) :]
    return [points[i] for i in sorted(best.union(recent))]


class Surrogate:
    """Reward predictions for configs; `fit` returns None when there is too little data."""

    def __init__(self, space: SearchSpace, n_slots: int, model: GaussianProcessRegressor):
        self.space = space
        self.n_slots = n_slots
        self.model = model

    @classmethod
    def fit(
        cls, space: SearchSpace, n_slots: int, records: list[NodeRecord], seed: int = 0, kernel: Kernel | None = None
    ) -> Surrogate | None:
        """A GP on the finished runs with a reward; with ``kernel`` (a tuned one), its hyperparameters are kept."""
        points = training_set(
            [r for r in records if r.finished and r.reward is not None and all(p.key in r.params for p in space)]
        )
        if len(points) < MIN_POINTS:
            return None
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        if kernel is None:
            kernel = ConstantKernel(1.0) * Matern(length_scale=0.5, nu=2.5) + WhiteKernel(0.01)
            model = GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=seed)
        else:
            model = GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=seed, optimizer=None)
        surrogate = cls(space, n_slots, model)
        features = np.array([surrogate.features(r.params, r.slot) for r in points])
        with warnings.catch_warnings(), one_thread():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(features, np.array([r.reward for r in points]))
        return surrogate

    @property
    def kernel(self) -> Kernel:
        """The fitted kernel, hyperparameters included (to fit again without tuning them)."""
        return self.model.kernel_

    def features(self, params: dict[str, Any], slot: int) -> list[float]:
        row = [x for p in self.space for x in _encode(p, params[p.key])]
        return row + [slot / max(1, self.n_slots - 1)]

    def acquisition(self, candidates: list[tuple[dict[str, Any], int]]) -> list[float]:
        """mean + KAPPA x std of the predicted reward, one per (params, slot)."""
        features = np.array([self.features(params, slot) for params, slot in candidates])
        with one_thread():
            mean, std = self.model.predict(features, return_std=True)
        return list(mean + KAPPA * std)
