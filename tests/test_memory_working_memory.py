"""memory/working_memory.py: sections, Directives kept byte for byte, the ~300-line bound."""

from __future__ import annotations

from memory.directives import Directive
from memory.working_memory import DIRECTIVES, KNOWN_SECTIONS, parse_memory, read_memory, render_memory, write_memory

DIRECTIVES_BODY = """
<!-- mine -->
- pin lr_node_homeo = 1e-3
- freeze 7
- bogus directive here
trailing text, no final blank line"""

MEMORY = f"""# Working Memory: demo

## Established Principles
1. lr_node_homeo >= 1e-2 escapes zero init (evidence: Iter 3, 5; +0.4)

## My Notes
Anything the person writes here stays.
   odd   spacing   kept

## Directives
{DIRECTIVES_BODY}
"""


def test_fixture_memories_read_without_error_and_render_unchanged(fixtures_dir):
    for path in sorted(fixtures_dir.glob("*_memory.md")):
        memory = read_memory(path)
        assert memory.sections, path
        assert render_memory(memory, max_lines=10_000) == path.read_text()


def test_absent_file_gives_a_fresh_memory_with_directive_help(tmp_path):
    memory = read_memory(tmp_path / "demo_memory.md")
    assert list(memory.sections) == [*KNOWN_SECTIONS, DIRECTIVES]
    assert memory.preamble == "# Working Memory: demo\n\n"
    assert "pin KEY = VALUE" in memory.sections[DIRECTIVES]
    assert memory.directives() == ([], [])
    write_memory(tmp_path / "demo_memory.md", memory)
    assert read_memory(tmp_path / "demo_memory.md").sections == memory.sections


def test_directives_are_read_with_file_lines(tmp_path):
    path = tmp_path / "m.md"
    path.write_text(MEMORY)
    directives, problems = read_memory(path).directives()
    assert directives == [
        Directive("pin", key="lr_node_homeo", value=0.001, line=13),
        Directive("freeze", node=7, line=14),
    ]
    assert [str(problem) for problem in problems] == [
        f"{path}:15: directive 'bogus directive here' ignored: unknown directive 'bogus' "
        "(known: pin, avoid, bound, try, prefer-parent, freeze)"
    ]


def test_a_second_directives_header_is_obeyed_reported_and_kept_by_the_next_rewrite(tmp_path):
    # the person appended a second Directives section after a section the agent rewrites:
    # read as part of the first (its lines right), reported, and moved under the first
    path = tmp_path / "m.md"
    path.write_text(MEMORY + "## Open Questions\n- old question\n\n## directives\n- avoid lr > 0.5\n- nope 3\n")
    memory = read_memory(path)
    directives, problems = memory.directives()
    assert [(d.kind, d.line) for d in directives] == [("pin", 13), ("freeze", 14), ("avoid", 21)]
    assert [str(problem).split(": ", 1)[0] for problem in problems] == [f"{path}:15", f"{path}:20", f"{path}:22"]
    assert "a second '## Directives' header" in str(problems[1]) and "(line 10)" in str(problems[1])
    memory.set("Open Questions", "- new question")
    write_memory(path, memory)
    rewritten = read_memory(path)
    assert [(d.kind, d.node or d.key) for d in rewritten.directives()[0]] == [
        ("pin", "lr_node_homeo"),
        ("freeze", 7),
        ("avoid", "lr"),
    ]
    assert rewritten.sections[DIRECTIVES].startswith(DIRECTIVES_BODY) and "- nope 3" in rewritten.sections[DIRECTIVES]
    assert "old question" not in path.read_text() and path.read_text().count("## ") == 4


def test_set_places_known_sections_and_refuses_directives():
    memory = parse_memory(MEMORY)
    memory.set("current block", "- iter 6 running")
    memory.set("Open Questions", "- does batch_size matter?")
    assert list(memory.sections) == [
        "Established Principles",
        "My Notes",
        "Open Questions",
        "Current Block",
        DIRECTIVES,
    ]
    try:
        memory.set("Directives", "- pin x = 1")
    except ValueError as error:
        assert "belongs to the person" in str(error)
    else:
        raise AssertionError("the Directives section must not be rewritable")


def test_text_and_path_sources():
    assert read_memory(MEMORY).get("my notes").startswith("Anything")
    assert read_memory("").sections == {}


def test_bounded_after_500_iterations_and_directives_byte_identical(tmp_path):
    path = tmp_path / "demo_memory.md"
    path.write_text(MEMORY)
    for iteration in range(1, 501):
        memory = read_memory(path)
        principles = memory.get("Established Principles").rstrip("\n")
        memory.set(
            "Established Principles",
            f"{principles}\n{iteration}. principle from Iter {iteration}: lr matters (effect +0.{iteration % 10})\n"
            f"   evidence: Iter {iteration - 1}, Iter {iteration}",
        )
        outcomes = memory.get("Strategy Outcomes").rstrip("\n")
        memory.set("Strategy Outcomes", f"{outcomes}\n- Iter {iteration}: strategy {iteration % 8 + 1} -> partial")
        memory.set("Current Block", "\n".join(f"- slot {slot}: Iter {iteration - slot}" for slot in range(4)))
        write_memory(path, memory)
        text = path.read_text()
        assert text.count("\n") <= 300, iteration
        assert read_memory(path).sections[DIRECTIVES] == DIRECTIVES_BODY + "\n"
        assert (
            read_memory(path).sections["My Notes"]
            == "Anything the person writes here stays.\n   odd   spacing   kept\n\n"
        )
    final = read_memory(path)
    principles = final.get("Established Principles")
    assert "principle from Iter 500" in principles
    summary = principles.splitlines()[0]
    assert summary.startswith("- (") and "older principles summarised: see analysis.md iters 0-" in summary
    assert "Iter 500" in final.get("Strategy Outcomes")
    assert list(tmp_path.iterdir()) == [path]  # atomic rewrite leaves no temporary files


def test_summary_counts_accumulate_and_no_line_is_cut():
    items = "\n".join(f"- outcome of Iter {number}: " + "x" * 50 for number in range(1, 41))
    memory = parse_memory(f"# M\n\n## Strategy Outcomes\n{items}\n\n## Directives\n- freeze 1\n")
    first = render_memory(memory, max_lines=20)
    assert first.count("\n") <= 20
    again = render_memory(parse_memory(first), max_lines=10)
    assert again.count("\n") <= 10
    lines = again.splitlines()
    summary = next(line for line in lines if "summarised" in line)
    kept = [line for line in lines if line.startswith("- outcome")]
    assert summary == f"- ({40 - len(kept)} older outcomes summarised: see analysis.md iters 1-{40 - len(kept)})"
    assert set(kept) <= set(items.splitlines())
    assert lines[-1] == "- freeze 1"


def test_unknown_sections_are_never_shortened():
    notes = "".join(f"- note {number}\n" for number in range(50))
    memory = parse_memory(f"## Notes\n{notes}## Directives\n")
    assert render_memory(memory, max_lines=10) == f"## Notes\n{notes}## Directives\n"


def test_table_rows_fold_into_a_table_row():
    rows = "".join(f"| rollout | slot {number} | 3 | 0 | 0.{number:03d} |\n" for number in range(60))
    body = (
        f"| strategy | slot | runs | failed | mean |\n| --- | --- | --- | --- | --- |\n{rows}\n- exploit: 3 children\n"
    )
    memory = parse_memory(f"## Strategy Outcomes\n{body}")
    text = render_memory(memory, max_lines=30)
    assert text.count("\n") <= 30
    lines = text.splitlines()
    assert lines[1:4] == [
        "| strategy | slot | runs | failed | mean |",
        "| --- | --- | --- | --- | --- |",
        f"| ({60 - (len(lines) - 6)} older outcomes summarised: see analysis.md) |",
    ]
    assert lines[-1] == "- exploit: 3 children" and lines[-3] == "| rollout | slot 59 | 3 | 0 | 0.059 |"
    again = render_memory(parse_memory(text), max_lines=20)
    assert again.count("\n") <= 20 and again.splitlines()[3].startswith("| (")
