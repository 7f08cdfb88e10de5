"""Would a stopped run have become the best? Train each run an exploration's pruning stopped to its end.

    python -m benchmarks.pruned_to_end FOLDER [--workers 2] [--out DIR]

FOLDER is an exploration folder (its ``spec.yaml``, journal and log). Every job whose failure
kind is ``pruned`` is trained again from its own config (the command the journal holds, with
the run folder moved to ``--out``): the built-in trainers are seeded and deterministic on one
thread, so this is the run the rule cut short. Each is scored by the exploration's objective
and compared with the best reward of a single run that finished in the exploration. Prints
one line per stopped run and a summary (how many would have ended above that best, how many
would have converged).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agent.analysis import PRUNED
from agent.folder import ExplorationFolder
from memory.analysis_log import read_metrics
from memory.errors import ParseError
from memory.notebook import parse_notebook
from slots.journal import Journal


def rerun(command: list[str], old_dir: str, new_dir: Path) -> None:
    """Run ``command`` with its run folder (and the config in it) moved from ``old_dir`` to ``new_dir``."""
    new_dir.mkdir(parents=True, exist_ok=True)
    for source in Path(old_dir).glob("*.yaml"):  # the config the command names lives in the run folder
        shutil.copy(source, new_dir / source.name)
    argv = [part.replace(old_dir, str(new_dir)) for part in command]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(new_dir / "stdout.txt", "w") as out:
        subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=environment, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="where the reruns go (default: a temporary folder)")
    args = parser.parse_args()
    folder = ExplorationFolder.discover(args.folder)
    spec = folder.load_spec_copy()
    if spec is None:
        raise SystemExit(f"{args.folder}: no spec copy ({folder.spec_copy.name}); not an exploration folder")
    entries = parse_notebook(folder.log.read_text(encoding="utf-8")).entries
    finished = [spec.objective.score(entry.metrics).reward or 0.0 for entry in entries if not entry.failure]
    best = max(finished, default=0.0)
    stopped = [job for job in Journal(args.folder).jobs() if job.failure_kind == PRUNED]
    out = args.out or Path(tempfile.mkdtemp(prefix="pruned_to_end_"))
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(lambda job: rerun(job.command, job.run_dir, out / Path(job.run_dir).name), stopped))
    above = converged = 0
    print(f"{len(stopped)} stopped runs of {args.folder}, trained to their end in {out}")
    print(f"best reward of a finished single run in the exploration: {best:.4f}")
    for job in stopped:
        try:
            metrics = read_metrics(out / Path(job.run_dir).name / spec.trainer.metrics_file)
        except (OSError, ParseError) as error:
            print(f"node {job.node_id}: no metrics ({error})")
            continue
        score = spec.objective.score(metrics)
        reward = score.reward if score.reward is not None else float("nan")
        above += reward > best
        converged += score.classification == "converged"
        name = spec.objective.primary
        print(f"node {job.node_id}: reward {reward:.4f}, {score.classification}, {name} {metrics.get(name, 'absent')}")
    print(f"would have ended above the best: {above} of {len(stopped)}; would have converged: {converged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
