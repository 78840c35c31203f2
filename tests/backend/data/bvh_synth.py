"""Helpers to write synthetic BVH files for the data tests (independent of backend.data.bvh)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def elementary(axis: str, deg: np.ndarray) -> np.ndarray:
    """(...,3,3) rotation about one axis, written out by hand (no scipy)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    if axis == "X":
        m = [[o, z, z], [z, c, -s], [z, s, c]]
    elif axis == "Y":
        m = [[c, z, s], [z, o, z], [-s, z, c]]
    else:
        m = [[c, -s, z], [s, c, z], [z, z, o]]
    return np.moveaxis(np.array(m), (0, 1), (-2, -1))


def euler_matrix(order: str, angles_deg: np.ndarray) -> np.ndarray:
    """BVH convention: channels 'Z X Y' -> Rz @ Rx @ Ry. angles (...,len(order)) -> (...,3,3)."""
    R = np.broadcast_to(np.eye(3), angles_deg.shape[:-1] + (3, 3)).copy()
    for k, ax in enumerate(order):
        R = R @ elementary(ax, angles_deg[..., k])
    return R


@dataclass
class SynthJoint:
    name: str
    parent: int
    offset: tuple[float, float, float]
    channels: list[str]
    end_site: tuple[float, float, float] | None = None


@dataclass
class SynthBVH:
    joints: list[SynthJoint]
    frame_time: float
    motion: np.ndarray  # (T, total channels)
    extra: dict = field(default_factory=dict)

    def text(self, newline: str = "\n") -> str:
        children: dict[int, list[int]] = {}
        for j, jt in enumerate(self.joints):
            children.setdefault(jt.parent, []).append(j)
        out = ["HIERARCHY"]

        def emit(j: int, depth: int) -> None:
            jt = self.joints[j]
            ind = "\t" * depth
            out.append(f"{ind}{'ROOT' if jt.parent < 0 else 'JOINT'} {jt.name}")
            out.append(f"{ind}{{")
            out.append(f"{ind}\tOFFSET {jt.offset[0]:.6f} {jt.offset[1]:.6f} {jt.offset[2]:.6f}")
            out.append(f"{ind}\tCHANNELS {len(jt.channels)} {' '.join(jt.channels)}")
            for c in children.get(j, []):
                emit(c, depth + 1)
            if jt.end_site is not None:
                out.append(f"{ind}\tEnd Site")
                out.append(f"{ind}\t{{")
                e = jt.end_site
                out.append(f"{ind}\t\tOFFSET {e[0]:.6f} {e[1]:.6f} {e[2]:.6f}")
                out.append(f"{ind}\t}}")
            out.append(f"{ind}}}")

        emit(0, 0)
        # self.motion columns follow self.joints order; the file wants hierarchy (depth-first) order.
        starts = np.cumsum([0] + [len(jt.channels) for jt in self.joints])
        dfs: list[int] = []

        def visit(j: int) -> None:
            dfs.append(j)
            for c in children.get(j, []):
                visit(c)

        visit(0)
        cols = np.concatenate([np.arange(starts[j], starts[j + 1]) for j in dfs]).astype(int)
        motion = self.motion[:, cols]
        out.append("MOTION")
        out.append(f"Frames:\t{motion.shape[0]}")
        out.append(f"Frame Time:\t{self.frame_time:.8f}")
        for row in motion:
            out.append(" ".join(f"{v:.6f}" for v in row))
        return newline.join(out) + newline

    def write(self, path: Path, newline: str = "\n") -> Path:
        path.write_text(self.text(newline), encoding="utf-8", newline="")
        return path


def random_bvh(rng: np.random.Generator, T: int = 7, six_everywhere: bool = False) -> tuple[SynthBVH, dict]:
    """A small tree with mixed channel layouts and orders. Returns (bvh, truth) where truth has
    per-joint 'rot' (T,3,3) and 'trans' (T,3) in file units."""
    orders = ["ZXY", "ZYX", "XYZ", "YXZ", "XZY", "YZX"]
    spec = [  # name, parent, offset, end site
        ("root", -1, (0.0, 0.0, 0.0), None),
        ("spine", 0, (0.0, 10.0, 0.5), None),
        ("head", 1, (0.0, 8.0, 1.0), (0.0, 5.0, 0.0)),
        ("armL", 1, (6.0, 6.0, 0.0), None),
        ("handL", 3, (12.0, 0.0, 0.0), (4.0, 0.0, 0.0)),
        ("legL", 0, (3.0, -2.0, 0.0), (0.0, -20.0, 1.0)),
        ("legR", 0, (-3.0, -2.0, 0.0), (0.0, -20.0, 1.0)),
    ]
    joints, cols, truth_rot, truth_trans = [], [], [], []
    for j, (name, parent, off, end) in enumerate(spec):
        order = orders[j % len(orders)]
        rot_ch = [f"{a}rotation" for a in order]
        angles = rng.uniform(-170, 170, size=(T, 3))
        R = euler_matrix(order, angles)
        if parent < 0 or six_everywhere or j == 3:
            pos = rng.normal(0, 5, size=(T, 3)) if parent < 0 else np.broadcast_to(np.asarray(off) + 0.5, (T, 3)).copy()
            # position channels in a shuffled order, before or after rotations
            pos_order = ["X", "Y", "Z"] if j % 2 == 0 else ["Z", "X", "Y"]
            pos_ch = [f"{a}position" for a in pos_order]
            pos_cols = [pos[:, "XYZ".index(a)] for a in pos_order]
            if j % 3 == 2:
                chans, data = rot_ch + pos_ch, [angles[:, k] for k in range(3)] + pos_cols
            else:
                chans, data = pos_ch + rot_ch, pos_cols + [angles[:, k] for k in range(3)]
            trans = pos
        else:
            chans, data = rot_ch, [angles[:, k] for k in range(3)]
            trans = np.broadcast_to(np.asarray(off, float), (T, 3)).copy()
        joints.append(SynthJoint(name, parent, off, chans, end))
        cols += data
        truth_rot.append(R)
        truth_trans.append(trans)
    motion = np.stack(cols, axis=1)
    truth = {"rot": np.stack(truth_rot, 1), "trans": np.stack(truth_trans, 1),
             "names": [s[0] for s in spec], "parents": [s[1] for s in spec],
             "ends": {j: s[3] for j, s in enumerate(spec) if s[3] is not None}}
    return SynthBVH(joints, 1 / 60.0, motion), truth
