"""`NotebookReader`: a growing log read incrementally gives exactly what a whole parse gives."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from memory.notebook import Entry, NotebookReader, append_entry, format_entry, parse_notebook

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "metabolismgraph"
LOGS = sorted(FIXTURES.glob("*_analysis.md"))


def same(left, right) -> None:
    assert [e.__dict__ for e in left.entries] == [e.__dict__ for e in right.entries]
    assert [str(p) for p in left.problems] == [str(p) for p in right.problems]


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_any_sequence_of_appends_reads_as_the_whole_file(tmp_path, log):
    """The public logs (hand/LLM-written: free text, rules, odd headers) cut at random bytes."""
    data = log.read_bytes()
    assert len(LOGS) >= 2 and data
    rng = random.Random(3)
    for _ in range(4):
        cuts = sorted(rng.sample(range(1, len(data)), 12)) + [len(data)]
        path = tmp_path / log.name
        path.write_bytes(b"")
        reader = NotebookReader(path)
        start = 0
        for cut in cuts:
            with open(path, "ab") as handle:
                handle.write(data[start:cut])
            start = cut
            whole = parse_notebook(path.read_bytes().decode("utf-8", errors="replace"), str(path))
            same(reader.read(), whole)
        assert not reader.notices


def entry(number: int) -> Entry:
    return Entry(
        iteration=number,
        status="partial",
        node_id=number,
        parent=number - 1 or None,
        mode="exploit",
        metrics={"score": number / 100},
        mutation=f"lr: {number} -> {number + 1}",
        observation="x" * 200,
    )


def test_appends_are_parsed_once_and_a_hand_edit_is_read_again_whole(tmp_path):
    path = tmp_path / "x_analysis.md"
    for number in range(1, 201):
        append_entry(path, entry(number))
    reader = NotebookReader(path)
    assert len(reader.read().entries) == 200
    size = path.stat().st_size
    entry_size = len(format_entry(entry(201)).encode())
    passes = 50
    for number in range(201, 201 + passes):
        append_entry(path, entry(number))
        assert len(reader.read().entries) == number
        reader.read()  # unchanged: nothing parsed
    # each byte once, plus the last entry again at each pass (it may still grow)
    assert reader.bytes_parsed <= size + passes * entry_size * 2 + entry_size
    assert reader.bytes_parsed < 3 * path.stat().st_size  # not passes x log size
    assert not reader.notices

    text = path.read_text()
    path.write_text(text.replace("## Iter 7: partial", "## Iter 7: converged"))
    before = reader.bytes_parsed
    parsed = reader.read()
    assert parsed.entries[6].status == "converged"
    assert reader.bytes_parsed - before == path.stat().st_size
    assert len(reader.notices) == 1 and "changed other than by an append" in reader.notices[0]
    same(parsed, parse_notebook(path.read_text(), str(path)))


def test_an_append_in_progress_is_left_out_then_read(tmp_path):
    path = tmp_path / "x_analysis.md"
    append_entry(path, entry(1))
    reader = NotebookReader(path)
    text = format_entry(entry(2))
    with open(path, "a") as handle:
        handle.write(text[:45])  # cut mid-line
    parsed = reader.read()
    assert [e.node_id for e in parsed.entries] == [1] and parsed.problems
    with open(path, "a") as handle:
        handle.write(text[45:])
    assert [e.node_id for e in reader.read().entries] == [1, 2]
    assert not reader.read().problems
