"""Standard black-box test functions with known optima, as rewards in [0, 1] (1 at the optimum).

Pure functions of plain floats, no spec and no seeds: benchmarks/tasks.py maps them onto
the hyperparameter interface (parameter names, bounds, slots, a seed-drawn offset of the
optimum, the base config). Each reward is 1 exactly at the function's known optimum and
lower everywhere else, so the simple regret of a search is ``1 - best reward``.

- `branin_reward`: Branin-Hoo on x1 in [-5, 10], x2 in [0, 15]; minimum 0.3978874 at
  (-pi, 12.275), (pi, 2.275), (9.42478, 2.475). Reward = 1 - log10(1 + gap) / log10(1 + 300),
  gap = f - f*, clipped at 0 (the largest gap on the box is about 308).
- `hartmann6_reward`: Hartmann-6 on [0, 1]^6; minimum -3.32237 at `HARTMANN6_ARGMIN`.
  Reward = -f / 3.32237 (f is in [-3.32237, 0)). Its second-best local minimum, -3.2032,
  scores 0.964.
- `rosenbrock_reward`: Rosenbrock's curved valley (x, y) in [-2, 2] x [-1, 3], minimum 0
  at (1, 1): the two coordinates must move together along y = x^2. Reward =
  1 - log10(1 + f) / log10(1 + 2500), clipped at 0.
- `conditional_reward`: an optimizer choice that switches which other parameters matter
  (`CONDITIONAL_MATTERS`); the best optimizer at its best settings scores 1.
"""

from __future__ import annotations

import math

BRANIN_MINIMUM = 0.397887357729738
BRANIN_ARGMINS = ((-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475))
BRANIN_GAP_SCALE = 300.0  # about the largest gap f - f* on the box

HARTMANN6_MINIMUM = -3.32237
HARTMANN6_ARGMIN = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)
HARTMANN6_ALPHA = (1.0, 1.2, 3.0, 3.2)
HARTMANN6_A = (
    (10.0, 3.0, 17.0, 3.5, 1.7, 8.0),
    (0.05, 10.0, 17.0, 0.1, 8.0, 14.0),
    (3.0, 3.5, 1.7, 10.0, 17.0, 8.0),
    (17.0, 8.0, 0.05, 10.0, 0.1, 14.0),
)
HARTMANN6_P = (
    (0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886),
    (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
    (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650),
    (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381),
)

ROSENBROCK_ARGMIN = (1.0, 1.0)
ROSENBROCK_SCALE = 2500.0  # about the largest value on the box

OPTIMIZERS = ("sgd", "adam", "adagrad")
# Which parameters besides lr, weight decay and dropout matter for each optimizer.
CONDITIONAL_MATTERS = {"sgd": ("momentum",), "adam": ("beta1", "warmup"), "adagrad": ()}
CONDITIONAL_WIDTHS = {"lr": 0.5, "momentum": 0.08, "beta1": 0.1, "warmup": 0.5, "wd": 1.0, "dropout": 0.15}
# How much each factor can take away (1 - weight + weight * bump): lr matters most.
CONDITIONAL_WEIGHTS = {"lr": 1.0, "momentum": 0.4, "beta1": 0.4, "warmup": 0.3, "wd": 0.3, "dropout": 0.2}


def log_gap_reward(gap: float, scale: float) -> float:
    """1 at gap 0, falling with log10(1 + gap), 0 at gap = scale and beyond."""
    return max(0.0, 1.0 - math.log10(1.0 + max(gap, 0.0)) / math.log10(1.0 + scale))


def branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def branin_reward(x1: float, x2: float) -> float:
    return log_gap_reward(branin(x1, x2) - BRANIN_MINIMUM, BRANIN_GAP_SCALE)


def hartmann6(x: tuple[float, ...]) -> float:
    total = 0.0
    for alpha, a_row, p_row in zip(HARTMANN6_ALPHA, HARTMANN6_A, HARTMANN6_P):
        total += alpha * math.exp(-sum(a * (xi - p) ** 2 for a, xi, p in zip(a_row, x, p_row)))
    return -total


def hartmann6_reward(x: tuple[float, ...]) -> float:
    return max(0.0, hartmann6(x) / HARTMANN6_MINIMUM)


def rosenbrock(x: float, y: float) -> float:
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def rosenbrock_reward(x: float, y: float) -> float:
    return log_gap_reward(rosenbrock(x, y), ROSENBROCK_SCALE)


def bump(value: float, center: float, width: float) -> float:
    """A Gaussian bump: 1 at ``center``, 0.61 one ``width`` away."""
    return math.exp(-0.5 * ((value - center) / width) ** 2)


def conditional_reward(settings: dict[str, float | str], optimum: dict[str, float], peaks: dict[str, float]) -> float:
    """The conditional task's reward.

    ``settings``: optimizer (one of `OPTIMIZERS`), lr, momentum, beta1, warmup, wd, dropout,
    with lr, warmup and wd as log10 values. ``optimum``: the best value of each numeric
    setting, lr as ``lr_<optimizer>`` (each optimizer has its own). ``peaks``: each
    optimizer's ceiling (the best one's is 1). The reward is the chosen optimizer's peak
    times one factor per parameter that matters for it: lr, wd, dropout always; the
    others per `CONDITIONAL_MATTERS`.
    """
    optimizer = str(settings["optimizer"])
    centres = {**optimizer_free(optimum), "lr": optimum[f"lr_{optimizer}"]}
    value = peaks[optimizer]
    for name in ("lr", "wd", "dropout", *CONDITIONAL_MATTERS[optimizer]):
        weight = CONDITIONAL_WEIGHTS[name]
        value *= 1 - weight + weight * bump(float(settings[name]), centres[name], CONDITIONAL_WIDTHS[name])
    return value


def optimizer_free(optimum: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in optimum.items() if not k.startswith("lr_")}
