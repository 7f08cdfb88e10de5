"""A tiny trainer for the slots/ tests: `python slots_job.py RUN_DIR MODE [SECONDS]`.

Every start appends a line to RUN_DIR/starts.txt (so a test counts launches) and
RUN_DIR/env.json records the thread caps and GPU the job saw. MODE:
ok | nan | diverged | crash | oom | sigkill | no-metrics | sleep (SECONDS, then ok) |
tree (starts a grandchild `sleep`, records its pid in grandchild.pid, then sleeps).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

run_dir, mode = Path(sys.argv[1]), sys.argv[2]
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
with open(run_dir / "starts.txt", "a") as starts:
    starts.write(f"{os.getpid()}\n")
names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
(run_dir / "env.json").write_text(json.dumps({name: os.environ.get(name) for name in names}))
print(f"job {mode} in {run_dir}")

if mode == "tree":
    grandchild = subprocess.Popen(["sleep", "300"])
    (run_dir / "grandchild.pid").write_text(str(grandchild.pid))
    mode, seconds = "sleep", 300
if mode == "sleep":
    time.sleep(seconds)
    mode = "ok"
if mode == "ok":
    (run_dir / "analysis.log").write_text("loss: 0.25\naccuracy=0.9\n")
elif mode == "nan":
    (run_dir / "analysis.log").write_text("loss: nan\naccuracy=0.9\n")
elif mode == "diverged":
    (run_dir / "analysis.log").write_text("loss: 12.5\ndiverged: 1\n")
elif mode == "crash":
    raise ValueError("boom in phase 2")
elif mode == "oom":
    raise MemoryError("could not allocate the embedding table")
elif mode == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
elif mode != "no-metrics":
    sys.exit(f"unknown mode {mode}")
