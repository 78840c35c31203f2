"""The names and numbers both sides of the process boundary agree on (one copy of each list).

Frame: SMPL native, metres, +Y up, body facing +Z, +X is the subject's left.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

NUM_JOINTS = 24
"""SMPL joints (and SMPL armature bones)."""
NUM_BODY_JOINTS = 21
"""The DPoser variable: SMPL joints 1..21 (pelvis, hands excluded)."""
POSE_DIM = NUM_BODY_JOINTS * 3
"""63 numbers: 21 parent-relative axis-angle rotations."""

SAMPLERS = ("ddim", "em", "ode")
"""Samplers: DDIM(eta) few-step (eta = 1 by default: stochastic), Euler-Maruyama on the reverse SDE,
the probability-flow ODE (deterministic)."""
EASES = ("linear", "ease_in_out", "ease_in", "ease_out")
"""Timing curves of an in-between (see :mod:`dposer_core.curves`)."""
DEVICES = ("auto", "cpu", "cuda", "mps")
"""Where the backend runs; auto = cuda > mps > cpu."""
COMPLETE_METHODS = ("dposer", "inpaint")
"""Pose completion: the paper's DPoser optimisation (Alg. 1) or DDIM inpainting (the default)."""
COMPLETE_METHOD = "inpaint"

# Masks over the 21 body joints (0-based into joints 1..21), as in the official DPoser code.
BODY_MASKS: dict[str, tuple[int, ...]] = {
    "left_leg": (0, 3, 6, 9),
    "right_leg": (1, 4, 7, 10),
    "left_arm": (12, 15, 17, 19),
    "right_arm": (13, 16, 18, 20),
    "trunk": (2, 5, 8, 15, 16),
}
BODY_MASKS["legs"] = tuple(sorted(BODY_MASKS["left_leg"] + BODY_MASKS["right_leg"]))
BODY_MASKS["arms"] = tuple(sorted(BODY_MASKS["left_arm"] + BODY_MASKS["right_arm"]))
MASK_NAMES = ("left_leg", "right_leg", "legs", "left_arm", "right_arm", "arms", "trunk")

WEIGHTS_NAME = "dposer_cmu_bandai.pt"
"""The shipped checkpoint, ``weights/<WEIGHTS_NAME>`` next to ``backend/`` (checkout and extension)."""
LOG_NAME = "server.log"


def user_cache_dir() -> Path:
    """``<user cache dir>/dposer`` (XDG on Linux, Library/Caches on macOS, LOCALAPPDATA on Windows)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dposer"


def default_log_path() -> Path:
    """The backend server's log when nobody names one: ``<user cache dir>/dposer/server.log``."""
    return user_cache_dir() / LOG_NAME


def shipped_weights(root: str | os.PathLike) -> Path:
    """The shipped checkpoint under ``root`` (the folder holding ``backend/`` and ``weights/``)."""
    return Path(root) / "weights" / WEIGHTS_NAME
