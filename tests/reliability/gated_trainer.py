"""The fake trainer behind a gate: `python gated_trainer.py RELEASE_FILE [fake_trainer arguments...]`.

Every start appends its pid to RUN_DIR/gate_starts.txt (the ``--run-dir`` argument), so a test
knows the job is running; then it waits until RELEASE_FILE exists and runs fake_trainer.py
with the other arguments. A test that must see jobs still running when it checks something
holds them this way instead of guessing how long they take. A gate never opened gives up
after 600 s (exit 4), so a failed test leaves no job behind for long.
"""

import os
import runpy
import sys
import time
from pathlib import Path

LIMIT = 600.0

release, arguments = Path(sys.argv[1]), sys.argv[2:]
run_dir = Path(arguments[arguments.index("--run-dir") + 1])
run_dir.mkdir(parents=True, exist_ok=True)
with open(run_dir / "gate_starts.txt", "a") as starts:
    starts.write(f"{os.getpid()}\n")
deadline = time.monotonic() + LIMIT
while not release.exists():
    if time.monotonic() > deadline:
        sys.exit(f"gated trainer: {release} never appeared within {LIMIT:g} s")
    time.sleep(0.05)
sys.argv = [str(Path(__file__).with_name("fake_trainer.py")), *arguments]
runpy.run_path(sys.argv[0], run_name="__main__")
