"""Fixtures for the tests of the checkout's ``tools/`` (run with a bpy wheel's Python, like tests/blender).

Blender's user folders go to a temp dir (set before ``bpy`` is imported); every test starts from factory
settings with an empty scene.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="dposer_bpy_user_"))

import bpy  # noqa: E402  (after BLENDER_USER_RESOURCES)


@pytest.fixture(autouse=True)
def factory_scene() -> None:
    """Factory settings, empty scene, frame 1 (per test)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.frame_set(1)
