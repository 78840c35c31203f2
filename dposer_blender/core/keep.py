"""The completion keep mask from a bone selection: selected or rotation-locked body bones stay as they are."""

from __future__ import annotations

from typing import Sequence

from ..dposer_core.constants import NUM_BODY_JOINTS

#: The SMPL joint indices of the 21 body joints (the pose's joints 1..21).
BODY_JOINTS = tuple(range(1, 1 + NUM_BODY_JOINTS))


def kept_joints(selected: Sequence[bool], locked: Sequence[bool]) -> list[int]:
    """SMPL joint indices (1..21) that are kept: per body joint, selected or with X, Y and Z rotation locked
    (``selected`` / ``locked`` hold 21 flags, body joint order)."""
    return [j for j, s, lk in zip(BODY_JOINTS, selected, locked) if s or lk]


def keep_mask(kept: Sequence[int]) -> list[bool]:
    """The request's ``keep``: 21 booleans, body joint order (``dposer_core.keep.parse_keep`` reads them)."""
    return [j in kept for j in BODY_JOINTS]


def free_joints(kept: Sequence[int]) -> list[int]:
    """The body joints (1..21) Complete fills in."""
    return [j for j in BODY_JOINTS if j not in kept]


__all__ = ["BODY_JOINTS", "kept_joints", "keep_mask", "free_joints"]
