"""A surrogate of the reward over the search space, fitted on the finished nodes.

A Gaussian process (scikit-learn) on the searched values, each scaled to [0, 1]
(log10 for log-scaled parameters, one-hot for choices), plus the slot's index. A run
that failed because of its config (crash, diverged, nan, timeout, oom) is a point at the
worst reward (`ucb.rewards.WORST_REWARD`), as Optuna's documentation asks a failed trial
to be told to TPE: the surrogate learns where the cliffs are. A run lost to the
infrastructure (lost, cancelled) or stopped early (pruned) is no point. The acquisition
engine (agent/acquisition.py) ranks candidate changes by the expected improvement of
`predict`; with fewer than `MIN_POINTS` points there is no surrogate.

The fit is bounded whatever the log's length: it uses at most `MAX_POINTS` runs, the
`BEST_POINTS` best rewards and the most recent of the others (log order), so a fit costs
the same at 300 entries and at 100,000. The kernel's hyperparameters are optimised again
after `tune_gap` new results (a quarter more, at most `TUNE_EVERY`; the policy passes the
last tuned kernel back); in between a fit keeps them fixed and costs one Cholesky
factorisation of at most 256 x 256. The `Encoder` of the `SurrogateCache` keeps the rows
of the runs it last fitted on, so a refit encodes only the new runs; the predicted means
at those runs (`fitted_means`) give the engine its parents and its incumbent, so a
decision never encodes the whole log.
Fit and prediction run with one BLAS/OpenMP thread (threadpoolctl): the agent shares the
machine with the trainers, and a GP this small is slower, not faster, with many threads.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import ThreadpoolController

from agent.history import NodeRecord
from slots.space import Parameter, SearchSpace
from ucb.rewards import WORST_REWARD

if TYPE_CHECKING:  # scikit-learn is imported when a first surrogate is fitted: every ucbx command starts faster
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import Kernel

MIN_POINTS = 5
NOT_THE_CONFIGS_FAULT = ("lost", "cancelled", "pruned")  # failure kinds that say nothing about the config
MAX_POINTS = 256  # runs a fit uses at most ...
BEST_POINTS = 64  # ... of which the best rewards; the rest are the most recent
KAPPA = 1.0
LENGTH_SCALE_BOUNDS = (0.1, 2.0)  # one per input (ARD), inputs in [0, 1]: a long one says the input hardly matters
AMPLITUDE_BOUNDS = (0.05, 100.0)  # of the standardised reward: some signal is always looked for
NOISE_BOUNDS = (1e-3, 1.0)
TUNE_EVERY = 16  # new results between two optimisations of the kernel's hyperparameters, at most ...
TUNE_GROWTH = 0.25  # ... and at least this fraction of the results it was last tuned on (5, 6, 7, 8, 10, 12, ...)


@functools.cache
def _controller() -> ThreadpoolController:
    """The process's BLAS/OpenMP libraries, found once (finding them reads /proc: ~10 ms a time)."""
    return ThreadpoolController()


def one_thread():
    """A context in which BLAS and OpenMP use one thread."""
    return _controller().limit(limits=1)


class Encoder:
    """The surrogate's inputs for a (params, slot): each searched value scaled to [0, 1] (log10 for
    a log-scaled number), one-hot for a choice, then the slot's index scaled to [0, 1]. A value's
    inputs are computed once per encoder; `changed` builds a candidate's row from its parent's."""

    def __init__(self, space: SearchSpace, n_slots: int):
        self.space = space
        self.n_slots = n_slots
        self.columns: dict[str, slice] = {}
        start = 0
        for parameter in space:
            width = len(parameter.choices) if parameter.kind == "choice" else 1
            self.columns[parameter.key] = slice(start, start + width)
            start += width
        self.width = start + 1
        self._inputs: dict[tuple[str, Any], tuple[float, ...]] = {}
        self._rows: dict[tuple, np.ndarray] = {}

    def rows(self, records: list[NodeRecord]) -> np.ndarray:
        """One row per record; the rows of these records are kept until the next call."""
        kept: dict[tuple, np.ndarray] = {}
        found = []
        for record in records:
            key = (record.slot, tuple(record.params.items()))
            try:
                row = kept.get(key)
                if row is None:
                    row = self._rows.get(key)
                    if row is None:
                        row = self.row(record.params, record.slot)
                    kept[key] = row
            except TypeError:  # an unhashable value: encoded without the cache
                row = self.row(record.params, record.slot)
            found.append(row)
        self._rows = kept
        return np.array(found) if found else np.zeros((0, self.width))

    def forget_values(self) -> None:
        """Drop the remembered inputs of single values (a daemon meets new values all its life)."""
        self._inputs.clear()

    def row(self, params: dict[str, Any], slot: int) -> np.ndarray:
        row = np.empty(self.width)
        for parameter in self.space:
            row[self.columns[parameter.key]] = self.inputs(parameter, params[parameter.key])
        row[-1] = slot / max(1, self.n_slots - 1)
        return row

    def changed(self, row: np.ndarray, changes: Iterable[tuple[str, Any]]) -> np.ndarray:
        """``row`` with each (key, new value) of ``changes`` encoded in its place."""
        new = row.copy()
        for key, value in changes:
            new[self.columns[key]] = self.inputs(self.space.get(key), value)
        return new

    def matrix(self, candidates: list[tuple[dict[str, Any], int]]) -> np.ndarray:
        """One row per (params, slot)."""
        if not candidates:
            return np.zeros((0, self.width))
        return np.array([self.row(params, slot) for params, slot in candidates])

    def inputs(self, parameter: Parameter, value: Any) -> tuple[float, ...]:
        try:
            return self._inputs[parameter.key, value]
        except KeyError:
            found = self._inputs[parameter.key, value] = _encode(parameter, value)
            return found
        except TypeError:  # an unhashable value (a list among a choice's options)
            return _encode(parameter, value)


def _encode(parameter: Parameter, value: Any) -> tuple[float, ...]:
    if parameter.kind == "choice":
        return tuple(1.0 if value == choice else 0.0 for choice in parameter.choices)
    if parameter.kind == "bool":
        return (1.0 if value else 0.0,)
    if parameter.log:
        low, high, value = math.log10(parameter.low), math.log10(parameter.high), math.log10(value)
    else:
        low, high = parameter.low, parameter.high
    return ((float(value) - low) / (high - low),)


def target(record: NodeRecord) -> float | None:
    """What the surrogate learns from a finished run: its reward, the worst reward for a failure
    of its config, None for a run that says nothing about its config."""
    if not record.finished:
        return None
    if record.reward is not None:
        return record.reward
    if not record.failure or record.failure.startswith(NOT_THE_CONFIGS_FAULT):
        return None
    return WORST_REWARD


def tune_gap(tuned_at: int) -> int:
    """New results before the kernel is tuned again, after a tuning on ``tuned_at`` results."""
    return max(1, min(TUNE_EVERY, int(TUNE_GROWTH * tuned_at)))


def training_set(points: list[NodeRecord]) -> list[NodeRecord]:
    """``points`` (in log order) cut to `MAX_POINTS`: the `BEST_POINTS` best targets, then the most recent."""
    if len(points) <= MAX_POINTS:
        return points
    best = set(sorted(range(len(points)), key=lambda i: -target(points[i]))[:BEST_POINTS])
    recent = [i for i in range(len(points)) if i not in best][-(MAX_POINTS - BEST_POINTS) :]
    return [points[i] for i in sorted(best.union(recent))]


class Surrogate:
    """Reward predictions for configs; `fit` returns None when there is too little data."""

    def __init__(
        self, space: SearchSpace, n_slots: int, model: GaussianProcessRegressor | None, encoder: Encoder | None = None
    ):
        self.space = space
        self.n_slots = n_slots
        self.model = model
        self.encoder = encoder or Encoder(space, n_slots)
        self.features_seen = np.zeros((0, 0))  # the training inputs and targets, for `with_pending`
        self.targets_seen = np.zeros(0)
        self.points: list[NodeRecord] = []  # the finished runs it was fitted on (`training_set`) ...
        self.fitted_features = np.zeros((0, 0))  # ... and their inputs, one row each

    @classmethod
    def fit(
        cls,
        space: SearchSpace,
        n_slots: int,
        records: list[NodeRecord],
        seed: int = 0,
        kernel: Kernel | None = None,
        encoder: Encoder | None = None,
    ) -> Surrogate | None:
        """A GP on the finished runs (`target`); with ``kernel`` (a tuned one), its hyperparameters are kept.
        ``encoder``: one kept from an earlier fit (its rows are reused)."""
        keys = {parameter.key for parameter in space}
        points = training_set([r for r in records if keys <= r.params.keys() and target(r) is not None])
        if len(points) < MIN_POINTS:
            return None
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        surrogate = cls(space, n_slots, None, encoder)
        features = surrogate.encoder.rows(points)
        targets = np.array([target(r) for r in points])
        if kernel is None:
            kernel = ConstantKernel(1.0, constant_value_bounds=AMPLITUDE_BOUNDS) * Matern(
                length_scale=[0.5] * features.shape[1], length_scale_bounds=LENGTH_SCALE_BOUNDS, nu=2.5
            ) + WhiteKernel(0.01, noise_level_bounds=NOISE_BOUNDS)
            surrogate.model = GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=seed)
        else:
            surrogate.model = _fixed_kernel_gp(kernel, seed)
        surrogate._fit(features, targets)
        surrogate.points, surrogate.fitted_features = points, features
        return surrogate

    def _fit(self, features: np.ndarray, targets: np.ndarray) -> None:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings(), one_thread():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(features, targets)
        self.features_seen, self.targets_seen = features, targets

    def with_pending(self, pending: list[tuple[dict[str, Any], int]]) -> Surrogate:
        """This surrogate with runs in flight as points at their predicted mean (the "kriging believer"):
        its uncertainty shrinks around them, so two free slots do not both pick the same region.
        The kernel is kept; one factorisation."""
        if not pending:
            return self
        features = self.encoder.matrix(pending)
        mean = self.predict_mean(features)
        model = _fixed_kernel_gp(self.kernel, self.model.random_state)
        believer = Surrogate(self.space, self.n_slots, model, self.encoder)
        believer._fit(np.vstack([self.features_seen, features]), np.concatenate([self.targets_seen, mean]))
        believer.points, believer.fitted_features = self.points, self.fitted_features
        return believer

    @property
    def kernel(self) -> Kernel:
        """The fitted kernel, hyperparameters included (to fit again without tuning them)."""
        return self.model.kernel_

    def predict(self, candidates: list[tuple[dict[str, Any], int]]) -> tuple[np.ndarray, np.ndarray]:
        """The predicted reward's mean and the deviation of that mean, one per (params, slot) (`predict_rows`)."""
        return self.predict_rows(self.encoder.matrix(candidates))

    @functools.cached_property
    def fitted_means(self) -> dict[int, float]:
        """The predicted mean at the config and slot of each finished run it was fitted on, by node id
        (a mean, so one lucky seed does not make a run look best)."""
        if not self.points:
            return {}
        means = self.predict_mean(self.fitted_features)
        return {record.node_id: float(mean) for record, mean in zip(self.points, means)}

    def predict_mean(self, features: np.ndarray) -> np.ndarray:
        """The predicted mean for rows of inputs (`Encoder`); cheaper than `predict_rows`."""
        with one_thread():
            return self.model.predict(features)

    def predict_rows(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The predicted reward's mean and the standard deviation of that mean, for rows of inputs.

        The deviation leaves out the seed noise the kernel's white term learned: a config's
        expected reward is what is uncertain, not one run's luck (else every point looks
        equally uncertain on a noisy task and the acquisition only follows the mean).
        """
        fitted = self.model.kernel_
        noise = getattr(fitted, "k2", None)
        with one_thread():
            if noise is None or type(noise).__name__ != "WhiteKernel":
                return self.model.predict(features, return_std=True)
            self.model.kernel_ = fitted.k1  # the same posterior, without the noise on the diagonal
            try:
                return self.model.predict(features, return_std=True)
            finally:
                self.model.kernel_ = fitted

    def acquisition(self, candidates: list[tuple[dict[str, Any], int]]) -> list[float]:
        """mean + KAPPA x std of the predicted reward, one per (params, slot)."""
        mean, std = self.predict(candidates)
        return list(mean + KAPPA * std)


def _fixed_kernel_gp(kernel: Kernel, seed: Any) -> GaussianProcessRegressor:
    """scikit-learn's GP with ``kernel``'s hyperparameters kept as they are."""
    return _fixed_kernel_gp_class()(kernel=kernel, normalize_y=True, random_state=seed, optimizer=None)


@functools.cache
def _fixed_kernel_gp_class() -> type:
    from sklearn.gaussian_process import GaussianProcessRegressor

    class FixedKernelGP(GaussianProcessRegressor):
        """Its `fit` skips the log marginal likelihood scikit-learn computes at the end of a fit when
        nothing is optimised (a second factorisation nobody here reads: half the cost of a refit);
        after the fit, `log_marginal_likelihood_value_` is absent rather than wrong, and any later
        call computes the real value. Defined on first use (scikit-learn is imported lazily)."""

        _fitting = False

        def fit(self, X, y):
            self._fitting = True
            try:
                super().fit(X, y)
            finally:
                self._fitting = False
            del self.log_marginal_likelihood_value_
            return self

        def log_marginal_likelihood(self, theta=None, eval_gradient=False, clone_kernel=True):
            if self._fitting and not eval_gradient:
                return math.nan  # the value fit stores and never reads
            return super().log_marginal_likelihood(theta, eval_gradient, clone_kernel)

    return FixedKernelGP


class SurrogateCache:
    """The surrogate of the finished nodes, refitted only when a node has finished since the last
    fit; its kernel is tuned again after `tune_gap` new results and kept fixed in between."""

    def __init__(self, space: SearchSpace, n_slots: int, seed: int):
        self.space, self.n_slots, self.seed = space, n_slots, seed
        self._count = -1  # finished records the cached surrogate was fitted on
        self._fit: Surrogate | None = None
        self._tuned_at = -TUNE_EVERY  # finished records when the kernel was last tuned
        self.encoder = Encoder(space, n_slots)

    def get(self, finished: list[NodeRecord]) -> Surrogate | None:
        count = len(finished)
        if count == self._count:
            return self._fit
        tune = self._fit is None or count - self._tuned_at >= tune_gap(self._tuned_at) or count < self._count
        kernel = None if tune else self._fit.kernel
        self._fit = Surrogate.fit(self.space, self.n_slots, finished, self.seed, kernel, self.encoder)
        self._count = count
        if tune:
            self._tuned_at = count
            self.encoder.forget_values()  # the values seen since the last tuning: bounded by TUNE_EVERY fits
        return self._fit
