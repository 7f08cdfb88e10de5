"""A run's metrics file: `analysis.log` (``name: value`` lines) or a JSON-lines file.

Owns the reading of what a trainer reports. Values are floats; nan and inf are kept as
they are (a nan is information: the run diverged). Lines that are not a metric (free
text, blank lines, banners) are ignored. A name given twice keeps its last value; in
`analysis.log` that is unusual and is logged as a warning, in a ``.jsonl`` file (one
record per step) it is the normal case.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from memory.errors import ParseError, Problem

log = logging.getLogger(__name__)

NUMBER = r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)"
NUMBER_RE = re.compile(NUMBER, re.IGNORECASE)
METRIC_LINE = re.compile(rf"^\s*([A-Za-z_][\w.\-/]*)\s*(?::|=)\s*({NUMBER})\s*$", re.IGNORECASE)


def parse_number(text: str) -> float | None:
    """``text`` as a float if it is exactly a number (``1e-3``, ``-2.5``, ``nan``, ``-inf``)."""
    text = text.strip()
    return float(text) if NUMBER_RE.fullmatch(text) else None


def parse_log_text(text: str, path: str = "") -> tuple[dict[str, float], list[Problem]]:
    """Metrics from `analysis.log` text, and a problem for each name given twice."""
    metrics: dict[str, float] = {}
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = METRIC_LINE.match(line)
        if not match:
            continue
        name, value = match.group(1), float(match.group(2))
        if name in metrics:
            problems.append(Problem(number, f"{name} given again; keeping the last value {value:g}", path))
        metrics[name] = value
    return metrics, problems


def parse_jsonl_text(text: str, path: str = "") -> tuple[dict[str, float], list[Problem]]:
    """Metrics from JSON-lines text: one object per line, the last value of a key wins.

    Numbers and numeric strings (``"nan"``, ``"inf"``, ``"-inf"``, ``"1e-3"``) count;
    booleans, other strings, lists, objects and null are ignored. A line that is not a JSON object is a problem.
    """
    metrics: dict[str, float] = {}
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(Problem(number, f"not JSON ({error.msg}); line ignored", path))
            continue
        if not isinstance(record, dict):
            problems.append(Problem(number, "not a JSON object; line ignored", path))
            continue
        for name, value in record.items():
            number_value = json_number(value)
            if number_value is not None:
                metrics[name] = number_value
    return metrics, problems


def json_number(value: object) -> float | None:
    """A JSON value as a float: numbers, and text a metric line may hold ("nan", "1e-3"); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return parse_number(value)
    return None


def read_metrics(path: str | os.PathLike) -> dict[str, float]:
    """The metrics a run wrote: ``.jsonl`` files as JSON lines, anything else as `analysis.log`.

    Raises `ParseError` when the file cannot be read; problems inside it are logged.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise ParseError(f"{path}: cannot read metrics ({error.strerror})") from error
    parse = parse_jsonl_text if path.suffix == ".jsonl" else parse_log_text
    metrics, problems = parse(text, str(path))
    for problem in problems:
        log.warning("%s", problem)
    return metrics
