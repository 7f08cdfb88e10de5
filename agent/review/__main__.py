"""``python -m agent.review COMMAND ...``: the review commands before (or without) ``ucbx``."""

import sys

from agent.review.commands import main

sys.exit(main())
