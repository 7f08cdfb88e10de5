"""`ucbx`: the command line.

    ucbx run SPEC [--workdir DIR] [--iterations N] [--fresh --yes] [--set KEY=VALUE ...]
    ucbx step SPEC [--workdir DIR] [--wait] [--no-launch] [--set KEY=VALUE ...]
    ucbx status SPEC [--workdir DIR]
    ucbx report|tree|show|best|check [--workdir DIR] ...   (see agent/review/commands.py)
    ucbx ucb ANALYSIS_MD --out FILE ...          (see ucb/cli_command.py)

The exploration folder is ``runs/<name>/`` unless ``--workdir`` says otherwise; an
existing folder is always resumed, and only ``--fresh --yes`` starts it over. ``--set``
overrides a spec key for this invocation (``--set trainer.base_config=metabolism/tiny.yaml``).
A problem a person can fix prints one line and exits 2; never a traceback.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml
from rich.console import Console

from agent.driver import Exploration, default_folder
from agent.live import LiveReporter, PlainReporter, format_status, status_view
from agent.review.commands import REVIEW_HANDLERS, add_review_commands
from agent.spec import Spec, load_spec
from memory.crash import check_environment as check_crash_environment
from memory.errors import UcbxError
from slots.journal import JOURNAL_NAME
from slots.lock import FolderLock
from ucb.cli_command import run_ucb_command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ucbx", description="Autonomous UCB-guided exploration of training runs.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="the daemon: keep every slot busy until the budget is spent")
    step = commands.add_parser("step", help="one pass: collect, write, propose, launch, then exit")
    status = commands.add_parser("status", help="slots, jobs, best node, top UCB, budget spent")
    for command in (run, step, status):
        command.add_argument("spec", type=Path, help="exploration spec (configs/*.yaml)")
        command.add_argument("--workdir", type=Path, help="exploration folder (default runs/<name>)")
        command.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a spec key, e.g. exploration.budget=12 (repeatable)",
        )
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


def _overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UcbxError(f"--set {pair}: expected KEY=VALUE")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise UcbxError(
                f"--set {key.strip()}: the value is not valid YAML ({' '.join(str(error).split())})"
            ) from None
    return overrides


def _open(options: argparse.Namespace) -> tuple[Spec, Path]:
    spec = load_spec(options.spec, _overrides(options.set))
    return spec, options.workdir or default_folder(spec)


def _fresh(folder: Path, spec: Spec) -> None:
    """Delete an exploration folder, refusing anything that does not look like one."""
    if not folder.exists():
        return
    if not ((folder / JOURNAL_NAME).exists() or (folder / f"{spec.name}_analysis.md").exists()):
        raise UcbxError(f"{folder}: not an exploration folder (no {JOURNAL_NAME}); not deleted")
    with FolderLock(folder):
        shutil.rmtree(folder)


def cmd_run(options: argparse.Namespace) -> int:
    spec, folder = _open(options)
    if options.fresh and not options.yes:
        raise UcbxError(f"--fresh deletes {folder} and everything in it; add --yes to confirm")
    if options.iterations is not None and options.iterations < 1:
        raise UcbxError("--iterations must be at least 1")
    if options.fresh:
        _fresh(folder, spec)
    exploration = Exploration(spec, folder)
    if sys.stdout.isatty():
        with LiveReporter(Console()) as reporter:
            written = exploration.run(reporter, options.iterations)
    else:
        reporter = PlainReporter()
        reporter.say(f"ucbx run {spec.name}: folder {folder}, {len(exploration.entries())} entries so far")
        written = exploration.run(reporter, options.iterations)
        reporter.say(f"stopped after {written} new entries")
    return 0


def cmd_step(options: argparse.Namespace) -> int:
    spec, folder = _open(options)
    exploration = Exploration(spec, folder)
    report = exploration.step_once(launch=not options.no_launch, wait=options.wait)
    reporter = PlainReporter()
    reporter.update(exploration, report)
    if options.no_launch:
        for slot, node_id in report.proposed:
            reporter.say(
                f"node {node_id} proposed for slot_{slot}: edit {exploration.slot_config_path(slot)} "
                "if you like, then `ucbx step` launches it"
            )
    return 0


def cmd_status(options: argparse.Namespace) -> int:
    spec, folder = _open(options)
    if not folder.is_dir():
        raise UcbxError(f"{folder}: no exploration here yet (start one with `ucbx run {options.spec}`)")
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
