"""Entry point: ``python -m trainers.metabolism --config FILE --run-dir DIR``.

Exit 0 after a finished run, diverged or not (analysis.log says which); 2 for a bad
config (one line naming the key); anything else is a crash with a traceback.
"""

from __future__ import annotations

import argparse
import sys

from memory.errors import UcbxError
from trainers.metabolism.train import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainers.metabolism",
                                     description="Metabolism Phase 1 / Phase 2 trainer (seed 003).")
    parser.add_argument("--config", required=True, help="trainer config YAML (simulation, graph_model, training)")
    parser.add_argument("--run-dir", required=True, help="folder for analysis.log, visual.json and plots")
    arguments = parser.parse_args(argv)
    try:
        run(arguments.config, arguments.run_dir)
    except UcbxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
