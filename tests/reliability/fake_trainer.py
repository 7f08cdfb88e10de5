"""A fast, real trainer for the reliability suites: `python fake_trainer.py --config F --run-dir D [anything...]`.

It knows nothing of ucbx. It reads its YAML config, sleeps ``fault.sleep`` seconds,
and writes ``D/analysis.log`` (``score``, ``loss``) from the searched values, so the
search has something to climb. Every start appends its pid to ``D/starts.txt`` (a test
counts launches) and ``D/argv.json`` holds the exact argument list it received.

Faults, by config knob: ``fault.plan`` maps a node id (from the run folder's name
``node_NNNN``) to a mode; ``fault.mode`` is the mode of every other node:
  ok | crash (exit 3) | hang (sleeps an hour) | nan (score nan) | diverged (diverged: 1) |
  no-metrics (exit 0, no file) | truncated (the file stops in the middle of a line) |
  garbage (binary and malformed lines, no readable score) | garbage-ok (the same
  around a valid score) | oom (MemoryError) | sigkill (kills itself) | vanish (sleeps
  until a test kills it from outside)
"""

import argparse
import json
import math
import os
import re
import signal
import sys
import time
from pathlib import Path

import yaml

parser = argparse.ArgumentParser(allow_abbrev=False)
parser.add_argument("--config", required=True)
parser.add_argument("--run-dir", required=True)
arguments, _ = parser.parse_known_args()  # anything else is kept in argv.json, untouched
run_dir = Path(arguments.run_dir)
run_dir.mkdir(parents=True, exist_ok=True)
with open(run_dir / "starts.txt", "a") as starts:
    starts.write(f"{os.getpid()}\n")
(run_dir / "argv.json").write_text(json.dumps(sys.argv[1:]))
config = yaml.safe_load(Path(arguments.config).read_text())
train, fault = config["train"], config.get("fault", {}) or {}
(run_dir / "values.json").write_text(json.dumps(train, default=str))
match = re.search(r"node_(\d+)", run_dir.name)
node = int(match.group(1)) if match else 0
mode = (fault.get("plan") or {}).get(node, fault.get("mode", "ok"))
print(f"node {node}: mode {mode}", flush=True)
time.sleep(float(fault.get("sleep", 0.05)))

lr, momentum, batch = float(train["lr"]), float(train["momentum"]), int(train["batch"])
width = int(config["slot"]["width"])
score = math.exp(-((math.log10(lr) + 2) ** 2)) * (0.6 + 0.4 * momentum) * (1 - abs(math.log2(batch) - 5) / 12)
score = max(0.0, min(1.0, score * (0.9 + 0.1 * (width % 3)) + 0.001 * (int(train.get("seed", 0)) % 5)))
good = f"score: {score:.6f}\nloss: {1 - score:.6f}\n"
log = run_dir / "analysis.log"

if mode == "ok":
    log.write_text(good)
elif mode == "crash":
    print("Traceback (most recent call last):\nRuntimeError: fake trainer crashed on purpose", file=sys.stderr)
    sys.exit(3)
elif mode in ("hang", "vanish"):
    (run_dir / "hanging.pid").write_text(str(os.getpid()))
    time.sleep(3600)
elif mode == "nan":
    log.write_text("score: nan\nloss: nan\n")
elif mode == "diverged":
    log.write_text("score: 0.97\nloss: 0.03\ndiverged: 1\n")
elif mode == "no-metrics":
    pass
elif mode == "truncated":
    log.write_text("loss: 0.5\nsco")
elif mode == "garbage":
    log.write_bytes(b"\x00\xff\xfe garbage\nscore: abc\nscore 0.9\nscore: 0.9.9\n==== epoch 3 ====\nscore:\n\x1b[31m")
elif mode == "garbage-ok":
    log.write_bytes(b"\x00\xff\xfe garbage\nscore: abc\n==== epoch 3 ====\n" + good.encode() + b"\xff\xfe\n")
elif mode == "oom":
    raise MemoryError("could not allocate 10 TB for the fake embedding table")
elif mode == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
else:
    sys.exit(f"fake trainer: unknown fault mode {mode!r}")
