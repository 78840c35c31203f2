"""Skeleton families: the data that maps one kind of BVH rig onto SMPL (``families/*.json``).

A family names its world axes (``up_axis`` / ``forward_axis``), units, the source joint driving each
SMPL joint, its reference pose and calibrations; ``backend/data/README.md`` describes the fields.
Adding a family is adding a JSON file. Numpy only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Family", "FAMILIES_DIR", "AXES", "family_axis_change", "load_families", "get_family", "detect_family"]

FAMILIES_DIR = Path(__file__).resolve().parent / "families"

AXES = {"+X": (1, 0, 0), "-X": (-1, 0, 0), "+Y": (0, 1, 0), "-Y": (0, -1, 0), "+Z": (0, 0, 1), "-Z": (0, 0, -1)}
"""Axis names used in the family files."""


@dataclass(frozen=True)
class Family:
    """A skeleton family loaded from ``families/<name>.json``."""

    name: str
    spec: dict[str, Any]

    @property
    def units_to_m(self) -> float:
        return float(self.spec.get("units_to_m", 1.0))

    @property
    def drop_first_frame(self) -> bool:
        return bool(self.spec.get("drop_first_frame", False))

    def axis_change(self) -> np.ndarray:
        """(3,3) C with ``v_smpl = C @ v_src`` (from ``up_axis`` / ``forward_axis`` of the world)."""
        return family_axis_change(self.spec)

    def detect_score(self, names: list[str] | tuple[str, ...]) -> float:
        """Fraction of the family's signature joints present in ``names`` (best signature set)."""
        det = self.spec.get("detect", {})
        sets = det.get("any_of_sets") or [det.get("all_of", [])]
        have = set(names)
        best = 0.0
        for s in sets:
            if s:
                best = max(best, sum(n in have for n in s) / len(s))
        return best


def family_axis_change(spec: dict[str, Any]) -> np.ndarray:
    """(3,3) C with ``v_smpl = C @ v_src`` from a family spec's world ``up_axis`` / ``forward_axis``."""
    up = np.asarray(AXES[spec.get("up_axis", "+Y")], dtype=np.float64)
    fwd = np.asarray(AXES[spec.get("forward_axis", "+Z")], dtype=np.float64)
    left = np.cross(up, fwd)  # SMPL: X = Y x Z
    return np.stack([left, up, fwd])  # rows


@lru_cache(maxsize=8)
def _load_families_cached(directory: str) -> tuple[Family, ...]:
    fams = []
    for p in sorted(Path(directory).glob("*.json")):
        with open(p, encoding="utf-8") as f:
            spec = json.load(f)
        fams.append(Family(spec.get("name", p.stem), spec))
    return tuple(fams)


def load_families(directory: str | os.PathLike | None = None) -> dict[str, Family]:
    """All families in ``directory`` (default ``backend/data/families``), by name."""
    return {f.name: f for f in _load_families_cached(str(directory or FAMILIES_DIR))}


def get_family(name: str) -> Family:
    fams = load_families()
    if name not in fams:
        raise KeyError(f"unknown skeleton family {name!r}; known: {', '.join(sorted(fams))}")
    return fams[name]


def detect_family(names: list[str] | tuple[str, ...]) -> Family:
    """The family whose signature joints best match ``names``; ``ValueError`` if none fits."""
    best, score = None, 0.0
    for fam in load_families().values():
        s = fam.detect_score(names)
        if s > score:
            best, score = fam, s
    if best is None or score < float(best.spec.get("detect", {}).get("min_score", 0.9)):
        raise ValueError(f"no skeleton family matches this BVH (best score {score:.2f}); joints: "
                         f"{', '.join(names[:12])}...; add a JSON file to {FAMILIES_DIR}")
    return best
