"""The built-in SMPL body skeleton (24 joints), loaded from ``backend/assets/smpl_skeleton.json``.

Frame: SMPL native, metres, +Y up, body facing +Z, +X is the subject's left.
The DPoser body pose is joints 1..21 (21x3 parent-relative axis-angle = 63 numbers).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SKELETON_PATH = Path(__file__).resolve().parent.parent / "assets" / "smpl_skeleton.json"

NUM_JOINTS = 24
NUM_BODY_JOINTS = 21  # joints 1..21, the DPoser variable
POSE_DIM = NUM_BODY_JOINTS * 3  # 63

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


@dataclass(frozen=True)
class Skeleton:
    """A kinematic tree.

    Attributes:
        names: joint names, length J.
        parents: parent index per joint (-1 for the root), length J; parents[j] < j.
        rest_joints: (J, 3) rest-pose joint positions in metres.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    rest_joints: np.ndarray

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of the joint called ``name``; raises ``KeyError`` naming the known joints."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown joint {name!r}; known joints: {', '.join(self.names)}") from None

    def offsets(self) -> np.ndarray:
        """(J, 3) rest offset of each joint from its parent (the root keeps its position)."""
        off = self.rest_joints.copy()
        for j, p in enumerate(self.parents):
            if p >= 0:
                off[j] = self.rest_joints[j] - self.rest_joints[p]
        return off

    def to_dict(self) -> dict:
        return {"names": list(self.names), "parents": list(self.parents),
                "rest_joints_m": self.rest_joints.tolist()}

    @staticmethod
    def from_dict(d: dict) -> "Skeleton":
        rest = np.asarray(d["rest_joints_m"], dtype=np.float64)
        names, parents = tuple(d["names"]), tuple(int(p) for p in d["parents"])
        if rest.shape != (len(names), 3) or len(parents) != len(names):
            raise ValueError(f"skeleton arrays disagree: {len(names)} names, {len(parents)} parents, "
                             f"rest joints {rest.shape}")
        if any(p >= j for j, p in enumerate(parents)):
            raise ValueError("skeleton parents must precede their children")
        return Skeleton(names, parents, rest)


@functools.lru_cache(maxsize=1)
def smpl_skeleton() -> Skeleton:
    """The built-in gender-neutral SMPL skeleton (24 joints)."""
    with open(SKELETON_PATH, encoding="utf-8") as f:
        return Skeleton.from_dict(json.load(f))


def body_joint_names() -> tuple[str, ...]:
    """Names of the 21 body joints (SMPL joints 1..21) in pose order."""
    return smpl_skeleton().names[1:22]
