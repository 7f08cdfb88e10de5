"""memory/notebook.py: the analysis log's entries, written and read back, and real-log variants."""

from __future__ import annotations

import math
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from memory.notebook import Entry, Mutation, append_entry, format_entry, parse_mutation, parse_notebook


def sample_entry(**changes) -> Entry:
    fields = dict(
        iteration=7,
        status="partial",
        node_id=7,
        parent=3,
        mode="exploit",
        slot=2,
        slot_label="time_step=32",
        config={"lr_node_homeo": "0.03", "lr_emb_homeo": "0.001", "data_aug": "1000", "batch_size": "8"},
        metrics={
            "avg_slope_ratio": 0.6125,
            "slope_ratio_0": 7.37e3,
            "test_R2": -766043.0,
            "phase2_loss": math.nan,
            "grad": math.inf,
        },
        visual="MLP_node=active: slopes -0.0008/-0.0015, Embeddings=separated: acc=0.91",
        mutation="lr_node_homeo: 0.01 -> 0.03",
        strategy="5 higher-lr-warmup",
        observation="slopes move toward GT; embeddings follow",
        next_parent=7,
    )
    fields.update(changes)
    return Entry(**fields)


def same_record(left: Entry, right: Entry) -> bool:
    """Equal apart from the line number, with nan equal to nan."""

    def normalised(entry: Entry) -> dict:
        values = dict(vars(entry), line=0)
        values["metrics"] = {key: "nan" if math.isnan(value) else value for key, value in entry.metrics.items()}
        return values

    return normalised(left) == normalised(right)


def test_format_writes_design_line_order():
    text = format_entry(sample_entry(failure="diverged: nan in phase2_loss", extra={"Verdict": "keep"}))
    keys = [line.split(":")[0].split(" ")[0] for line in text.splitlines() if line]
    assert keys == [
        "##",
        "Node",
        "Mode/Strategy",
        "Slot",
        "Config",
        "Metrics",
        "Visual",
        "Mutation",
        "Strategy",
        "Observation",
        "Next",
        "Failure",
        "Verdict",
    ]
    assert text.startswith("## Iter 7: partial\nNode: id=7, parent=3\n")
    assert "Slot: slot_2 (time_step=32)\n" in text
    assert "Metrics: avg_slope_ratio=0.6125, slope_ratio_0=7370, test_R2=-766043, phase2_loss=nan, grad=inf\n" in text
    assert text.endswith("Verdict: keep\n\n")


def test_written_entry_parses_back_to_the_same_record(tmp_path):
    path = tmp_path / "demo_analysis.md"
    path.write_text("# Experiment log: demo\n\nSome planning text.\n\n")
    first, second = (
        sample_entry(),
        sample_entry(
            iteration=8,
            node_id=8,
            parent=None,
            next_parent=None,
            failure="crash: exit 1",
            metrics={},
            extra={"Activity": "none"},
        ),
    )
    append_entry(path, first)
    append_entry(path, second)
    parsed = parse_notebook(path.read_text(), str(path))
    assert parsed.problems == []
    assert [entry.line for entry in parsed.entries] == [5, 17]
    assert same_record(parsed.entries[0], first) and same_record(parsed.entries[1], second)


TEXT = st.text(string.ascii_letters + string.digits + " _-.,:;()=+*/<>[]'", max_size=40).map(str.strip)
KEY = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=150, deadline=None)
@given(
    iteration=st.integers(0, 10**6),
    status=st.sampled_from(["converged", "partial", "failed", "diverged"]),
    parent=st.none() | st.integers(1, 10**6),
    next_parent=st.none() | st.integers(1, 10**6),
    slot=st.none() | st.integers(0, 99),
    mode=TEXT,
    visual=TEXT,
    mutation=TEXT,
    observation=TEXT,
    config=st.dictionaries(KEY, st.from_regex(r"[A-Za-z0-9_.\-]{1,10}", fullmatch=True), max_size=5),
    metrics=st.dictionaries(KEY, FLOATS, max_size=6),
    failure=TEXT,
    has_next=st.booleans(),
)
def test_round_trip_property(
    iteration,
    status,
    parent,
    next_parent,
    slot,
    mode,
    visual,
    mutation,
    observation,
    config,
    metrics,
    failure,
    has_next,
):
    entry = Entry(
        iteration=iteration,
        status=status,
        node_id=iteration,
        parent=parent,
        mode=mode,
        slot=slot,
        config=config,
        metrics=metrics,
        visual=visual,
        mutation=mutation,
        observation=observation,
        next_parent=next_parent if has_next else None,
        failure=failure,
        has_next=has_next,
    )
    parsed = parse_notebook(format_entry(entry))
    assert parsed.problems == [] or (not metrics and not failure)
    [back] = parsed.entries
    for key, value in entry.metrics.items():
        written = back.metrics[key]
        assert (math.isnan(value) and math.isnan(written)) or math.isclose(written, value, rel_tol=1e-5)
    assert same_record(back, Entry(**dict(vars(entry), metrics=back.metrics)))


def test_fixture_log_reads_136_entries_without_problems(fixtures_dir):
    path = fixtures_dir / "simulation_oscillatory_rank_50_Claude_analysis.md"
    parsed = parse_notebook(path.read_text(), str(path))
    assert parsed.problems == []
    assert [entry.node_id for entry in parsed.entries] == list(range(1, 137))
    last = parsed.entries[-1]
    assert (last.node_id, last.parent, last.next_parent, last.status) == (136, 132, 132, "partial")
    assert last.metrics["rate_constants_R2"] == 0.6918
    assert parsed.entries[0].metrics["test_R2"] == -766043.33
    assert parsed.entries[0].extra["Parent rule"] == "root (initial batch)"
    assert parsed.entries[44].extra["Status note"] == "(NEW BEST!)"


VARIANTS = """\
# Log

### Iter 1: excellent
Node: id=1, parent=root
Metrics: loss=7.37E+03, R2=-766043.33, acc=nan
Next: parent=81 (highest UCB)

## Iter 2: partial
Next: parent=33, lr_W=8E-2
Observation: lines in another order
Metrics: loss=1.0
Activity: 12 active nodes
Node: id=2, parent=None
Parent rule: highest UCB
Verdict: keep

**Batch summary** with text between entries.
- Config: this bullet is planning text, not an entry line

## Iter 3: failed
Node: id=3, parent=0
Mode/Strategy: explore
Metrics: loss=1.0

Free text after a blank line ends the entry.

### Iter 1-3 summary: not an entry (a range)

## Iter 4 converged
Node: id=4, parent=3
Metrics: loss=0.9
"""


def test_variants_of_real_logs():
    parsed = parse_notebook(VARIANTS, "log.md")
    assert parsed.problems == []
    first, second, third, fourth = parsed.entries
    assert (first.status, first.parent, first.next_parent) == ("excellent", None, 81)
    assert first.metrics["loss"] == 7370.0 and first.metrics["R2"] == -766043.33 and math.isnan(first.metrics["acc"])
    assert (second.node_id, second.parent, second.next_parent) == (2, None, 33)
    assert second.observation == "lines in another order"
    assert second.extra == {"Activity": "12 active nodes", "Parent rule": "highest UCB", "Verdict": "keep"}
    assert (third.parent, third.mode, third.has_next) == (None, "explore", False)
    assert (fourth.node_id, fourth.status, fourth.parent) == (4, "converged", 3)


BROKEN = """\
## Iter 10: partial
Node: id=10, parent=banana
Metrics: loss=0.5, acc=85%, just text
Slot: the big one
Next: somewhere

## Iter 11: partial
Metrics: loss=0.4
Next: parent=10

## Iter 12: partial
Node: id=10, parent=11
Metrics: loss=0.3
Next: parent=12
"""


def test_what_cannot_be_read_is_reported_with_its_line_and_entries_are_kept():
    parsed = parse_notebook(BROKEN, "log.md")
    assert [entry.node_id for entry in parsed.entries] == [10, 11, 10]
    messages = [str(problem) for problem in parsed.problems]
    assert messages == [
        "log.md:2: Iter 10: Node: parent=banana is not a node id; using root",
        "log.md:3: Iter 10: Metrics: acc=85%, just text is not a number; left out",
        "log.md:4: Iter 10: Slot: no slot number in 'the big one'",
        "log.md:5: Iter 10: Next: line has no parent=P; ignored",
        "log.md:7: Iter 11: no Node: line; using id=11, parent=root",
        "log.md:11: Iter 12: node id 10 already used by Iter 10 at line 1; the later entry wins in the tree",
    ]
    assert parsed.entries[0].metrics == {"loss": 0.5}


def test_trailing_partial_entry_is_a_problem_not_an_exception(tmp_path):
    path = tmp_path / "log.md"
    append_entry(path, sample_entry())
    with open(path, "a") as handle:
        handle.write("## Iter 8: partial\nNode: id=8, parent=7\nMetrics: avg_slope_ratio=0.7")
    parsed = parse_notebook(path.read_text(), str(path))
    assert [entry.node_id for entry in parsed.entries] == [7]
    [problem] = parsed.problems
    assert problem.line == 13 and "ends in the middle of this entry" in problem.message


def test_continuation_lines_extend_the_text_field():
    parsed = parse_notebook(
        "## Iter 1: partial\nNode: id=1, parent=root\nObservation: first half\n  second half\nMetrics: a=1\n"
    )
    assert parsed.entries[0].observation == "first half second half"
    assert parsed.problems == []


def test_parse_mutation():
    assert parse_mutation("lr_node_homeo: 0.01 -> 0.03") == Mutation("lr_node_homeo", "0.01", "0.03")
    assert parse_mutation("coeff_k_floor: 1.5 -> 2.0. Testing principle") == Mutation("coeff_k_floor", "1.5", "2.0")
    assert parse_mutation("strategy: rollout → residual") == Mutation("strategy", "rollout", "residual")
    assert parse_mutation("None (baseline)") is None
    assert parse_mutation("replicate of node 3 (seed 1 -> 2)") is None


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    """Files ucbx rewrites stay readable by the group and others, as the umask allows."""
    import os
    import stat

    from memory.atomic import write_text_atomic

    target = tmp_path / "memory.md"
    old = os.umask(0o022)
    try:
        write_text_atomic(target, "x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
