"""The review commands' options and handlers: ``ucbx report|tree|show|best|check``.

Owns the command line of review. `add_review_commands(subparsers)` adds the five
commands to ``ucbx``'s parser and `REVIEW_HANDLERS` maps each to its handler
(``handler(options) -> exit status``); `main(argv)` runs them alone
(``python -m agent.review report ...``). Every command reads an exploration folder or
a bare log, named by its positional argument (a folder, a spec, whose folder is
``runs/<name>``, or an ``*_analysis.md`` log) or by ``--workdir`` / ``--spec`` /
``--log``; by default the current folder. The spec is the folder's copy unless one is
named; ``--set KEY=VALUE`` overrides its keys; a bare log needs ``--metric NAME``.

Exit status: 0 done; 1 ``check`` found an error; 2 a problem a person can fix (no log,
no objective, unknown node), printed as one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from rich.console import Console

from agent.folder import LOG_SUFFIX, ExplorationFolder, load_spec_copy
from agent.review import best as best_module
from agent.review.check import ERROR, check_all
from agent.review.configs import diff_lines
from agent.review.folder import ExplorationFiles
from agent.review.show import show_node
from agent.review.tree_view import rich_tree
from agent.spec import load_spec
from memory.errors import UcbxError

HELP = {
    "report": "write REPORT.md and its figures into the exploration folder",
    "tree": "the exploration tree in the terminal, or as a PNG (--plot FILE)",
    "show": "one node: its entry, config against its parent, run folder and plots",
    "best": "the best node (highest pooled reward) and its full config (--yaml)",
    "check": "report every problem in the log, memory and slot configs (exit 1 on errors)",
}


def add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec key, e.g. exploration.budget=12 (repeatable)",
    )


def overrides(pairs: list[str]) -> dict:
    """``--set KEY=VALUE`` pairs as a dict of YAML values; UcbxError (one line) for a bad one."""
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UcbxError(f"--set {pair}: expected KEY=VALUE")
        try:
            found[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise UcbxError(
                f"--set {key.strip()}: the value is not valid YAML ({' '.join(str(error).split())})"
            ) from None
    return found


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        nargs="?",
        type=Path,
        metavar="FOLDER|SPEC|LOG",
        help="the exploration folder, its spec, or an *_analysis.md log (default: the current folder)",
    )
    add_set_option(parser)
    parser.add_argument(
        "--workdir",
        type=Path,
        help="exploration folder (default: runs/<name> with --spec, "
        "the log's folder with --log, else the current folder)",
    )
    parser.add_argument("--spec", type=Path, help="exploration spec (default: the folder's spec.yaml copy)")
    parser.add_argument(
        "--log",
        type=Path,
        metavar="FILE",
        help="the analysis log, when the folder has several or is not an exploration folder",
    )
    parser.add_argument(
        "--metric", metavar="NAME", help="without a spec: the metric scored as reward (larger is better)"
    )


def count(text: str) -> int:
    """An argparse type: a whole number, 0 or more (``--top``, ``--depth``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def add_review_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add report, tree, show, best and check to ``ucbx``'s subcommands."""
    commands = {name: subparsers.add_parser(name, help=text, description=text) for name, text in HELP.items()}
    commands["show"].add_argument("node", type=int, help="node id (the N of 'Node: id=N')")
    for parser in commands.values():
        _common(parser)
    commands["report"].add_argument(
        "--out", type=Path, metavar="DIR", help="write REPORT.md and report/ here instead of the folder"
    )
    commands["tree"].add_argument(
        "--plot", type=Path, metavar="FILE", help="draw the tree to this PNG (and an SVG beside it) instead"
    )
    commands["tree"].add_argument(
        "--depth", type=count, metavar="D", help="leave out nodes more than D mutations below the root (summarised)"
    )
    commands["tree"].add_argument(
        "--top", type=count, metavar="K", help="only the best node's lineage and the K highest-UCB nodes' lineages"
    )
    commands["best"].add_argument("--yaml", action="store_true", help="print only the config, as YAML")


def open_files(options: argparse.Namespace) -> ExplorationFiles:
    """The exploration the options name (see the module's docstring)."""
    extra = overrides(options.set)
    target, log, folder = options.target, options.log, options.workdir
    spec = load_spec(options.spec, extra) if options.spec else None
    if target is not None and target.is_dir():
        folder = target
    elif target is not None and target.name.endswith(LOG_SUFFIX):
        log = target
    elif target is not None:
        spec = load_spec(target, extra)
    if folder is None:
        folder = ExplorationFolder.default(spec.name).root if spec else log.parent if log else Path.cwd()
    if spec is None:
        spec = load_spec_copy(folder, extra)
    return ExplorationFiles.open(folder, spec, log, options.metric)


def run_report(options: argparse.Namespace) -> int:
    from agent.review.report import write_report  # matplotlib: imported by the commands that draw only

    files = open_files(options)
    path = write_report(files, options.out or files.folder)
    print(f"wrote {path}")
    return 0


def run_tree(options: argparse.Namespace) -> int:
    files = open_files(options)
    if options.plot:
        from agent.review import plots  # matplotlib: imported by the commands that draw only

        print(f"wrote {plots.tree(files, options.plot, options.top, options.depth)} and its .svg")
    else:
        Console().print(rich_tree(files, options.top, options.depth))
    return 0


def run_show(options: argparse.Namespace) -> int:
    print(show_node(open_files(options), options.node), end="")
    return 0


def run_best(options: argparse.Namespace) -> int:
    files = open_files(options)
    best = best_module.best_node(files)
    config = best_module.config_yaml(files, best.node.id)
    if options.yaml:
        print(config, end="")
        return 0
    node = best.node
    print(
        f"best node {node.id}: reward {node.mean:.3f} ± {node.spread:.3f} over {len(node.rewards)} runs, "
        f"class {node.classification}, {best.runs[0].slot_name}"
    )
    print("lineage: root -> " + " -> ".join(best_module.lineage(files, node)))
    rows = best_module.base_differences(files, node.id)
    if rows is not None:
        print("against the base config:\n" + "\n".join(f"  {line}" for line in diff_lines(rows)))
    print(f"config ({files.run_dir(node.id) / 'config.yaml'}):\n{config}", end="")
    return 0


def run_check(options: argparse.Namespace) -> int:
    files = open_files(options)
    findings = check_all(files)
    for finding in findings:
        print(finding)
    errors = sum(1 for finding in findings if finding.severity == ERROR)
    print(f"{errors} errors, {len(findings) - errors} warnings in {files.folder}")
    return 1 if errors else 0


REVIEW_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "report": run_report,
    "tree": run_tree,
    "show": run_show,
    "best": run_best,
    "check": run_check,
}


def main(argv: list[str] | None = None) -> int:
    """The review commands on their own (``python -m agent.review COMMAND ...``)."""
    parser = argparse.ArgumentParser(prog="ucbx", description="Review an exploration from its files.")
    add_review_commands(parser.add_subparsers(dest="command", required=True))
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return REVIEW_HANDLERS[options.command](options)
    except UcbxError as error:
        print(f"ucbx: error: {error}", file=sys.stderr)
        return 2
