"""Entry point: ``python -m trainers.gflownet --config FILE --run-dir DIR``."""

import sys

from trainers.common import run_main
from trainers.gflownet.train import run

sys.exit(run_main(run, "GFlowNet with Trajectory Balance on short peptides (writes analysis.log)."))
