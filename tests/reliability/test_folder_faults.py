"""Faults around training: the exploration folder itself goes wrong.

A write that fails (a folder in the way of a file ucbx rewrites), a corrupted or
truncated `state.db` (one clear line naming the recovery command, which then works),
a log torn by a short write, a broken entry added by hand to the analysis log,
malformed directives, slot configs broken by hand, and a second daemon on the same
folder. Each must end in a one-line message or a reported problem (never a
traceback), lose nothing, and leave an exploration that reaches its budget.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from memory.notebook import (
    TORN_SUFFIX,
    Entry,
    append_entry,
    format_entry,
    parse_notebook,
    set_aside_torn_tail,
)
from memory.working_memory import read_memory
from slots.journal import Journal

from .harness import (
    REPO,
    check_exploration,
    entries_of,
    kill_group,
    record_figures,
    start_ucbx,
    ucbx,
    wait_for,
    write_spec,
)

GATED_TRAINER = REPO / "tests" / "reliability" / "gated_trainer.py"


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single `ucbx: error: ...` line of a refused command (exit 2, no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ucbx: error: "), result.stderr
    return lines[0]


def fresh(tmp_path: Path, budget: int = 8, **options) -> tuple[Path, Path]:
    return write_spec(tmp_path, budget=budget, **options), tmp_path / "runs"


def test_a_folder_in_the_way_of_a_write_stops_with_one_line_and_loses_nothing(tmp_path):
    spec, folder = fresh(tmp_path)
    assert ucbx("run", str(spec), "--workdir", str(folder), "--iterations", "3").returncode == 0
    scores = folder / "rel_ucb_scores.txt"
    scores.unlink()
    scores.mkdir()  # root ignores file modes: a folder blocks for all
    line = one_line_error(ucbx("run", str(spec), "--workdir", str(folder), "--iterations", "2"))
    assert str(scores) in line and "cannot write it" in line, line
    scores.rmdir()
    assert ucbx("run", str(spec), "--workdir", str(folder)).returncode == 0
    check_exploration(folder, 8)
    record_figures("folder-faults", fault="write blocked", tried=1)


DAMAGES = ("garbage-header", "truncated", "zeroed-pages")


def damage_journal(db: Path, damage: str) -> None:
    data = db.read_bytes()
    if damage == "garbage-header":
        db.write_bytes(b"this is not sqlite" * 10 + data[180:])
    elif damage == "truncated":
        db.write_bytes(data[: len(data) // 3])
    else:
        db.write_bytes(data[:100] + b"\0" * (len(data) - 100))


def test_a_corrupted_journal_names_its_recovery_command_which_works(tmp_path):
    """Each damage in turn on one exploration: refused in one line by run, step and status;
    the printed `mv` recovers; logged iterations are kept and no node id is given twice."""
    spec, folder = fresh(tmp_path, budget=2 + 2 * len(DAMAGES))
    assert ucbx("run", str(spec), "--workdir", str(folder), "--iterations", "2").returncode == 0
    db = folder / "state.db"
    for damage in DAMAGES:
        damage_journal(db, damage)
        commands = ("run", "step", "status") if damage == DAMAGES[0] else ("run",)
        lines = [one_line_error(ucbx(command, str(spec), "--workdir", str(folder))) for command in commands]
        line = lines[0]
        assert str(db) in line and "unreadable" in line, line
        command = re.search(r"\((mv [^)]*)\)", line).group(1)  # the documented recovery, as printed
        subprocess.run(shlex.split(command), check=True)
        result = ucbx("run", str(spec), "--workdir", str(folder), "--iterations", "2")
        assert result.returncode == 0, result.stdout + result.stderr
    parsed = entries_of(folder)
    assert not parsed.problems, parsed.problems
    assert [e.iteration for e in parsed.entries] == list(range(1, 3 + 2 * len(DAMAGES)))
    ids = [e.node_id for e in parsed.entries]
    assert len(set(ids)) == len(ids), ids  # no node id given twice after a recovery
    record_figures("folder-faults", fault="state.db corrupted", tried=len(DAMAGES), refusals=len(DAMAGES) + 2)


def entry(iteration: int) -> Entry:
    return Entry(
        iteration=iteration,
        status="partial",
        node_id=iteration,
        parent=None,
        mode="explore",
        slot=0,
        slot_label="width=8",
        config={"lr": "0.01"},
        metrics={"score": 0.5},
        visual="none",
        mutation="none",
        strategy="hyperparameter-only",
        observation="ok",
        next_parent=iteration,
    )


@pytest.mark.parametrize("cut", [5, 40, 120, 200])
def test_a_log_torn_by_a_short_write_is_set_aside_before_the_next_append(tmp_path, cut):
    """Regression: the next entry used to be glued to the torn line and both were misread."""
    log = tmp_path / "x_analysis.md"
    append_entry(log, entry(1))
    before = log.read_text()
    text = format_entry(entry(2))
    assert cut < len(text) and text[cut - 1] != "\n"
    with open(log, "a") as handle:
        handle.write(text[:cut])  # a crash or a full disk mid-append
    append_entry(log, entry(2))
    parsed = parse_notebook(log.read_text())
    assert not parsed.problems, parsed.problems
    assert [e.iteration for e in parsed.entries] == [1, 2]
    assert log.read_text() == before + text
    assert (tmp_path / "x_analysis.md.torn").read_text() == text[:cut] + "\n"
    assert set_aside_torn_tail(log) == ""  # a clean log is left alone


def test_a_hand_written_note_at_the_end_without_newline_is_kept_aside_not_lost(tmp_path):
    log = tmp_path / "x_analysis.md"
    append_entry(log, entry(1))
    with open(log, "a") as handle:
        handle.write("a note typed by hand, no newline")
    append_entry(log, entry(2))
    assert [e.iteration for e in parse_notebook(log.read_text()).entries] == [1, 2]
    assert "a note typed by hand" in (tmp_path / "x_analysis.md.torn").read_text()


BROKEN_ENTRIES = {
    "garbage fields": (
        "## Iter 4: converged\nNode: id=banana, parent=???\nMetrics: score=oops, loss\nNext: parent=x\n\n"
    ),
    "unterminated": "## Iter 4: partial\nNode: id=4, parent=1\nMetrics: score=0.5",
    "binary": "## Iter 4: \x00\x01\x02\nNode: \ufffd\n\n",
}
# where the parser must report each one, as lines counted from the entry's header (its broken
# fields); the unterminated one cannot stay in the log: it goes whole to <log>.torn instead
REPORTED_AT = {"garbage fields": {1, 2, 3}, "binary": {0, 1}}


def test_broken_entries_added_by_hand_are_reported_and_the_loop_goes_on(tmp_path):
    spec, folder = fresh(tmp_path, budget=2 + 2 * len(BROKEN_ENTRIES))
    log = folder / "rel_analysis.md"
    torn = log.with_name(log.name + TORN_SUFFIX)
    assert ucbx("run", str(spec), "--workdir", str(folder), "--iterations", "2").returncode == 0
    headers = {}
    for kind, text in BROKEN_ENTRIES.items():
        before = log.read_text()
        assert before.endswith("\n"), kind
        headers[kind] = before.count("\n") + 1  # the line where this entry's header lands
        with open(log, "a") as handle:
            handle.write(text)
        result = ucbx("run", str(spec), "--workdir", str(folder), "--iterations", "2")
        assert result.returncode == 0 and "Traceback" not in result.stderr, (kind, result.stderr)
        if kind == "unterminated":  # set aside whole before the next append, not glued to it
            assert (torn.read_text() if torn.exists() else None) == text + "\n", "not set aside in <log>.torn"
            assert log.read_text().startswith(before) and text not in log.read_text()
    parsed = entries_of(folder)
    journal = Journal(folder)
    written = {e.node_id for e in parsed.entries if e.slot is not None}
    missing = [job.node_id for job in journal.jobs() if job.node_id not in written]
    assert not missing, f"results never written: nodes {missing}"
    problems = [str(problem) for problem in parsed.problems]
    for kind, offsets in REPORTED_AT.items():  # each broken entry reported, each at its own lines
        for offset in offsets:
            line = headers[kind] + offset
            assert any(p.startswith(f"{log}:{line}: Iter 4: ") for p in problems), (kind, line, problems)
    record_figures("folder-faults", fault="broken hand entries", tried=len(BROKEN_ENTRIES))


def test_a_hand_written_note_does_not_swallow_the_result_of_a_running_job(tmp_path):
    spec, folder = fresh(tmp_path, budget=6, sleep=3.0)
    assert ucbx("step", str(spec), "--workdir", str(folder)).returncode == 0  # nodes 1 and 2 running
    (folder / "rel_analysis.md").write_text("## Iter 1: my notes\nObservation: first runs look slow\n\n")
    assert ucbx("run", str(spec), "--workdir", str(folder)).returncode == 0
    written = {e.node_id for e in entries_of(folder).entries if "Slot" not in e.extra and e.slot is not None}
    assert {1, 2} <= written, f"the results of nodes {sorted({1, 2} - written)} were never written"


MALFORMED_DIRECTIVES = """- bound mom 0.9 .. 0.1
- bound mom 0.9 0.1
- avoid
- freeze node abc
- pin
- prefer-parent
- make it converge please
- pin lr = 0.02
"""


def test_malformed_directives_are_reported_and_the_valid_ones_obeyed(tmp_path):
    spec, folder = fresh(tmp_path, budget=6)
    assert ucbx("step", str(spec), "--workdir", str(folder), "--no-launch").returncode == 0
    memory = folder / "rel_memory.md"
    memory.write_text(memory.read_text().replace("## Directives\n", "## Directives\n" + MALFORMED_DIRECTIVES))
    result = ucbx("run", str(spec), "--workdir", str(folder))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    problems = [line for line in result.stdout.splitlines() if "directive" in line and "ignored" in line]
    assert len({line.split("directive", 1)[1] for line in problems}) == MALFORMED_DIRECTIVES.count("\n") - 1, problems
    entries = entries_of(folder).entries
    assert len(entries) == 6
    lrs = {
        yaml.safe_load((folder / "iterations" / f"node_{e.node_id:04d}" / "config.yaml").read_text())["train"]["lr"]
        for e in entries
    }
    assert lrs == {0.02}, lrs  # the one valid pin held
    assert MALFORMED_DIRECTIVES in memory.read_text()  # the person's section kept byte for byte
    record_figures("folder-faults", fault="malformed directives", tried=MALFORMED_DIRECTIVES.count("\n") - 1)


def test_a_second_directives_section_among_the_agents_sections_is_obeyed_and_neither_is_dropped(tmp_path):
    # the person adds a Directives section above Current Block (the file's own is at the end): the
    # header seen second used to join the section above it, and went when the agent rewrote that
    spec, folder = fresh(tmp_path, budget=4)
    assert ucbx("step", str(spec), "--workdir", str(folder), "--no-launch").returncode == 0
    memory = folder / "rel_memory.md"
    memory.write_text(
        memory.read_text().replace("## Current Block", "## Directives\n- pin lr = 0.02\n\n## Current Block")
    )
    result = ucbx("run", str(spec), "--workdir", str(folder))
    assert result.returncode == 0, result.stderr
    assert "a second '## Directives' header" in result.stdout, result.stdout
    entries = entries_of(folder).entries
    lrs = {
        yaml.safe_load((folder / "iterations" / f"node_{e.node_id:04d}" / "config.yaml").read_text())["train"]["lr"]
        for e in entries
    }
    assert len(entries) == 4 and lrs == {0.02}, lrs  # obeyed, though the agent rewrote around it
    directives, problems = read_memory(memory).directives()
    assert [(d.kind, d.key, d.value) for d in directives] == [("pin", "lr", 0.02)] and not problems  # now one section
    assert "pin KEY = VALUE" in memory.read_text()  # the file's own section (its help) kept too
    record_figures("folder-faults", fault="second Directives header", tried=1)


def test_a_directive_the_search_space_refuses_is_reported_not_obeyed_into_idleness(tmp_path):
    spec, folder = fresh(tmp_path, budget=4)
    assert ucbx("step", str(spec), "--workdir", str(folder), "--no-launch").returncode == 0
    memory = folder / "rel_memory.md"
    memory.write_text(memory.read_text().replace("## Directives\n", "## Directives\n- pin lr = banana\n"))
    for pending in (folder / "slots").glob("*.pending.json"):
        pending.unlink()
    result = ucbx("run", str(spec), "--workdir", str(folder))
    assert result.returncode == 0, result.stderr
    assert "banana" in result.stdout and "ignored" in result.stdout, result.stdout
    assert len(entries_of(folder).entries) == 4


SLOT_EDITS = {
    "not YAML": lambda path: path.write_text("train: [unclosed\n  lr: : :\n"),
    "not a mapping": lambda path: path.write_text("- just\n- a list\n"),
    "frozen key": lambda path: edit(path, "fault", "mode", "crash"),
    "out of bounds": lambda path: edit(path, "train", "lr", 50.0),
    "key added": lambda path: edit(path, "train", "warmup", 3),
    "wrong type": lambda path: edit(path, "train", "batch", "sixteen"),
    "slot value": lambda path: edit(path, "slot", "width", 999),
    "key removed": lambda path: path.write_text(path.read_text().replace("  momentum:", "  old_momentum:")),
    "emptied": lambda path: path.write_text(""),
}


def edit(path: Path, section: str, key: str, value) -> None:
    config = yaml.safe_load(path.read_text())
    config[section][key] = value
    path.write_text(yaml.safe_dump(config))


def test_slot_configs_broken_by_hand_are_not_launched_and_fixing_them_resumes(tmp_path):
    spec, folder = fresh(tmp_path, budget=8, sleep=0.5)
    assert ucbx("step", str(spec), "--workdir", str(folder), "--no-launch").returncode == 0
    slot_file = folder / "slots" / "slot_01.yaml"
    good = slot_file.read_text()
    for kind, damage in SLOT_EDITS.items():
        damage(slot_file)
        result = ucbx("step", str(spec), "--workdir", str(folder))
        assert result.returncode == 0 and "Traceback" not in result.stderr, (kind, result.stderr)
        refused = [line for line in result.stdout.splitlines() if f"{slot_file}:" in line and "not launched" in line]
        assert len(refused) == 1, (kind, result.stdout)
        assert 1 not in {job.slot for job in Journal(folder).jobs()}, kind  # never launched
        slot_file.write_text(good)
    assert ucbx("run", str(spec), "--workdir", str(folder)).returncode == 0  # fixed: the slot resumes
    check_exploration(folder, 8)
    assert 1 in {job.slot for job in Journal(folder).jobs()}
    record_figures("folder-faults", fault="slot configs broken by hand", tried=len(SLOT_EDITS))


def test_a_second_daemon_on_the_same_folder_is_refused_and_the_first_goes_on(tmp_path):
    # the first daemon's jobs wait for `release`: it holds the folder with jobs running for as long
    # as the checks take, however busy the machine (two 25 s jobs used to end before a slow check)
    release = tmp_path / "release"
    command = ["{python}", str(GATED_TRAINER), str(release), "--config", "{config}", "--run-dir", "{run_dir}"]
    # no wall-clock timeout to end a held job while the checks run: the gate itself gives up after 600 s
    spec, folder = write_spec(tmp_path, budget=2, command=command, timeout=3600), tmp_path / "runs"
    first = start_ucbx("run", str(spec), "--workdir", str(folder))

    def holding() -> bool:
        """The first daemon holds the lock (its pid in the file) and both its jobs are running."""
        assert first.poll() is None, f"the first daemon ended early: {first.stdout.read()}"
        lock = folder / ".ucbx.lock"
        if not lock.exists() or lock.read_text().strip() != str(first.pid) or not (folder / "state.db").exists():
            return False
        with Journal(folder) as journal:
            running = journal.jobs(status="running")
        return len(running) == 2 and all((Path(job.run_dir) / "gate_starts.txt").exists() for job in running)

    try:
        assert wait_for(holding, limit=600), "the first daemon never held the folder with 2 jobs running"
        for arguments in (["step", "--no-launch"], ["step"], ["run"], ["run", "--fresh", "--yes"]):
            line = one_line_error(ucbx(arguments[0], str(spec), "--workdir", str(folder), *arguments[1:]))
            assert f"is locked by pid {first.pid}" in line, line
        status = ucbx("status", str(spec), "--workdir", str(folder))  # a reader is welcome
        assert status.returncode == 0, status.stderr
        assert first.poll() is None, "the first daemon ended while its jobs were held"
        release.touch()
        assert first.wait(timeout=600) == 0, first.stdout.read()
    finally:
        release.touch()  # a held job is never left behind
        if first.poll() is None:
            kill_group(first)
    check_exploration(folder, 2)
    record_figures("folder-faults", fault="second daemon", tried=4)
