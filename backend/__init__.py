"""DPoser backend: the PyTorch pose-prior engine, its tasks, server, CLI, evaluation and training.

Importing ``backend`` itself is cheap and torch-free.
"""

from pathlib import Path

from dposer_core.constants import shipped_weights

__version__ = "0.1.0"

ROOT = Path(__file__).resolve().parent.parent
"""The folder holding ``backend/``, ``dposer_core/`` and ``weights/`` (a checkout or the installed extension)."""
DEFAULT_WEIGHTS = shipped_weights(ROOT)
"""The shipped checkpoint, used when no ``--weights`` is given."""
