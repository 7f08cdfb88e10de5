"""`ucbx ucb`: UCB scores (and optionally a tree plot) from an analysis log, with no trainer.

Owns the command's options and what it prints; `agent/cli.py` forwards its arguments::

    ucbx ucb ANALYSIS_MD --out FILE [--c 1.414] [--block-size N --current-iteration N]
             [--metric NAME] [--compat metabolismgraph] [--plot FILE.png]

Native mode scores the raw ``--metric`` value (nan, inf or a ``Failure:`` line marks
the node failed), takes parents from the ``Node:`` lines, pools replicates and keeps
lineage across blocks. ``--compat metabolismgraph`` follows the public
implementation's rules (see `ucb.compat`) and writes its exact file. Problems in the
log are printed to stderr as ``file:line: message``; they never stop the command.
Exit status: 0 written, 1 unreadable input, 2 bad options.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from memory.atomic import write_text_atomic
from memory.errors import UcbxError
from memory.notebook import parse_notebook
from ucb.compat import compat_scores
from ucb.scores import DEFAULT_C, block_members, block_range, format_scores, puct, scores_header, total_visits
from ucb.tree import Tree

COMPAT_DEFAULT_METRIC = "rate_constants_R2"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ucbx ucb", description="UCB scores of the experiments in an analysis log.")
    parser.add_argument("analysis", metavar="ANALYSIS_MD", type=Path, help="the <name>_analysis.md log")
    parser.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="scores file to write (<name>_ucb_scores.txt)"
    )
    parser.add_argument("--c", type=float, default=DEFAULT_C, help="exploration constant (default 1.414)")
    parser.add_argument(
        "--block-size", type=int, default=0, metavar="N", help="iterations per block (score the current block only)"
    )
    parser.add_argument("--current-iteration", type=int, metavar="N", help="the iteration that fixes the current block")
    parser.add_argument(
        "--metric", metavar="NAME", help="the metric scored as reward (compat default: rate_constants_R2)"
    )
    parser.add_argument("--compat", choices=["metabolismgraph"], help="reproduce a public implementation's scores")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="also draw the tree to this PNG file")
    return parser


def _check(parser: argparse.ArgumentParser, options: argparse.Namespace) -> None:
    if (options.block_size > 0) != (options.current_iteration is not None):
        parser.error("--block-size and --current-iteration go together")
    if options.block_size < 0 or (options.current_iteration is not None and options.current_iteration < 1):
        parser.error("--block-size and --current-iteration must be positive")
    if options.c < 0:
        parser.error("--c must be >= 0")
    if options.metric is None and not options.compat:
        parser.error("--metric NAME is required (the metric scored as reward)")


def _native(entries, options) -> tuple[str, Tree, list]:
    tree = Tree.from_entries(entries, metric=options.metric)
    members, block = None, None
    if options.block_size > 0:
        members = block_members(tree, options.current_iteration, options.block_size)
        number, first, last = block_range(options.current_iteration, options.block_size)
        block = (number + 1, first, last)
    scores = puct(tree, options.c, members)
    header = scores_header(total_visits(tree, members), options.c, block)
    columns = ((options.metric, options.metric),)
    return format_scores(scores, tree, header, columns, show_reward=False), tree, scores


def run_ucb_command(argv: list[str]) -> int:
    """Run ``ucbx ucb`` with ``argv`` (the arguments after ``ucb``); returns the exit status."""
    parser = _parser()
    try:
        options = parser.parse_args(argv)
        _check(parser, options)
    except SystemExit as stop:
        return int(stop.code or 0)
    try:
        text = options.analysis.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        print(f"ucbx ucb: cannot read {options.analysis}: {error}", file=sys.stderr)
        return 1
    parsed = parse_notebook(text, str(options.analysis))
    problems = list(parsed.problems)
    if options.compat:
        metric = options.metric or COMPAT_DEFAULT_METRIC
        scores_text, tree, scores, more = compat_scores(
            parsed.entries, metric, options.c, options.current_iteration, options.block_size
        )
    else:
        scores_text, tree, scores = _native(parsed.entries, options)
        more = tree.problems
    problems += [problem if problem.path else replace(problem, path=str(options.analysis)) for problem in more]
    for problem in problems:
        print(problem, file=sys.stderr)
    try:
        write_text_atomic(options.out, scores_text)
        if options.plot:
            from ucb.plot import plot_tree  # matplotlib: imported when a plot is asked for only

            plot_tree(tree, options.plot, title=options.analysis.name)
    except (OSError, UcbxError) as error:
        print(f"ucbx ucb: cannot write: {error}", file=sys.stderr)
        return 1
    top = f"; top: node {scores[0].node_id} (UCB={scores[0].ucb:.3f})" if scores else ""
    print(f"wrote {options.out}: {len(scores)} nodes scored from {len(parsed.entries)} entries{top}")
    return 0


if __name__ == "__main__":
    sys.exit(run_ucb_command(sys.argv[1:]))
