"""Entry point: ``python -m trainers.causal --config FILE --run-dir DIR``."""

import sys

from trainers.causal.train import run
from trainers.common import run_main

sys.exit(run_main(run, "Causal structure learning on a synthetic SEM (writes analysis.log)."))
