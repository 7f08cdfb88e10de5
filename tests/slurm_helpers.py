"""Whether the tests can use SLURM: the check every SLURM test shares.

`require_slurm()` skips a test, with the reason, when no SLURM answers; with
UCBX_REQUIRE_SLURM=1 (CI) it fails it instead, so a missing SLURM is never a silent skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SLURM_LOCAL = REPO / "scripts" / "slurm-local.sh"


def local_slurm_conf() -> str:
    line = subprocess.run([str(SLURM_LOCAL), "env"], capture_output=True, text=True, check=True).stdout
    return line.strip().split("=", 1)[1]


def slurm_problem() -> str | None:
    """Why SLURM cannot be used here, or None; sets SLURM_CONF to the local one if unset."""
    if shutil.which("sbatch") is None:
        return "sbatch is not installed; run scripts/slurm-local.sh up (as root)"
    if "SLURM_CONF" not in os.environ and Path(local_slurm_conf()).exists():
        os.environ["SLURM_CONF"] = local_slurm_conf()
    try:
        result = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 15 s; run scripts/slurm-local.sh up (as root)"
    states = result.stdout.split()
    if result.returncode != 0 or not states or not set(states) & {"idle", "mix", "alloc"}:
        detail = (result.stderr.strip() or " ".join(states) or "no node").splitlines()[-1]
        return f"SLURM does not answer ({detail}); run scripts/slurm-local.sh up (as root)"
    return None


def require_slurm() -> None:
    """Return when SLURM answers; else skip with the reason, or fail when UCBX_REQUIRE_SLURM=1 (CI)."""
    problem = slurm_problem()
    if problem is None:
        return
    print(f"\nSLURM tests skipped: {problem}", file=sys.stderr)
    if os.environ.get("UCBX_REQUIRE_SLURM") == "1":
        pytest.fail(f"UCBX_REQUIRE_SLURM=1 but {problem}")
    pytest.skip(problem)
