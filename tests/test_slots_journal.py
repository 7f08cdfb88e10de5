"""The job journal (state.db) and the folder lock, with real files and real processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest

from memory.errors import UcbxError
from slots.journal import JobRecord, Journal
from slots.lock import FolderLock


def record(iteration, **fields):
    values = dict(
        iteration=iteration,
        node_id=iteration,
        slot=0,
        parent=None,
        config_path=f"/x/iter_{iteration}/config.yaml",
        run_dir=f"/x/iter_{iteration}",
        launcher="local",
    )
    return JobRecord(**{**values, **fields})


def test_add_assigns_ids_and_round_trips_every_field(tmp_path):
    with Journal(tmp_path) as journal:
        first = journal.add(
            record(
                1,
                payload={"mode": "exploit", "mutation": ["lr", 0.1, 0.3]},
                command=["python", "-c", "pass"],
                parent=None,
            )
        )
        second = journal.add(record(2, parent=1, slot=3))
        assert (first.id, second.id) == (1, 2)
        assert first.payload == {"mode": "exploit", "mutation": ["lr", 0.1, 0.3]}
        assert first.command == ["python", "-c", "pass"]
        assert first.status == "queued" and first.collected is False and first.submitted_at > 0
        assert second.parent == 1 and second.slot == 3
    with Journal(tmp_path) as reopened:
        assert reopened.get(1) == first


def test_update_filters_and_maxima(tmp_path):
    journal = Journal(tmp_path)
    for iteration in (1, 2, 3):
        journal.add(record(iteration, node_id=10 + iteration))
    done = journal.update(1, status="done", collected=True, exit_code=0, finished_at=5.0)
    assert done.status == "done" and done.collected is True and done.exit_code == 0
    journal.update(2, status="failed", failure_kind="crash", reason="exit code 1")
    assert [r.iteration for r in journal.jobs(status="queued")] == [3]
    assert [r.iteration for r in journal.jobs(status=("done", "failed"))] == [1, 2]
    assert [r.iteration for r in journal.jobs(collected=False)] == [2, 3]
    assert [r.iteration for r in journal.jobs(status=("done", "failed"), collected=False)] == [2]
    assert (journal.max_iteration(), journal.max_node_id()) == (3, 13)
    with pytest.raises(ValueError, match="not journal fields"):
        journal.update(1, colour="red")
    with pytest.raises(KeyError):
        journal.get(99)


def test_empty_journal_maxima_are_zero_and_mode_is_wal(tmp_path):
    journal = Journal(tmp_path)
    assert (journal.max_iteration(), journal.max_node_id()) == (0, 0)
    mode = sqlite3.connect(tmp_path / "state.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_an_iteration_is_recorded_once(tmp_path):
    journal = Journal(tmp_path)
    journal.add(record(4))
    with pytest.raises(UcbxError, match=r"iteration 4 is already in the journal \(job 1\); an iteration runs once"):
        journal.add(record(4, node_id=99))
    assert len(journal.jobs()) == 1


def test_corrupted_journal_names_the_file_and_the_recovery(tmp_path):
    (tmp_path / "state.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(UcbxError) as error:
        Journal(tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'state.db'}: the job journal is unreadable")
    assert f"mv {tmp_path / 'state.db'} {tmp_path / 'state.db'}.broken" in message


def test_a_journal_from_a_newer_ucbx_is_refused_and_left_untouched(tmp_path):
    with Journal(tmp_path) as journal:
        journal.add(record(1))
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("PRAGMA user_version=99")
    before = (tmp_path / "state.db").read_bytes()
    with pytest.raises(
        UcbxError, match=r"state.db: written by a newer ucbx \(journal schema 99, this ucbx reads up to 2\)"
    ):
        Journal(tmp_path)
    assert (tmp_path / "state.db").read_bytes() == before


def test_a_journal_of_schema_1_gets_the_stop_column_and_keeps_its_rows(tmp_path):
    with Journal(tmp_path) as journal:
        journal.add(record(1))
    with sqlite3.connect(tmp_path / "state.db") as db:  # as ucbx wrote it before the stop column
        db.execute("ALTER TABLE jobs DROP COLUMN stop")
        db.execute("PRAGMA user_version=1")
    with Journal(tmp_path) as journal:
        assert journal.get(1).stop == {} and journal.get(1).iteration == 1
        assert journal.update(1, stop={"kind": "pruned"}).stop == {"kind": "pruned"}


HOLD_LOCK = """
import sys
from slots.lock import FolderLock
with FolderLock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()  # held until the test closes stdin (or kills it)
"""


def hold_lock_in_child(folder):
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "locked"
    return child


def test_lock_refuses_a_second_holder_at_once_naming_the_pid(tmp_path):
    child = hold_lock_in_child(tmp_path)
    outcome = []

    def contend() -> None:
        try:
            FolderLock(tmp_path).acquire()
            outcome.append("acquired")
        except UcbxError as error:
            outcome.append(error)

    try:
        # the holder keeps the lock until the test lets it go: an acquire that waits for the lock
        # never returns, one that refuses returns whatever the machine's speed (60 s is only a bound)
        contender = threading.Thread(target=contend, daemon=True)
        contender.start()
        contender.join(timeout=60)
        assert not contender.is_alive(), "the second holder was made to wait for the lock instead of refused"
        assert child.poll() is None  # held all along
        assert len(outcome) == 1 and isinstance(outcome[0], UcbxError), outcome
        assert str(outcome[0]) == (
            f"{tmp_path} is locked by pid {child.pid} (another ucbx run or step); "
            "stop that process or wait for it to finish"
        )
    finally:
        child.kill()
        child.wait()


def test_lock_is_free_again_after_its_holder_is_killed(tmp_path):
    child = hold_lock_in_child(tmp_path)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with FolderLock(tmp_path) as lock:
        assert lock.path.read_text().strip() == str(os.getpid())
        with pytest.raises(UcbxError, match=f"is locked by pid {os.getpid()} "):
            FolderLock(tmp_path).acquire()
    with FolderLock(tmp_path):
        pass
