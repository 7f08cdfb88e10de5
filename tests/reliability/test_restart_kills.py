"""Restart: the daemon killed at every phase of an iteration and at random moments, then restarted.

A real `ucbx run` of the fast fake trainer is ended again and again:
- deterministically, at each crash point of `memory.crash.POINTS` (launch, collection,
  log writing, memory and scores writing, git commit): with ``UCBX_CRASH_AT=point:count``
  the driver's own `crash_point` ends the process with ``os._exit(137)`` right there, as
  SIGKILL would leave it;
- at random moments, by SIGKILL to the daemon's whole process group (a git child included).
After each death a new daemon is started on the same folder. When the budget is spent,
`harness.check_exploration` checks the folder: entries 1..N with no gap or duplicate,
each with its journal row and its git commit, no job launched twice, memory and scores
consistent with the log, the log parseable.

CI: 2 slots, budget 24, every crash point once plus 6 random kills (24 kills).
Long (UCBX_RELIABILITY=long): 4 slots, budget 160, every crash point twice (at its
1st and 2nd call) plus 30 random kills (66 kills).
"""

from __future__ import annotations

import collections
import random
import subprocess
import time
from pathlib import Path

from memory.crash import ENV, EXIT, POINTS

from .harness import (
    LONG,
    check_exploration,
    entries_of,
    environment,
    kill_group,
    record_figures,
    start_ucbx,
    ucbx,
    wait_for,
    write_spec,
)

SLOTS, BUDGET, ROUNDS, RANDOM_KILLS = (4, 160, 2, 30) if LONG else (2, 24, 1, 6)


def written(folder: Path) -> int:
    parsed = entries_of(folder)
    return len(parsed.entries) if parsed else 0


def test_daemon_killed_at_every_phase_and_at_random_moments_loses_nothing(tmp_path):
    spec = write_spec(tmp_path, slots=SLOTS, budget=BUDGET, sleep=0.3)
    folder = tmp_path / "runs"
    arguments = ("run", str(spec), "--workdir", str(folder))
    rng = random.Random(9)
    plan = [(point, 1 + round_) for round_ in range(ROUNDS) for point in POINTS]
    rng.shuffle(plan)
    kills: list = [("point", p, c) for p, c in plan] + [("random", None, None)] * RANDOM_KILLS
    rng.shuffle(kills)
    reached: collections.Counter = collections.Counter()
    missed: list = []
    random_kills = 0
    transcripts = []
    for kind, point, count in kills:
        if written(folder) >= BUDGET:
            missed.append((kind, point))
            continue
        if kind == "point":
            daemon = start_ucbx(*arguments, env=environment(**{ENV: f"{point}:{count}"}))
            try:
                code = daemon.wait(timeout=180)
            except subprocess.TimeoutExpired:
                kill_group(daemon)
                code = None
            output = daemon.stdout.read()
            transcripts.append((point, count, code, output[-600:]))
            assert code in (EXIT, 0), f"{point}#{count}: exit {code}\n{output}"
            if code == EXIT:
                reached[point] += 1
            else:
                missed.append((kind, point))
        else:
            daemon = start_ucbx(*arguments)
            time.sleep(rng.uniform(0.3, 3.0))
            if daemon.poll() is None:
                kill_group(daemon)
                random_kills += 1
            else:
                assert daemon.returncode == 0, daemon.stdout.read()
                daemon.stdout.read()
    final = ucbx(*arguments, timeout=600)
    assert final.returncode == 0, final.stdout + final.stderr
    counts = check_exploration(folder, BUDGET)
    record_figures(
        "restart",
        injected_kills=sum(reached.values()),
        random_kills=random_kills,
        points_reached=sorted(reached),
        points_missed=[p for _, p in missed if p],
        entries=counts["entries"],
        failed_entries=counts["failed"],
        commits=counts["commits"],
        slots=SLOTS,
    )
    assert set(reached) == set(POINTS), f"crash points never reached: {set(POINTS) - set(reached)}; {transcripts}"
    assert sum(reached.values()) + random_kills >= 20


def test_a_daemon_killed_after_its_last_launch_is_followed_by_one_that_goes_on(tmp_path):
    # the kill leaves the slot's .pending.json beside a launched job; once that job is
    # collected nothing is in flight, and the next daemon used to stop there, budget not reached
    spec = write_spec(tmp_path, slots=1, budget=3, sleep=0.0)
    folder = tmp_path / "runs"
    arguments = ("run", str(spec), "--workdir", str(folder))
    crashed = ucbx(*arguments, env=environment(**{ENV: "launch.after-submit:1"}))
    assert crashed.returncode == EXIT, crashed.stdout + crashed.stderr
    assert list((folder / "slots").glob("*.pending.json"))
    assert wait_for(lambda: (folder / "iterations" / "node_0001" / "exit_status.json").exists())
    final = ucbx(*arguments)
    assert final.returncode == 0, final.stdout + final.stderr
    check_exploration(folder, 3)
