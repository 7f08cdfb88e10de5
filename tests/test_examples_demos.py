"""The demo specs under `ucbx run ... --iterations 8`, at test size (the tiny trainer presets).

The real demo presets take minutes on two CPU cores (see the README); here each spec runs
with ``--set trainer.base_config=<tiny preset>`` so the whole loop is exercised quickly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from memory.notebook import parse_notebook

REPO = Path(__file__).resolve().parents[1]
UCBX = Path(sys.executable).parent / "ucbx"


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec, tiny", [("causal_demo", "causal/tiny.yaml"), ("gflownet_demo", "gflownet/tiny.yaml"), ("command_demo", "")]
)
def test_demo_spec_runs_eight_iterations(tmp_path, spec, tiny):
    options = ["--set", f"trainer.base_config={tiny}"] if tiny else []
    done = subprocess.run(
        [str(UCBX), "run", f"configs/{spec}.yaml", "--workdir", str(tmp_path / spec), "--iterations", "8", *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    parse = parse_notebook((tmp_path / spec / f"{spec}_analysis.md").read_text())
    assert len(parse.entries) == 8 and not parse.problems
    assert {entry.status for entry in parse.entries} <= {"converged", "partial", "failed"}
