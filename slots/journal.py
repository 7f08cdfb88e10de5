"""The job journal: `state.db` in the exploration folder, one row per job.

The journal is what makes a restart exact. A job's row is written before it is
launched and updated as it runs, so a new driver knows every job the old one
started: which are still running, which finished while nobody watched, which died
with the driver. SQLite in WAL mode; each update is one committed transaction, so
a `kill -9` at any moment leaves the last committed state. The iteration number is
unique: one iteration is one row, however many attempts it takes.

One process writes at a time (see `slots.lock.FolderLock`); readers (`ucbx status`)
may open the journal concurrently.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory.errors import UcbxError

JOURNAL_NAME = "state.db"
STATUSES = ("queued", "running", "done", "failed")
IN_FLIGHT = ("queued", "running")  # launched, not finished
FINISHED = ("done", "failed")
FAILURE_KINDS = ("crash", "timeout", "oom", "diverged", "lost", "infrastructure", "cancelled", "pruned")
SCHEMA_VERSION = 2  # 2: the ``stop`` column


@dataclass(kw_only=True)
class JobRecord:
    """One job: what ran (iteration, node, slot, config), where, and what became of it.

    Times are Unix seconds (float). ``external_id`` is the launcher's handle: the
    runner's pid for local jobs (with ``process_start``, its start time in clock ticks
    from /proc, so a recycled pid is never mistaken for it), the SLURM job id for
    SLURM jobs. ``attempts`` counts launches (retries of infrastructure failures and
    of jobs lost with the driver); ``launch_failures`` counts launches refused in a row
    (sbatch errors), reset by a launch that works. ``payload`` is the agent's own JSON data (mode,
    mutation, ...); ``collected`` is set by the agent once the log entry is written. ``stop`` is a stop
    the agent decided (`Launcher.stop`: ``kind``, ``reason`` and the numbers behind it), written
    before the job is asked to end, so a restart neither loses the decision nor makes it again.
    """

    id: int | None = None
    iteration: int
    node_id: int
    slot: int
    parent: int | None = None
    config_path: str
    config_hash: str = ""
    run_dir: str
    launcher: str
    command: list[str] = field(default_factory=list)
    metrics_file: str = "analysis.log"
    external_id: str = ""
    process_start: str = ""
    status: str = "queued"
    failure_kind: str | None = None
    reason: str = ""
    attempts: int = 0
    launch_failures: int = 0
    exit_code: int | None = None
    stderr_tail: str = ""
    submitted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    collected: bool = False
    stop: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


_COLUMNS = tuple(f.name for f in dataclasses.fields(JobRecord))
_JSON_COLUMNS = ("command", "payload", "stop")
_SQL_TYPES = {
    "id": "INTEGER PRIMARY KEY",
    "iteration": "INTEGER NOT NULL UNIQUE",
    "node_id": "INTEGER NOT NULL",
    "slot": "INTEGER NOT NULL",
    "parent": "INTEGER",
    "attempts": "INTEGER NOT NULL",
    "launch_failures": "INTEGER NOT NULL",
    "exit_code": "INTEGER",
    "collected": "INTEGER NOT NULL",
    "submitted_at": "REAL",
    "started_at": "REAL",
    "finished_at": "REAL",
}
_SCHEMA = "CREATE TABLE IF NOT EXISTS jobs ({})".format(
    ", ".join(f"{name} {_SQL_TYPES.get(name, 'TEXT')}" for name in _COLUMNS)
)


# Every pass asks for the jobs not collected yet: an index keeps that cheap at 100,000 jobs.
_INDEX = "CREATE INDEX IF NOT EXISTS jobs_collected ON jobs (collected)"


def _to_row(fields: dict[str, Any]) -> dict[str, Any]:
    row = dict(fields)
    for name in _JSON_COLUMNS:
        if name in row:
            row[name] = json.dumps(row[name])
    if "collected" in row:
        row["collected"] = int(bool(row["collected"]))
    return row


def _from_row(row: sqlite3.Row) -> JobRecord:
    values = dict(row)
    for name in _JSON_COLUMNS:
        values[name] = json.loads(values[name])
    values["collected"] = bool(values["collected"])
    return JobRecord(**values)


class Journal:
    """`folder/state.db`, opened (and created if absent) in WAL mode."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / JOURNAL_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            found = self._db.execute("PRAGMA user_version").fetchone()[0]
            if found > SCHEMA_VERSION:
                self._db.close()
                raise UcbxError(
                    f"{self.path}: written by a newer ucbx (journal schema {found}, this ucbx reads "
                    f"up to {SCHEMA_VERSION}); run the ucbx that made it, or upgrade this one"
                )
            self._db.execute(_SCHEMA)
            self._migrate()
            self._db.execute(_INDEX)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("SELECT count(*) FROM jobs").fetchone()
        except sqlite3.DatabaseError as error:
            raise self._unreadable(error) from None

    def _migrate(self) -> None:
        """Columns added since schema 1 (``stop``), added to a journal written before them."""
        present = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)").fetchall()}
        if "stop" not in present:
            self._db.execute("ALTER TABLE jobs ADD COLUMN stop TEXT NOT NULL DEFAULT '{}'")

    def _unreadable(self, error: Exception) -> UcbxError:
        return UcbxError(
            f"{self.path}: the job journal is unreadable ({error}); to recover, stop ucbx, move it "
            f"aside (mv {self.path} {self.path}.broken) and start again: a new journal is created, "
            "logged iterations are kept, jobs still running are not re-attached"
        )

    def _execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, parameters)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as error:
            raise self._unreadable(error) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add(self, record: JobRecord) -> JobRecord:
        """Insert ``record`` (its id is assigned here) and return the stored copy.

        Refuses an iteration that is already in the journal: an iteration runs once.
        """
        if record.submitted_at is None:
            record = dataclasses.replace(record, submitted_at=time.time())
        row = _to_row({k: v for k, v in dataclasses.asdict(record).items() if k != "id"})
        sql = "INSERT INTO jobs ({}) VALUES ({})".format(", ".join(row), ", ".join("?" * len(row)))
        try:
            cursor = self._execute(sql, tuple(row.values()))
        except sqlite3.IntegrityError:
            existing = self.by_iteration(record.iteration)
            raise UcbxError(
                f"{self.path}: iteration {record.iteration} is already in the journal "
                f"(job {existing.id if existing else '?'}); an iteration runs once"
            ) from None
        return self.get(cursor.lastrowid)

    def update(self, job_id: int, **fields: Any) -> JobRecord:
        """Set ``fields`` of job ``job_id`` in one transaction and return the stored record."""
        unknown = set(fields) - set(_COLUMNS) | ({"id"} & set(fields))
        if unknown:
            raise ValueError(f"not journal fields: {sorted(unknown)}")
        if fields:
            row = _to_row(fields)
            assignments = ", ".join(f"{name} = ?" for name in row)
            self._execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*row.values(), job_id))
        return self.get(job_id)

    def get(self, job_id: int) -> JobRecord:
        """The record of job ``job_id``; KeyError if there is none."""
        row = self._execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return _from_row(row)

    def by_iteration(self, iteration: int) -> JobRecord | None:
        row = self._execute("SELECT * FROM jobs WHERE iteration = ?", (iteration,)).fetchone()
        return None if row is None else _from_row(row)

    def jobs(self, status: str | tuple[str, ...] | None = None, collected: bool | None = None) -> list[JobRecord]:
        """Records in submission order, filtered by status (one or several) and ``collected``."""
        clauses, parameters = [], []
        if status is not None:
            statuses = (status,) if isinstance(status, str) else tuple(status)
            clauses.append("status IN ({})".format(", ".join("?" * len(statuses))))
            parameters.extend(statuses)
        if collected is not None:
            clauses.append("collected = ?")
            parameters.append(int(collected))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._execute(f"SELECT * FROM jobs{where} ORDER BY id", parameters).fetchall()
        return [_from_row(row) for row in rows]

    def uncollected(self) -> list[JobRecord]:
        """Jobs whose entry is not written yet: in flight, or finished and not collected (submission order)."""
        return self.jobs(collected=False)

    def status_counts(self) -> dict[str, int]:
        """How many jobs are in each status."""
        rows = self._execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
        return {row[0]: row[1] for row in rows}

    def max_iteration(self) -> int:
        """The largest iteration in the journal, 0 when it is empty."""
        return self._execute("SELECT coalesce(max(iteration), 0) FROM jobs").fetchone()[0]

    def max_node_id(self) -> int:
        """The largest node id in the journal, 0 when it is empty."""
        return self._execute("SELECT coalesce(max(node_id), 0) FROM jobs").fetchone()[0]
