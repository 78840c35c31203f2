"""The built-in SMPL body skeleton (24 joints), read from ``smpl_skeleton.json`` beside this module.

Frame: SMPL native, metres, +Y up, body facing +Z, +X is the subject's left.
The DPoser body pose is joints 1..21 (21x3 parent-relative axis-angle = 63 numbers).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from .constants import NUM_BODY_JOINTS


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

    def children(self, j: int) -> list[int]:
        """Indices of the children of joint ``j``."""
        return [c for c, p in enumerate(self.parents) if p == j]

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
    text = resources.files(__package__).joinpath("smpl_skeleton.json").read_text(encoding="utf-8")
    return Skeleton.from_dict(json.loads(text))


def joint_names() -> tuple[str, ...]:
    """The 24 SMPL joint (and armature bone) names in SMPL order."""
    return smpl_skeleton().names


def body_joint_names() -> tuple[str, ...]:
    """Names of the 21 body joints (SMPL joints 1..21) in pose order."""
    return smpl_skeleton().names[1:1 + NUM_BODY_JOINTS]
