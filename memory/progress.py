"""The progress protocol: what a trainer says while it trains, as JSON lines in ``run_dir/progress.jsonl``.

One line per report, appended and flushed as it is made::

    {"step": 40, "of": 100, "phase2_loss": 0.012, "time": 1764694800.5}

``step`` and ``of`` (how far the run is: ``step / of`` is the fraction done) are required;
every other key whose value is a number (or ``"nan"``/``"inf"``) is a metric; ``time``
(Unix seconds, written by `append_progress`) is when the line was written. A command
trainer whose metrics file is JSON lines with ``step`` and ``of`` on each line is read
the same way (slots/progress.py picks the file).

Writing: `append_progress(path, step, of, metrics)` is one ``write`` of one whole line on a
file opened for appending, then a flush and fsync, so a reader sees whole lines (a line cut
by a crash is a garbage line, below).

Reading: `read_progress(path)` never raises for what is in the file. It reads at most
`TAIL_BYTES` from the end (a huge file costs no more than that), and returns the points
with what it could not use, as warnings a caller says once per file:
- a line that is not a JSON object, or has no numeric ``step`` / positive ``of``: skipped
  (counted, the first one named with its line);
- a step lower than the one before (a trainer that started again): the points before it
  are dropped, the reading goes on from there (a warning names the line);
- more than `TAIL_BYTES`: only the tail is read (a warning says so).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from memory.analysis_log import json_number

PROGRESS_NAME = "progress.jsonl"
TAIL_BYTES = 1 << 20  # a progress file is read from its last MiB at most
RESERVED = ("step", "of", "time")  # keys of a progress line that are not metrics


@dataclass(frozen=True)
class ProgressPoint:
    """One progress line: ``step`` of ``of``, its metrics, when it was written (None: not said)."""

    step: float
    of: float
    metrics: dict[str, float]
    time: float | None = None
    line: int = 0  # 1-based line in the part of the file read

    @property
    def fraction(self) -> float:
        """The fraction done, within [0, 1]."""
        return min(1.0, max(0.0, self.step / self.of))


@dataclass
class ProgressRead:
    """What a progress file holds: its points in order, and warnings about what was skipped."""

    points: list[ProgressPoint] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    exists: bool = False

    @property
    def last(self) -> ProgressPoint | None:
        return self.points[-1] if self.points else None

    @property
    def latest_metrics(self) -> dict[str, float]:
        """Each metric's value on the last line that has it (a trainer may report some metrics
        only at a few checkpoints)."""
        merged: dict[str, float] = {}
        for point in self.points:
            merged.update(point.metrics)
        return merged


def format_progress_line(step: float, of: float, metrics: dict[str, float], when: float | None = None) -> str:
    """One progress line (with its newline); non-finite metrics are written as ``"nan"``/``"inf"``/``"-inf"``."""
    values: dict[str, object] = {"step": step, "of": of}
    for name, value in metrics.items():
        value = float(value)
        values[name] = value if math.isfinite(value) else str(value)
    if when is not None:
        values["time"] = round(when, 3)
    return json.dumps(values) + "\n"


def append_progress(path: str | Path, step: float, of: float, metrics: dict[str, float]) -> None:
    """Append one line to ``path`` in one write, flushed to disk before returning."""
    data = format_progress_line(step, of, metrics, time.time()).encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _tail(path: Path, limit: int) -> tuple[bytes, bool]:
    """The last ``limit`` bytes of ``path`` from a line start, and whether anything was left out."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size <= limit:
            handle.seek(0)
            return handle.read(), False
        handle.seek(size - limit)
        data = handle.read()
    cut = data.find(b"\n")
    return (data[cut + 1 :] if cut >= 0 else b""), True


def parse_point(text: str, line: int) -> tuple[ProgressPoint | None, str]:
    """The point of one line, or None and why it cannot be read."""
    try:
        values = json.loads(text)
    except ValueError:
        return None, "not JSON"
    if not isinstance(values, dict):
        return None, "not a JSON object"
    step, of = json_number(values.get("step")), json_number(values.get("of"))
    if step is None or not math.isfinite(step) or step < 0:
        return None, "no numeric step"
    if of is None or not math.isfinite(of) or of <= 0:
        return None, "no positive 'of'"
    metrics = {}
    for name, value in values.items():
        number = json_number(value)
        if name not in RESERVED and number is not None:
            metrics[str(name)] = number
    return ProgressPoint(step, of, metrics, json_number(values.get("time")), line), ""


def parse_progress_text(text: str, path: str = "") -> ProgressRead:
    """The points of ``text`` (see the module docstring for what is skipped and said)."""
    read = ProgressRead(exists=True)
    bad, first_bad = 0, ""
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        point, why = parse_point(raw, number)
        if point is None:
            bad += 1
            first_bad = first_bad or f"line {number}: {why}"
            continue
        previous = read.points[-1] if read.points else None
        if previous is not None and point.step < previous.step:
            read.warnings.append(
                f"{path}:{number}: step went back from {previous.step:g} to {point.step:g}; read from there"
            )
            read.points = []
        elif previous is not None and point.step == previous.step:
            read.points.pop()  # the same step said again: the later line wins
        read.points.append(point)
    if bad:
        read.warnings.append(f"{path}: {bad} unreadable line{'s' if bad > 1 else ''} skipped (first: {first_bad})")
    return read


def read_progress(path: str | Path, limit: int = TAIL_BYTES) -> ProgressRead:
    """The points of the progress file ``path`` (an absent or unreadable file: no points, ``exists`` False)."""
    path = Path(path)
    try:
        data, cut = _tail(path, limit)
    except OSError:
        return ProgressRead()
    read = parse_progress_text(data.decode("utf-8", errors="replace"), str(path))
    if cut:
        read.warnings.insert(0, f"{path}: larger than {limit} bytes; only its last {limit} bytes are read")
    return read


def read_run_progress(run_dir: str | Path, metrics_file: str = "", limit: int = TAIL_BYTES) -> ProgressRead:
    """A run's progress: ``run_dir/progress.jsonl``, else its metrics file when that is JSON lines
    (a command trainer that writes one line per epoch, with ``step`` and ``of``)."""
    read = read_progress(Path(run_dir) / PROGRESS_NAME, limit)
    if not read.exists and metrics_file.endswith(".jsonl"):
        read = read_progress(Path(run_dir) / metrics_file, limit)
    return read


def value_at(points: list[ProgressPoint], fraction: float, value) -> float | None:
    """``value(point)`` at ``fraction``, linear between the points around it that have a value (a line
    without one, e.g. a metric reported only at checkpoints, is passed over); None before the first
    such point or beyond the last."""
    before = None
    for point in points:
        current = value(point)
        if current is None:
            continue
        if point.fraction >= fraction:
            if point.fraction == fraction:
                return current
            if before is None:
                return None
            low_fraction, low_value = before
            share = (fraction - low_fraction) / (point.fraction - low_fraction)
            return low_value + share * (current - low_value)
        before = (point.fraction, current)
    return None
