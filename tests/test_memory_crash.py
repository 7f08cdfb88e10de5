"""memory/crash.py: UCBX_CRASH_AT selects one point and one call; anything else is a one-line error.

The crash itself (a real process ending with 137 at each point, then restarted) is
exercised by tests/reliability/test_restart_kills.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from memory import crash
from memory.errors import UcbxError


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch):
    monkeypatch.setattr(crash, "_calls", {})


def test_unset_never_crashes(monkeypatch):
    monkeypatch.delenv(crash.ENV, raising=False)
    assert not any(crash.crash_due(point) for point in crash.POINTS for _ in range(3))


def test_only_the_named_point_at_its_count_th_call(monkeypatch):
    monkeypatch.setenv(crash.ENV, "log.torn-append:3")
    assert not crash.crash_due("log.before-append")
    assert [crash.crash_due("log.torn-append") for _ in range(5)] == [False, False, True, False, False]


@pytest.mark.parametrize("value", ["log.nowhere:1", "log.torn-append", "log.torn-append:0", "log.torn-append:x"])
def test_a_bad_value_is_a_one_line_error_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(crash.ENV, value)
    with pytest.raises(UcbxError, match=f"^{crash.ENV}=.*POINT:COUNT") as caught:
        crash.crash_point("log.torn-append")
    assert "\n" not in str(caught.value)


def test_the_cli_refuses_a_bad_value_before_it_writes_anything(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "status", "no-such-spec.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(Path(crash.__file__).parents[1]), crash.ENV: "log.nowhere:1"},
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"ucbx: error: {crash.ENV}='log.nowhere:1'") and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_crash_ends_the_process_as_sigkill_leaves_it(tmp_path):
    script = (
        "import os; from memory import crash\n"
        "try:\n    crash.crash_point('git.after-add'); print('not reached')\n"
        "finally:\n    open('finally-ran', 'w').close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(Path(crash.__file__).parents[1]), crash.ENV: "git.after-add:1"},
        check=False,
    )
    assert result.returncode == crash.EXIT
    assert "not reached" not in result.stdout
    assert not (tmp_path / "finally-ran").exists()
