"""ucb/compat.py and the `ucbx ucb` command: the public implementation's scores, reproduced."""

from __future__ import annotations

import re

from memory.notebook import parse_notebook
from ucb.cli_command import run_ucb_command
from ucb.compat import compat_entries

LOG = "simulation_oscillatory_rank_50_Claude_analysis.md"
SCORES = "simulation_oscillatory_rank_50_Claude_ucb_scores.txt"
LINE_RE = re.compile(r"^Node (\d+): UCB=([\d.]+), parent=(\w+), visits=(\d+), R2=([\d.-]+)")


def score_rows(text: str) -> list[tuple[str, ...]]:
    return [LINE_RE.match(line).groups() for line in text.splitlines() if line.startswith("Node ")]


def test_fixture_conformance(fixtures_dir, tmp_path, capsys):
    out = tmp_path / "ucb_scores.txt"
    status = run_ucb_command(
        [
            str(fixtures_dir / LOG),
            "--out",
            str(out),
            "--compat",
            "metabolismgraph",
            "--c",
            "1.414",
            "--block-size",
            "12",
            "--current-iteration",
            "136",
            "--metric",
            "rate_constants_R2",
        ]
    )
    assert status == 0
    expected = (fixtures_dir / SCORES).read_text()
    assert score_rows(out.read_text()) == score_rows(expected)
    assert len(score_rows(expected)) == 4
    assert out.read_text() == expected  # in fact byte for byte
    captured = capsys.readouterr()
    assert captured.err == "" and "4 nodes scored from 136 entries; top: node 136" in captured.out


def test_compat_rules_next_line_sets_parent_and_block_roots():
    text = "".join(
        f"## Iter {i}: partial\nNode: id={i}, parent={p}\nMetrics: R2={r}\nNext: parent={n}\n\n"
        for i, p, r, n in [(1, "root", 0.1, 1), (2, "root", "nan", 2), (3, 1, 0.3, 3), (4, 1, 0.4, 1), (5, 4, 0.5, 4)]
    )
    text += "## Iter 6: partial\nNode: id=6, parent=5\nMetrics: other=1\n\n"
    entries = parse_notebook(text).entries
    kept, problems = compat_entries(entries, "R2")
    assert [(e.node_id, e.parent) for e in kept] == [(1, None), (2, 1), (3, 2), (4, 3), (5, 1)]
    assert kept[1].metrics["R2"] == 0.0 and kept[0].metrics["test_pearson"] == 0.0
    assert [problem.message for problem in problems] == ["Iter 6: no R2; left out of the scores"]
    in_block, _ = compat_entries(entries, "R2", current_iteration=5, block_size=2)
    assert [(e.node_id, e.parent) for e in in_block] == [(5, None)]
    second_block, _ = compat_entries(entries, "R2", current_iteration=4, block_size=2)
    assert [(e.node_id, e.parent) for e in second_block] == [(3, None), (4, 3)]


def test_native_mode_reads_node_lines_and_plots(fixtures_dir, tmp_path):
    out, plot = tmp_path / "scores.txt", tmp_path / "tree.png"
    status = run_ucb_command(
        [
            str(fixtures_dir / LOG),
            "--out",
            str(out),
            "--metric",
            "rate_constants_R2",
            "--block-size",
            "12",
            "--current-iteration",
            "136",
            "--plot",
            str(plot),
        ]
    )
    assert status == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "=== UCB Scores (block 12, iters 133-144, N=4, c=1.414) ==="
    assert lines[2].startswith("Node 136: UCB=2.106, parent=132, visits=1, rate_constants_R2=0.692, Mutation=")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_options_and_missing_file(tmp_path, capsys):
    log = tmp_path / "a.md"
    log.write_text("## Iter 1: partial\nNode: id=1, parent=root\nMetrics: m=nan\n\n")
    assert run_ucb_command([str(log), "--out", str(tmp_path / "s")]) == 2
    assert "--metric NAME is required" in capsys.readouterr().err
    assert run_ucb_command([str(log), "--out", str(tmp_path / "s"), "--metric", "m", "--block-size", "4"]) == 2
    assert run_ucb_command([str(tmp_path / "none.md"), "--out", str(tmp_path / "s"), "--metric", "m"]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert run_ucb_command([str(log), "--out", str(tmp_path / "s"), "--metric", "m"]) == 0
    assert "Node 1: UCB=0.707, parent=root, visits=1, failed=nan: m, m=nan" in (tmp_path / "s").read_text()


def test_log_problems_go_to_stderr_and_do_not_stop_the_command(tmp_path, capsys):
    log = tmp_path / "a.md"
    log.write_text("## Iter 1: partial\nNode: id=1, parent=7\nMetrics: m=0.5, n=oops\n\n")
    assert run_ucb_command([str(log), "--out", str(tmp_path / "s"), "--metric", "m"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{log}:3: Iter 1: Metrics: n=oops is not a number; left out",
        f"{log}:1: node 1: parent 7 is not in the tree; treated as a child of the root",
    ]
