"""Locate the backend sources next to the extension.

Two layouts are supported:

* git checkout:        ``<repo>/dposer_blender/client/`` and ``<repo>/backend/``
* packaged extension:  ``<ext>/client/`` and ``<ext>/backend/`` (``backend`` and ``dposer_core`` copied
  inside the extension folder by ``scripts/build_extension.py``)

The folder found goes on the server's ``PYTHONPATH``; nothing from it is imported into Blender.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def _has_backend(root: Path) -> bool:
    return (root / "backend" / "__init__.py").is_file() and (root / "dposer_core" / "__init__.py").is_file()


def backend_root() -> Path:
    """The folder that *contains* ``backend/`` and ``dposer_core/`` (goes on the server's ``PYTHONPATH``).

    Raises ``FileNotFoundError`` naming both places looked at.
    """
    candidates = [HERE.parent, HERE.parent.parent]  # packaged first, then the checkout
    for root in candidates:
        if _has_backend(root):
            return root
    raise FileNotFoundError("the DPoser backend was not found next to the extension (looked for "
                            + " and ".join(str(c / "backend") for c in candidates)
                            + "); reinstall the extension zip")


def repo_root() -> Path | None:
    """The git checkout root when the extension runs from one (``<repo>/dposer_blender``), else None."""
    root = HERE.parent.parent
    if _has_backend(root) and ((root / ".git").exists() or (root / "pyproject.toml").is_file()):
        return root
    return None
