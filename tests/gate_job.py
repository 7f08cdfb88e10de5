"""A job that ends when the test says so: `python gate_job.py RUN_DIR gate [LIMIT]`.

Same interface as tests/slots_job.py (RUN_DIR MODE [SECONDS]), so the same drivers and
benches run it. Every start appends its pid to RUN_DIR/starts.txt (a test counts
launches and knows the job is running); then the job waits until RUN_DIR/release
exists (`waiting.release`), writes RUN_DIR/analysis.log and exits 0. A job never
released gives up after LIMIT seconds (default 600) with exit code 4, so a failed
test leaves no job behind for long.
"""

import os
import sys
import time
from pathlib import Path

run_dir, mode = Path(sys.argv[1]), sys.argv[2]
limit = float(sys.argv[3]) if len(sys.argv) > 3 else 600.0
if mode != "gate":
    sys.exit(f"gate_job: unknown mode {mode!r} (expected 'gate')")
with open(run_dir / "starts.txt", "a") as starts:
    starts.write(f"{os.getpid()}\n")
print(f"job gate in {run_dir}", flush=True)
deadline = time.monotonic() + limit
while not (run_dir / "release").exists():
    if time.monotonic() > deadline:
        print(f"gate_job: never released within {limit:g} s", file=sys.stderr)
        sys.exit(4)
    time.sleep(0.02)
(run_dir / "analysis.log").write_text("loss: 0.25\naccuracy=0.9\n")
