"""`ucbx`: the command line.

    ucbx run SPEC|FOLDER [--workdir DIR] [--iterations N] [--fresh --yes] [--set KEY=VALUE ...]
    ucbx step SPEC|FOLDER [--workdir DIR] [--wait] [--no-launch] [--set KEY=VALUE ...]
    ucbx status SPEC|FOLDER [--workdir DIR] [--set KEY=VALUE ...]
    ucbx report|tree|best|check [FOLDER|SPEC|LOG] ...      (see agent/review/commands.py)
    ucbx show NODE [FOLDER|SPEC|LOG] ...
    ucbx ucb ANALYSIS_MD --out FILE ...          (see ucb/cli_command.py)

The exploration folder is ``runs/<name>/`` of a spec unless ``--workdir`` says otherwise;
given a folder instead, its spec copy is used. An existing folder is always resumed, and
only ``--fresh --yes`` starts it over. ``--set`` overrides a spec key for this invocation
(``--set trainer.base_config=metabolism/tiny.yaml``), in every command. A problem a
person can fix prints one line and exits 2; never a traceback.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rich.console import Console

from agent import daemon
from agent.driver import Exploration
from agent.folder import ExplorationFolder, locate
from agent.live import LiveReporter, PlainReporter, format_status, status_view
from agent.review.commands import REVIEW_HANDLERS, add_review_commands, add_set_option, overrides
from agent.spec import Spec
from memory.crash import check_environment as check_crash_environment
from memory.errors import UcbxError
from ucb.cli_command import run_ucb_command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ucbx", description="Autonomous UCB-guided exploration of training runs.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="the daemon: keep every slot busy until the budget is spent")
    step = commands.add_parser("step", help="one pass: collect, write, propose, launch, then exit")
    status = commands.add_parser("status", help="slots, jobs, best node, top UCB, budget spent")
    for command in (run, step, status):
        command.add_argument("spec", type=Path, help="exploration spec (configs/*.yaml), or an exploration folder")
        command.add_argument("--workdir", type=Path, help="exploration folder (default runs/<name>)")
        add_set_option(command)
    run.add_argument("--iterations", type=int, help="stop after this many more log entries")
    run.add_argument("--fresh", action="store_true", help="delete the exploration folder first (needs --yes)")
    run.add_argument("--yes", action="store_true", help="confirm --fresh")
    step.add_argument("--wait", action="store_true", help="block until at least one running job finishes")
    step.add_argument(
        "--no-launch",
        action="store_true",
        help="write the next slot configs and stop, so they can be edited before `ucbx step`",
    )
    commands.add_parser("ucb", help="UCB scores from an analysis log (ucbx ucb --help)", add_help=False)
    add_review_commands(commands)
    return parser


def _open(options: argparse.Namespace) -> tuple[Spec, ExplorationFolder]:
    return locate(options.spec, options.workdir, overrides(options.set))


def _fresh(folder: ExplorationFolder) -> None:
    """Delete an exploration folder, refusing anything that does not look like one."""
    if not folder.root.exists():
        return
    if not folder.is_exploration():
        raise UcbxError(f"{folder.root}: not an exploration folder (no {folder.journal.name}); not deleted")
    with folder.lock():
        shutil.rmtree(folder.root)


def cmd_run(options: argparse.Namespace) -> int:
    spec, folder = _open(options)
    if options.fresh and not options.yes:
        raise UcbxError(f"--fresh deletes {folder} and everything in it; add --yes to confirm")
    if options.iterations is not None and options.iterations < 1:
        raise UcbxError("--iterations must be at least 1")
    if options.fresh:
        _fresh(folder)
    exploration = Exploration(spec, folder)
    if sys.stdout.isatty():
        with LiveReporter(Console()) as reporter:
            written = daemon.run(exploration, reporter, options.iterations)
    else:
        reporter = PlainReporter()
        so_far = len(exploration.reader.entries())
        reporter.say(f"ucbx run {spec.name}: folder {folder.root}, {so_far} entries so far")
        written = daemon.run(exploration, reporter, options.iterations)
        reporter.say(f"stopped after {written} new entries")
    return 0


def cmd_step(options: argparse.Namespace) -> int:
    spec, folder = _open(options)
    exploration = Exploration(spec, folder)
    report = daemon.step_once(exploration, launch=not options.no_launch, wait=options.wait)
    reporter = PlainReporter()
    reporter.update(exploration, report)
    if options.no_launch:
        for slot, node_id in report.proposed:
            reporter.say(
                f"node {node_id} proposed for slot_{slot}: edit {folder.slot_config(slot)} "
                "if you like, then `ucbx step` launches it"
            )
    return 0


def cmd_status(options: argparse.Namespace) -> int:
    spec, folder = _open(options)
    if not folder.root.is_dir():
        raise UcbxError(f"{folder.root}: no exploration here yet (start one with `ucbx run {options.spec}`)")
    print(format_status(status_view(Exploration(spec, folder))))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "ucb":
        return run_ucb_command(argv[1:])
    options = _parser().parse_args(argv)
    handlers = {"run": cmd_run, "step": cmd_step, "status": cmd_status, **REVIEW_HANDLERS}
    try:
        check_crash_environment()
        return handlers[options.command](options)
    except UcbxError as error:
        print(f"ucbx: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a folder in the way: nothing is lost, the next run goes on
        where = f"{error.filename}: " if error.filename else ""
        print(f"ucbx: error: {where}cannot write it ({error.strerror or error})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
