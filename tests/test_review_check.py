"""`ucbx check`: each planted defect in a copy of a finished exploration is reported with its
file and line, and makes the exit status non-zero; the untouched folder checks clean."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_helpers import copy_folder, review


def line_of(path: Path, text: str, exact: bool = False) -> int:
    return next(
        number
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if (line == text if exact else text in line)
    )


def add_directives(memory: Path, *bullets: str) -> None:
    lines = memory.read_text().splitlines()
    at = lines.index("## Directives") + 1
    memory.write_text("\n".join(lines[:at] + list(bullets) + lines[at:]) + "\n")


@pytest.fixture
def folder(finished_exploration, tmp_path) -> Path:
    return copy_folder(finished_exploration, tmp_path / "demo")


def check(capsys, folder: Path) -> tuple[int, str]:
    return review(capsys, "check", "--workdir", folder)[:2]


def test_the_finished_exploration_checks_clean(capsys, folder):
    status, out = check(capsys, folder)
    assert status == 0, out
    assert "0 errors" in out


def test_an_unreadable_entry_and_an_unknown_parent(capsys, folder):
    log = folder / "demo_analysis.md"
    with log.open("a") as stream:
        stream.write("## Iter 9: partial\nNode: id=90, parent=77\nMetrics: avg_slope_ratio=zero\n\n")
    status, out = check(capsys, folder)
    assert status == 1
    assert f"{log}:{line_of(log, 'avg_slope_ratio=zero')}: error: Iter 9: Metrics: avg_slope_ratio=zero" in out
    assert f"{log}:{line_of(log, '## Iter 9:')}: error: node 90: parent 77 is not in the tree" in out


@pytest.mark.parametrize(
    "bullet, message",
    [
        ("- pin lr_node_homeo 0.1", "expected 'pin KEY = VALUE'"),
        ("- pin lr_nod_homeo = 0.1", "not a search-space key"),
        ("- try lr_node_homeo = 5.0", "above the upper bound"),
        ("- prefer-parent 99", "there is no node 99"),
        ("- bound data_aug 500 100", "above high"),
    ],
)
def test_a_directive_the_agent_cannot_use(capsys, folder, bullet, message):
    memory = folder / "demo_memory.md"
    add_directives(memory, bullet)
    status, out = check(capsys, folder)
    assert status == 1
    reported = [line for line in out.splitlines() if line.startswith(f"{memory}:{line_of(memory, bullet)}: error:")]
    assert reported and message in reported[0], out


def test_a_misspelt_directives_section(capsys, folder):
    memory = folder / "demo_memory.md"
    memory.write_text(memory.read_text() + "\n## Directive\n- freeze 1\n")
    status, out = check(capsys, folder)
    assert status == 1
    assert f"{memory}:{line_of(memory, '## Directive', exact=True)}: error: section '## Directive' is not" in out


@pytest.mark.parametrize(
    "slot, old, new, message",
    [
        (1, "n_metabolites: 8", "n_metabolites: 9", "simulation.n_metabolites: is frozen"),
        (2, "homeostasis_time_step: 32", "homeostasis_time_step: 8", "is 8 but slot 2 runs with 32"),
        (3, "batch_size: ", "batch_size: [", "not valid YAML"),
    ],
)
def test_a_slot_config_that_breaks_the_spec(capsys, folder, slot, old, new, message):
    config = folder / "slots" / f"slot_{slot:02d}.yaml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new, 1))
    status, out = check(capsys, folder)
    assert status == 1
    expected_line = line_of(config, new.split(":")[0] + ":") if "YAML" not in message else None
    reported = [line for line in out.splitlines() if line.startswith(f"{config}:")]
    assert reported and message in reported[0], out
    if expected_line is not None:
        assert reported[0].startswith(f"{config}:{expected_line}: error:")


def test_a_bare_log_checks_with_a_metric(capsys, fixtures_dir):
    status, out, _ = review(
        capsys,
        "check",
        "--log",
        fixtures_dir / "simulation_oscillatory_rank_50_Claude_analysis.md",
        "--metric",
        "rate_constants_R2",
    )
    assert status == 0 and "0 errors" in out
