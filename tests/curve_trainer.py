"""A trainer with known learning curves: `python curve_trainer.py --config F --run-dir D`.

The config's ``curve.plan_file`` names a JSON plan the test writes (and may extend while
the exploration runs): ``{"default": RUN, "<node id>": RUN, ...}``, where RUN is
``{"values": [v1, ..., vn], "hold": bool, "silent": bool}``. The node id is read from the
run folder's name (``node_NNNN``). The trainer appends one progress line per value
(``{"step": k, "of": n, "score": vk}``, memory/progress.py; a null value writes
``{"step": k, "of": n, "loss": 1 / k}`` instead, as a trainer whose objective metric is
evaluated only at checkpoints), unless ``silent``; with
``hold`` it then waits until ``D/release`` exists (tests/waiting.py `release`; it gives up
after 600 s, exit 4), so a test knows the run is still running when ucbx looks at it.
Then it writes ``D/analysis.log`` with the last value as ``score`` and exits 0. Every
start appends its pid to ``D/starts.txt``.
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from memory.progress import PROGRESS_NAME, append_progress  # noqa: E402

LIMIT_S = 600.0

parser = argparse.ArgumentParser()
parser.add_argument("--config", required=True)
parser.add_argument("--run-dir", required=True)
arguments = parser.parse_args()
run_dir = Path(arguments.run_dir)
run_dir.mkdir(parents=True, exist_ok=True)
with open(run_dir / "starts.txt", "a") as starts:
    starts.write(f"{os.getpid()}\n")
config = yaml.safe_load(Path(arguments.config).read_text())
plan = json.loads(Path(config["curve"]["plan_file"]).read_text())
node = int(re.search(r"node_(\d+)", run_dir.name).group(1))
run = plan.get(str(node), plan["default"])
values = run["values"]
for step, value in enumerate(values, start=1):
    if not run.get("silent"):
        metrics = {"loss": 1.0 / step} if value is None else {"score": value}
        append_progress(run_dir / PROGRESS_NAME, step, len(values), metrics)
deadline = time.monotonic() + LIMIT_S
while run.get("hold") and not (run_dir / "release").exists():
    if time.monotonic() > deadline:
        sys.exit(4)
    time.sleep(0.02)
(run_dir / "analysis.log").write_text(f"score: {[v for v in values if v is not None][-1]}\n")
