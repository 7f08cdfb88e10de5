"""``python -m benchmarks search|utilisation|overhead|smoke``: ucbx against its peers.

    search       simple regret and iterations to converged, every searcher, same budget/slots/seeds (fair protocol)
    utilisation  busy fraction of slot-time, asynchronous loop vs synchronous batches (real jobs)
    overhead     seconds per decision against log size, and the agent's share of a demo run
    smoke        all three at toy size (what tests/test_benchmarks_smoke.py runs)
    rerender     a saved search run's table and figure again, without rerunning it

``search`` runs development seeds (0-29 by default; below 1000); the held-out seeds
7000-7029 (`HELD_OUT_FROM`) need ``--held-out`` and are run once, after the engine is frozen.
``--priorities equal`` (default) sets every spec priority equal before any searcher sees it.

Results (JSON, markdown tables) go to ``--results`` (default benchmarks/results/), and so does a
search run's regret figure (its three files stay together); the utilisation and overhead figures,
which the README shows, go to ``--figures`` (default docs/benchmarks/). BLAS thread pools are capped at one thread
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
from benchmarks.tasks import DEVELOPMENT_BELOW, HELD_OUT_FROM, HELD_OUT_SEEDS, SEEDED, TASK_NAMES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIGURES = ("utilisation", "overhead", "smoke")  # the commands with --figures (the figures the README shows)


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


def seed_range(options) -> list[int]:
    """The run's seeds; the held-out range only with ``--held-out`` (and then nothing else), exits otherwise."""
    seeds = list(range(options.first_seed, options.first_seed + options.n_seeds))
    held_out = range(HELD_OUT_FROM, HELD_OUT_FROM + HELD_OUT_SEEDS)
    touched = [seed for seed in seeds if seed >= HELD_OUT_FROM]
    if touched and not options.held_out:
        sys.exit(
            f"search: seeds {touched[0]}-{touched[-1]} are in the held-out range from {HELD_OUT_FROM} "
            f"(HELD_OUT_FROM): they are run once, after the engine is frozen, with --held-out; "
            f"develop on seeds below {DEVELOPMENT_BELOW}"
        )
    if options.held_out and not all(seed in held_out for seed in seeds):
        sys.exit(f"search: --held-out runs only seeds {held_out.start}-{held_out.stop - 1}, not {seeds[0]}-{seeds[-1]}")
    return seeds


def seeds_text(seeds: list[int]) -> str:
    if seeds[0] >= HELD_OUT_FROM:
        return f"seeds {seeds[0]}-{seeds[-1]} (held out: run once, after the engine was frozen)"
    return f"seeds {seeds[0]}-{seeds[-1]} (development)"


def protocol_text(priorities: str) -> str:
    """The fair protocol in one paragraph, for the top of every search table."""
    equal = (
        "all equal (every spec priority set to 1 before any searcher sees the spec)"
        if priorities == harness.EQUAL
        else "the spec's own (a user's prior that only ucbx reads)"
    )
    return (
        "Protocol: every searcher runs the base config first on every slot (Optuna: enqueue_trial once per slot); "
        "a crash, divergence or nan is told to every peer as 0.0, the minimum of the reward (never Optuna's FAIL); "
        f"same budget, slots and simulated clock for all. Priorities: {equal}. Simple regret = optimum - the "
        "noise-free reward of the recommended config (known optimum; trainers: best any searcher found on the seed). "
        "Trainers (no noise-free value): after the budget each searcher's recommended config is trained again on the "
        "same fresh training seeds (the final check) and scored by its mean there, against the best such mean on "
        "the seed; runs saved before the final check existed are scored by the recommendation's own value. "
        "Intervals: bootstrap 95% of the median over seeds; Wilcoxon: two-sided signed-rank on final regret paired by "
        "seed; wins/ties/losses: ucbx's regret lower/equal/higher."
    )


def search(options, argv: list[str]) -> None:
    seeds = seed_range(options)
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
            priorities=options.priorities,
            final_seeds=options.final_seeds,
        )
    bands = " Synthetic tasks without a failed band (--no-failed-band)." if options.no_failed_band else ""
    intro = (
        f"{top}\n{seeds_text(seeds).capitalize()}, budget {options.budget}, "
        f"{time.perf_counter() - started:.0f} s in all.{bands}\n{protocol_text(options.priorities)}"
    )
    report_search(options, intro, campaigns)


def report_search(options, intro: str, campaigns: list[harness.Campaign]) -> None:
    """The table, where ucbx loses, the JSON and the regret figure of a search run."""
    lost = harness.losses(campaigns)
    where = "\n".join(f"- {line}" for line in lost) if lost else "- nowhere: no peer has a lower median regret"
    checked = harness.final_check_table(campaigns)
    if checked:
        checked = f"\n\nThe final check (each recommended config trained again on fresh seeds):\n\n{checked}"
    text = (
        f"{intro}\n\nMedian final simple regret [bootstrap 95% CI]:\n\n{harness.compact_table(campaigns)}\n\n"
        f"{harness.table(campaigns)}{checked}\n\nWhere ucbx loses (a lower median regret):\n{where}"
    )
    save(options.results, f"search_{options.label}", text, harness.as_json(campaigns))
    seeds = sorted({c.seed for c in campaigns})
    title = (
        f"simple regret: median and bootstrap 95% interval over seeds {seeds[0]}-{seeds[-1]}, budget "
        f"{campaigns[0].budget}, priorities {campaigns[0].priorities}"
    )
    if any(c.final is not None for c in campaigns):
        title += " (in-campaign figure; the table scores the final check)"
    plots.regret_curves(campaigns, options.results / f"search_{options.label}.png", title)


def rerender(options, argv: list[str]) -> None:
    """Table and figure again from a saved search run (its intro, up to the first blank line, is kept)."""
    path = options.results / f"search_{options.label}"
    intro = path.with_suffix(".md").read_text(encoding="utf-8").split("\n\n")[0]
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
        figures = ["--figures", str(options.figures)] if args[0] in FIGURES else []
        main(args + ["--results", str(options.results), *figures])


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("search", help="search efficiency against the peers")
    run.add_argument("--tasks", nargs="+", default=list(SEEDED), choices=TASK_NAMES)
    run.add_argument("--searchers", nargs="+", default=list(SEARCHERS), choices=list(SEARCHERS))
    run.add_argument("--first-seed", type=int, default=0, help=f"development seeds are below {DEVELOPMENT_BELOW}")
    run.add_argument("--n-seeds", type=int, default=30)
    run.add_argument(
        "--held-out",
        action="store_true",
        help=f"run the held-out seeds ({HELD_OUT_FROM}-{HELD_OUT_FROM + HELD_OUT_SEEDS - 1}): once, engine frozen",
    )
    run.add_argument(
        "--priorities",
        choices=(harness.EQUAL, harness.SPEC),
        default=harness.EQUAL,
        help="equal: every spec priority set equal before any searcher sees the spec (headline); spec: as written",
    )
    run.add_argument("--budget", type=int, default=48, help="finished trials per campaign")
    run.add_argument("--workers", type=int, default=2, help="processes training trainer tasks")
    run.add_argument(
        "--final-seeds",
        type=int,
        default=harness.FINAL_SEEDS,
        help="trainers: training seeds on which each recommended config is trained again after the budget (0: none)",
    )
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
    from benchmarks import pruning  # noqa: PLC0415 (its own module: learning curves and pruners)

    pruning.add_command(commands)
    for name, command in commands.choices.items():
        command.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
        if name in FIGURES:
            command.add_argument("--figures", type=Path, default=REPO / "docs" / "benchmarks")
    return top


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    options = parser().parse_args(argv)
    if options.command in FIGURES:
        options.figures.mkdir(parents=True, exist_ok=True)
    options.action(options, argv)


if __name__ == "__main__":
    main()
