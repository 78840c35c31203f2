"""``python -m backend <task>``: the command line (:mod:`backend.cli`)."""

import sys

from backend.cli import main

sys.exit(main())
