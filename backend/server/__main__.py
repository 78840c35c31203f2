"""``python -m backend.server``: the JSON-lines subprocess server."""

import sys

from backend.server.launch import main

sys.exit(main())
