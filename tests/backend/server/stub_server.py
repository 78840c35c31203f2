"""Test-only launcher: ``python stub_server.py [server options]`` runs ``backend.server`` on the stub tasks
(``stub_tasks.py``: fault injection, controllable step time) instead of ``backend.tasks``."""

import sys

import stub_tasks

from backend.server import main

sys.exit(main(sys.argv[1:], tasks=stub_tasks, load_prior=stub_tasks.load_prior))
