"""The completion keep mask: which of the 21 body joints stay exactly as they are (one parser for every layer)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .constants import BODY_MASKS, NUM_BODY_JOINTS
from .errors import BadInput, clip
from .skeleton import body_joint_names


def keep_from_mask(mask: str) -> np.ndarray:
    """(21,) bool keep mask for an occlusion mask name (the masked joints are hidden)."""
    if mask not in BODY_MASKS:
        raise BadInput(f"unknown mask {clip(mask)}; known masks: {', '.join(sorted(BODY_MASKS))}")
    keep = np.ones(NUM_BODY_JOINTS, bool)
    keep[list(BODY_MASKS[mask])] = False
    return keep


def parse_keep(keep: Any) -> np.ndarray:
    """A keep specification -> (21,) bool.

    Accepts 21 booleans (one per body joint, SMPL joints 1..21), a sequence of joint names
    (``body_joint_names()``, e.g. "left_knee") or of indices 0..20 into the body joints, or a
    comma-separated string of names. Raises :class:`BadInput` naming the problem.
    """
    names = body_joint_names()
    if isinstance(keep, str):
        keep = [s.strip() for s in keep.split(",") if s.strip()]
    if isinstance(keep, np.ndarray):
        a = keep
    elif hasattr(keep, "__array__"):
        a = np.asarray(keep, dtype=object)
    elif isinstance(keep, (list, tuple, range)):
        a = np.asarray(list(keep), dtype=object)
    else:
        raise BadInput(f"keep must be 21 booleans or a list of joint names or indices, got {clip(keep, 60)}")
    if a.dtype == bool or (a.size and all(isinstance(x, (bool, np.bool_)) for x in a.reshape(-1))):
        if a.shape != (NUM_BODY_JOINTS,):
            raise BadInput(f"keep as booleans must have {NUM_BODY_JOINTS} entries (one per body joint), "
                           f"got shape {a.shape}")
        return a.astype(bool)
    if a.size == 0:
        raise BadInput("keep must not be empty (keep at least one joint)")
    out = np.zeros(NUM_BODY_JOINTS, bool)
    for item in list(a.reshape(-1)):
        if isinstance(item, (str, np.str_)):
            if item not in names:
                raise BadInput(f"unknown joint name {clip(item, 60)}; known joints: {', '.join(names)}")
            out[names.index(item)] = True
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            if not 0 <= int(item) < NUM_BODY_JOINTS:
                raise BadInput(f"joint index {int(item)} out of range 0..{NUM_BODY_JOINTS - 1}")
            out[int(item)] = True
        else:
            raise BadInput(f"keep entries must be joint names or indices, got {clip(item, 60)}")
    return out
