"""The built-in SMPL skeleton, read from the JSON shipped with the backend sources (no bpy, no torch).

The file is ``backend/assets/smpl_skeleton.json``. In the installed extension the backend sources sit
inside the extension folder (``<extension>/backend``); in a source checkout they sit next to the
``dposer_blender`` package (``<repo>/backend``). Both locations are searched.

Frame: SMPL native, metres, +Y up, body facing +Z, +X is the subject's left.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_REL_PATH = Path("backend") / "assets" / "smpl_skeleton.json"

#: Number of SMPL joints / bones.
NUM_JOINTS = 24
#: The DPoser body pose covers SMPL joints 1..21.
NUM_BODY_JOINTS = 21


def skeleton_json_candidates() -> list[Path]:
    """Paths searched for ``smpl_skeleton.json``, in order."""
    here = Path(__file__).resolve().parent
    return [here / _REL_PATH, here.parent / _REL_PATH]


def skeleton_json_path() -> Path:
    """The first existing ``smpl_skeleton.json``; raises ``FileNotFoundError`` listing the candidates."""
    for p in skeleton_json_candidates():
        if p.is_file():
            return p
    raise FileNotFoundError("smpl_skeleton.json not found; looked in: "
                            + ", ".join(str(p) for p in skeleton_json_candidates()))


@dataclass(frozen=True)
class SkeletonData:
    """The SMPL kinematic tree.

    Attributes:
        names: 24 joint names in SMPL order (the SMPL-X add-on bone names).
        parents: parent index per joint (-1 for the pelvis).
        rest_joints: (24, 3) float64 rest joint positions, SMPL native frame, metres.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    rest_joints: np.ndarray

    @property
    def num_joints(self) -> int:
        """Number of joints (24)."""
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of joint ``name``; ``KeyError`` if unknown."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown SMPL joint {name!r}") from None

    def children(self, j: int) -> list[int]:
        """Indices of the children of joint ``j``."""
        return [c for c, p in enumerate(self.parents) if p == j]


@functools.lru_cache(maxsize=1)
def load_skeleton() -> SkeletonData:
    """The built-in gender-neutral SMPL skeleton (cached)."""
    with open(skeleton_json_path(), encoding="utf-8") as f:
        d = json.load(f)
    rest = np.asarray(d["rest_joints_m"], dtype=np.float64)
    names = tuple(str(n) for n in d["names"])
    parents = tuple(int(p) for p in d["parents"])
    if rest.shape != (len(names), 3) or len(parents) != len(names):
        raise ValueError(f"malformed skeleton json: {len(names)} names, {len(parents)} parents, rest {rest.shape}")
    return SkeletonData(names, parents, rest)


def smpl_bone_names() -> tuple[str, ...]:
    """The 24 SMPL bone names in SMPL joint order."""
    return load_skeleton().names


def body_bone_names() -> tuple[str, ...]:
    """The 21 bones of the DPoser body pose (SMPL joints 1..21)."""
    return load_skeleton().names[1:1 + NUM_BODY_JOINTS]
