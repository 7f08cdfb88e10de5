"""Entry point: ``python -m trainers.metabolism --config FILE --run-dir DIR``.

Exit 0 after a finished run, diverged or not (analysis.log says which); 2 for a bad
config (one line naming the key); anything else is a crash with a traceback.
"""

import sys

from trainers.common import run_main
from trainers.metabolism.train import run

if __name__ == "__main__":
    sys.exit(
        run_main(run, "Metabolism Phase 1 / Phase 2 trainer (seed 003): writes analysis.log, visual.json and plots.")
    )
