"""What every built-in trainer shares: the command line, config loading, the machine, the outputs.

A trainer is ``python -m trainers.<name> --config FILE --run-dir DIR``. This module owns
the pieces of that contract that do not depend on the model:
- `parse_args` and `run_main` (a bad config prints one line and exits 2; a diverged run
  still exits 0),
- `load_config`: YAML (``yaml.safe_load``) merged over nested defaults, every key known,
  every value of the default's type (or one of its listed choices); the first problem
  raises `ConfigError` naming the file and the dotted key,
- `cap_threads`, `pick_device`, `seed_everything`,
- `write_analysis_log` (atomic, ``name: value`` lines, always a ``diverged:`` line),
  `write_visual_json` (the numbers behind the plots, nan as null) and `plot_curves`,
- `ProgressLog`: ``run_dir/progress.jsonl`` while training (memory/progress.py's protocol), a line
  every ``of / PROGRESS_REPORTS`` steps, at the last step and at ``checkpoints`` evenly spaced
  steps (where a trainer adds its costlier evaluation metrics), each flushed as it is written.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from memory.atomic import write_text_atomic
from memory.errors import ConfigError, UcbxError
from memory.progress import PROGRESS_NAME, append_progress

TEXT_KEYS = ("description",)
PROGRESS_REPORTS = 20  # progress lines a built-in trainer writes per run (one every 5%)


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """``--config FILE --run-dir DIR``, the trainer contract's command line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, type=Path, help="YAML config (a preset or a slot config)")
    parser.add_argument("--run-dir", required=True, type=Path, help="folder for analysis.log, visual.json, plots")
    return parser.parse_args(argv)


def run_main(train: Callable[[Path, Path], object], description: str, argv: list[str] | None = None) -> int:
    """Run ``train(config_path, run_dir)``: 0 when it finished (diverged or not); 2 with one line on
    stderr for a refused config or unreadable input; any other exception is a crash with its traceback."""
    args = parse_args(description, argv)
    try:
        train(args.config, args.run_dir)
    except UcbxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


# --- configuration ---------------------------------------------------------------------


def load_config(
    path: str | Path, defaults: dict[str, dict[str, Any]], choices: dict[str, tuple[Any, ...]] | None = None
) -> dict[str, dict[str, Any]]:
    """Read ``path`` and merge it over ``defaults`` (sections of keys), checking every value.

    ``choices`` maps a dotted key (``model.sparsify_method``) to its allowed values.
    A number where the default is a float is accepted and made a float; an int must be an
    int, a bool a bool, a string a string. Top-level ``description`` text is allowed.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read config ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: config must be a mapping with sections {', '.join(defaults)}")
    config = copy.deepcopy(defaults)
    for section, values in raw.items():
        if section in TEXT_KEYS:
            continue
        if section not in defaults:
            raise ConfigError(f"{path}: unknown section '{section}' (known: {', '.join(defaults)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: section '{section}' must be a mapping")
        for key, value in values.items():
            if key not in defaults[section]:
                raise ConfigError(f"{path}: unknown key '{section}.{key}'")
            config[section][key] = checked_value(
                f"{section}.{key}", value, defaults[section][key], (choices or {}).get(f"{section}.{key}"), path
            )
    return config


def checked_value(key: str, value: Any, default: Any, allowed: tuple[Any, ...] | None, path: Path) -> Any:
    """``value`` coerced to the type of ``default``, or ConfigError naming ``key``."""
    if allowed is not None:
        if value not in allowed:
            raise ConfigError(f"{path}: '{key}' must be one of {list(allowed)}, got {value!r}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: '{key}' must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: '{key}' must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{path}: '{key}' must be a finite number, got {value!r}")
        return float(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{path}: '{key}' must be text, got {value!r}")
    return value


def require(condition: bool, path: str | Path, key: str, reason: str) -> None:
    """Raise ConfigError ``"<path>: '<key>' <reason>"`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{path}: '{key}' {reason}")


# --- the machine -----------------------------------------------------------------------


def cap_threads(requested: int) -> int:
    """Set torch's thread count: ``requested`` if > 0, else $OMP_NUM_THREADS, else a quarter of the cores."""
    threads = requested
    if threads <= 0:
        from_env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(from_env) if from_env.isdigit() and int(from_env) > 0 else max(1, (os.cpu_count() or 1) // 4)
    torch.set_num_threads(threads)
    return threads


def pick_device(name: str) -> torch.device:
    """``auto`` = the first visible CUDA device when there is one, else the CPU; or an explicit device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, so the same seed gives the same metrics on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def is_finite(module: torch.nn.Module) -> bool:
    """True when every parameter of ``module`` is finite."""
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


# --- outputs ---------------------------------------------------------------------------


def format_metric(value: float) -> str:
    """``nan``, ``inf``, ``-inf``, integers as integers, other numbers with 6 significant digits."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"


def write_analysis_log(run_dir: str | Path, metrics: dict[str, float], diverged: bool) -> Path:
    """Write ``run_dir/analysis.log`` atomically: one ``name: value`` line per metric, then ``diverged: 0|1``."""
    lines = [f"{name}: {format_metric(value)}" for name, value in metrics.items() if name != "diverged"]
    lines.append(f"diverged: {int(diverged)}")
    path = Path(run_dir) / "analysis.log"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def json_ready(value: Any) -> Any:
    """``value`` with numpy/torch numbers made floats and nan/inf made null (standard JSON)."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return json_ready(value.tolist())
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def write_visual_json(run_dir: str | Path, data: dict[str, Any]) -> Path:
    """Write ``run_dir/visual.json`` atomically (the numbers behind the plots)."""
    path = Path(run_dir) / "visual.json"
    write_text_atomic(path, json.dumps(json_ready(data), indent=1) + "\n")
    return path


def plot_curves(path: str | Path, curves: dict[str, list[float]], title: str, log_y: tuple[str, ...] = ()) -> None:
    """One small panel per curve (x = epoch or step index), saved as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(curves)
    columns = min(3, n)
    rows = math.ceil(n / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.8 * rows), squeeze=False)
    for axis, (name, values) in zip(axes.flat, curves.items()):
        axis.plot(range(1, len(values) + 1), values)
        axis.set_title(name, fontsize=9)
        if name in log_y and all(v > 0 for v in values if math.isfinite(v)):
            axis.set_yscale("log")
    for axis in list(axes.flat)[n:]:
        axis.axis("off")
    figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(left=0.08, right=0.97, bottom=0.08, top=0.88, hspace=0.5, wspace=0.3)
    figure.savefig(path, dpi=72)
    plt.close(figure)


class ProgressLog:
    """``run_dir/progress.jsonl`` of one run of ``of`` steps (a file left by an earlier run is replaced)."""

    def __init__(self, run_dir: str | Path, of: int, reports: int = PROGRESS_REPORTS, checkpoints: int = 0):
        self.path = Path(run_dir) / PROGRESS_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        self.of = of
        self.every = max(1, of // reports)
        self.checkpoint_steps = {max(1, round(of * k / checkpoints)) for k in range(1, checkpoints + 1)}

    def due(self, step: int) -> bool:
        """True at every ``every``-th step, at the last one and at each checkpoint (steps count from 1)."""
        return step % self.every == 0 or step == self.of or self.checkpoint(step)

    def checkpoint(self, step: int) -> bool:
        """True at the ``checkpoints`` evenly spaced steps (the last of them is the last step)."""
        return step in self.checkpoint_steps

    def report(self, step: int, metrics: dict[str, float]) -> None:
        """One line: ``step`` of ``of`` with ``metrics``."""
        append_progress(self.path, step, self.of, metrics)
