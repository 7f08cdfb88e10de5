"""``python -m benchmarks search|utilisation|overhead|smoke``: ucbx against its peers.

    search       best reward and iterations to converged, every searcher, same budget/slots/seeds
    utilisation  busy fraction of slot-time, asynchronous loop vs synchronous batches (real jobs)
    overhead     seconds per decision against log size, and the agent's share of a demo run
    smoke        all three at toy size (what tests/test_benchmarks_smoke.py runs)
    rerender     a saved search run's table and figure again, without rerunning it

Results (JSON, markdown tables) go to ``--results`` (default benchmarks/results/), figures to
``--figures`` (default docs/benchmarks/). BLAS thread pools are capped at one thread
(like the trainers' torch threads) unless the environment already sets them.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

from benchmarks import harness, overhead, plots, utilisation  # noqa: E402
from benchmarks.searchers import SEARCHERS  # noqa: E402
from benchmarks.tasks import HELD_OUT_FROM, SYNTHETIC, TASK_NAMES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def header(argv: list[str]) -> str:
    """Command, date and machine, for the top of every result file."""
    load = os.getloadavg()[0]
    return (
        f"Command: `python -m benchmarks {' '.join(argv)}`\n"
        f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.1f} at start."
    )


def save(results: Path, name: str, text: str, data) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.md").write_text(text + "\n", encoding="utf-8")
    (results / f"{name}.json").write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(text)


def search(options, argv: list[str]) -> None:
    seeds = list(range(options.first_seed, options.first_seed + options.n_seeds))
    top, started = header(argv), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ucbx-bench-") as work:
        campaigns = harness.run_search(
            options.tasks,
            options.searchers,
            seeds,
            options.budget,
            Path(work),
            options.workers,
            not options.no_failed_band,
        )
    held = "held out" if min(seeds) >= HELD_OUT_FROM else "development"
    bands = " Synthetic tasks without a failed band (--no-failed-band)." if options.no_failed_band else ""
    intro = (
        f"{top}\nSeeds {seeds[0]}-{seeds[-1]} ({held}), budget {options.budget}, "
        f"{time.perf_counter() - started:.0f} s in all.{bands}"
    )
    report_search(options, intro, campaigns)


def report_search(options, intro: str, campaigns: list[harness.Campaign]) -> None:
    """The table, the JSON and the figure of a search run."""
    text = f"{intro}\n\n{harness.table(harness.summarise(campaigns), campaigns)}"
    save(options.results, f"search_{options.label}", text, harness.as_json(campaigns))
    seeds = sorted({c.seed for c in campaigns})
    plots.search_curves(
        campaigns,
        options.figures / f"search_{options.label}.png",
        f"best-so-far reward: median and quartiles over seeds {seeds[0]}-{seeds[-1]}, budget {campaigns[0].budget}",
    )


def rerender(options, argv: list[str]) -> None:
    """Table and figure again from a saved search run (its first three lines are kept)."""
    path = options.results / f"search_{options.label}"
    intro = "\n".join(path.with_suffix(".md").read_text(encoding="utf-8").splitlines()[:3])
    report_search(options, intro, harness.from_json(json.loads(path.with_suffix(".json").read_text())))


def utilisation_command(options, argv: list[str]) -> None:
    top = header(argv)
    with tempfile.TemporaryDirectory(prefix="ucbx-util-") as work:
        results = utilisation.run_utilisation(Path(work), options.unit, options.rounds)
    save(
        options.results,
        "utilisation",
        f"{top}\n\n{utilisation.table(results, options.unit)}",
        [asdict(r) for r in results],
    )
    plots.utilisation(results, options.figures / "utilisation.png")


def overhead_command(options, argv: list[str]) -> None:
    top = header(argv)
    with tempfile.TemporaryDirectory(prefix="ucbx-overhead-") as work:
        decisions = overhead.run_overhead(
            options.sizes, Path(work) / "log", options.repeat, options.tpe_max, options.pass_max
        )
        share = overhead.demo_fraction(Path(work) / "demo", options.demo_budget) if options.demo_budget else None
    text = f"{top}\n\n{overhead.table(decisions)}"
    if share:
        text += (
            f"\n\nDemo exploration ({share.entries} entries, {share.steps} passes): agent "
            f"{share.agent_s:.1f} s of {share.wall_s:.1f} s wall = {share.fraction:.1%}"
        )
    save(
        options.results,
        "overhead",
        text,
        {"decisions": [asdict(d) for d in decisions], "demo": asdict(share) if share else None},
    )
    plots.overhead(decisions, options.figures / "overhead.png")


def smoke(options, argv: list[str]) -> None:
    """Every searcher on one synthetic task, one seed, a tiny budget; the other two at toy size."""
    for args in (
        [
            "search",
            "--tasks",
            "synthetic-lr-cliff",
            "--first-seed",
            "0",
            "--n-seeds",
            "1",
            "--budget",
            "8",
            "--label",
            "smoke",
        ],
        ["utilisation", "--unit", "0.02", "--rounds", "1"],
        ["overhead", "--sizes", "30", "--repeat", "2", "--demo-budget", "0"],
    ):
        main(args + ["--results", str(options.results), "--figures", str(options.figures)])


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("search", help="search efficiency against the peers")
    run.add_argument("--tasks", nargs="+", default=list(SYNTHETIC), choices=TASK_NAMES)
    run.add_argument("--searchers", nargs="+", default=list(SEARCHERS), choices=list(SEARCHERS))
    run.add_argument("--first-seed", type=int, default=HELD_OUT_FROM)
    run.add_argument("--n-seeds", type=int, default=10)
    run.add_argument("--budget", type=int, default=48, help="finished trials per campaign")
    run.add_argument("--workers", type=int, default=2, help="processes training trainer tasks")
    run.add_argument("--label", default="synthetic", help="names the result files and figure")
    run.add_argument(
        "--no-failed-band",
        action="store_true",
        help="synthetic tasks: val_acc below 0.5 is partial, not failed (only nan fails)",
    )
    run.set_defaults(action=search)
    util = commands.add_parser("utilisation", help="busy fraction, asynchronous vs synchronous")
    util.add_argument("--unit", type=float, default=0.25, help="seconds per time_step unit (4/16/32/64)")
    util.add_argument("--rounds", type=int, default=3, help="synchronous batches (the window)")
    util.set_defaults(action=utilisation_command)
    cost = commands.add_parser("overhead", help="seconds per decision and per daemon pass vs log size, and TPE's ask")
    cost.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000, 100_000])
    cost.add_argument("--repeat", type=int, default=5, help="decisions and passes timed per size (median)")
    cost.add_argument("--tpe-max", type=int, default=10_000, help="largest number of trials TPE's ask is run with")
    cost.add_argument("--pass-max", type=int, default=100_000, help="largest log a full daemon pass is run on")
    cost.add_argument("--demo-budget", type=int, default=24, help="entries of the demo exploration (0: skip)")
    cost.set_defaults(action=overhead_command)
    commands.add_parser("smoke", help="all of it at toy size").set_defaults(action=smoke)
    again = commands.add_parser("rerender", help="table and figure again from results/search_<label>.json")
    again.add_argument("--label", default="synthetic")
    again.set_defaults(action=rerender)
    for command in commands.choices.values():
        command.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
        command.add_argument("--figures", type=Path, default=REPO / "docs" / "benchmarks")
    return top


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    options = parser().parse_args(argv)
    options.figures.mkdir(parents=True, exist_ok=True)
    options.action(options, argv)


if __name__ == "__main__":
    main()
