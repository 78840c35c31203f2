"""Locate the backend next to the extension and load ``backend/protocol/schema.py`` by path.

Two layouts are supported:

* git checkout:        ``<repo>/dposer_blender/client/`` and ``<repo>/backend/``
* packaged extension:  ``<ext>/client/`` and ``<ext>/backend/`` (``backend`` copied inside the
  extension folder by ``scripts/build_extension.py``)

The schema is loaded from its file as a private submodule of this package (``<package>._protocol_schema``:
extensions may only add modules under their own package), so neither ``backend`` nor torch is imported
into Blender, and no generic name is put on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

_MODULE_NAME = f"{__package__}._protocol_schema"
_lock = threading.Lock()

HERE = Path(__file__).resolve().parent


def backend_root() -> Path:
    """The folder that *contains* ``backend/`` (goes on the server's ``PYTHONPATH``).

    Raises ``FileNotFoundError`` naming both places looked at.
    """
    candidates = [HERE.parent, HERE.parent.parent]  # packaged first, then the checkout
    for root in candidates:
        if (root / "backend" / "protocol" / "schema.py").is_file() and (root / "backend" / "server.py").is_file():
            return root
    raise FileNotFoundError("the DPoser backend was not found next to the extension (looked for "
                            + " and ".join(str(c / "backend") for c in candidates)
                            + "); reinstall the extension zip")


def repo_root() -> Path | None:
    """The git checkout root when the extension runs from one (``<repo>/dposer_blender``), else None."""
    root = HERE.parent.parent
    if (root / "backend" / "server.py").is_file() and ((root / ".git").exists() or (root / "pyproject.toml").is_file()):
        return root
    return None


def load_schema() -> ModuleType:
    """The protocol schema module (loaded once, from the backend found by :func:`backend_root`)."""
    mod = sys.modules.get(_MODULE_NAME)
    if mod is not None:
        return mod
    with _lock:
        mod = sys.modules.get(_MODULE_NAME)
        if mod is not None:
            return mod
        path = backend_root() / "backend" / "protocol" / "schema.py"
        spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load the protocol schema from {path}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE_NAME] = mod  # dataclasses look their module up while the class is built
        old_flag, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no .pyc in the extension folder
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            sys.modules.pop(_MODULE_NAME, None)
            raise
        finally:
            sys.dont_write_bytecode = old_flag
        return mod
