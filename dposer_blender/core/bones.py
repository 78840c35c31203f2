"""Which bone of a rig is which SMPL joint: names from the SMPL-X add-on, the SMPL add-on / FBX and similar."""

from __future__ import annotations

import re
from typing import Sequence

from ..dposer_core.skeleton import joint_names

#: SMPL joints that must exist for an armature to count as SMPL-like (pelvis..right_wrist).
REQUIRED_JOINTS = 22

_SIDE = {"l": "left", "r": "right"}
_PREFIXES = ("m_avg_", "f_avg_", "smpl_", "smplx_", "smplh_")


def normalize_bone_name(name: str) -> str:
    """Canonical SMPL name for a bone name from the SMPL-X add-on (``left_hip``), the SMPL add-on / FBX
    (``L_Hip``, ``m_avg_L_Hip``) or similar; unknown names are returned lower-cased."""
    n = name.strip().lower()
    for p in _PREFIXES:
        if n.startswith(p):
            n = n[len(p):]
            break
    m = re.match(r"^([lr])[_.]?(.+)$", n)
    if m and m.group(2) in ("hip", "knee", "ankle", "foot", "collar", "shoulder", "elbow", "wrist", "hand"):
        n = f"{_SIDE[m.group(1)]}_{m.group(2)}"
    return n


def find_smpl_bones(bone_names: Sequence[str]) -> list[str | None]:
    """Map the 24 SMPL joints to bone names of a rig (exact name first, then aliases); None where missing."""
    names = list(bone_names)
    exact = set(names)
    canon: dict[str, str] = {}
    for n in names:
        canon.setdefault(normalize_bone_name(n), n)
    return [j if j in exact else canon.get(j) for j in joint_names()]


def missing_joints(bone_names: Sequence[str]) -> list[str]:
    """The required SMPL joints (pelvis..right_wrist) that no bone of ``bone_names`` maps to."""
    mapping = find_smpl_bones(bone_names)
    return [joint_names()[j] for j in range(REQUIRED_JOINTS) if mapping[j] is None]


__all__ = ["REQUIRED_JOINTS", "normalize_bone_name", "find_smpl_bones", "missing_joints"]
