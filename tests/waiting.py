"""Waiting for something to happen, without sleeping for a guessed time.

`wait_for(condition, timeout, what)` polls ``condition`` until it returns something
true and returns that; at the deadline it fails with a message naming ``what`` was
awaited. The timeout is a bound for a broken or stuck system, never the signal: a
test that passes must pass however slow the machine is, within that bound.

`release(path)` and `GATE_JOB` go together: a job run as
``python gate_job.py RUN_DIR gate [LIMIT]`` (tests/gate_job.py) blocks until
``RUN_DIR/release`` exists, so a test decides when a job ends instead of a sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

GATE_JOB = Path(__file__).with_name("gate_job.py")
RELEASE = "release"


def wait_for(condition: Callable[[], T], timeout: float = 60, what: str = "the condition", step: float = 0.05) -> T:
    """Poll ``condition`` until it is true (its value is returned); AssertionError at ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


def release(run_dir: str | Path) -> None:
    """Let the gate job of ``run_dir`` finish (see tests/gate_job.py)."""
    (Path(run_dir) / RELEASE).touch()
