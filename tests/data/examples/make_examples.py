"""Writes the small example inputs of the backend command line (``docs/newcomer_notes.md``) from the
shipped CMU walk ``tests/data/cmu_daz_07_01_walk.bvh`` (credit in ``tests/data/CREDIT.md``):

    pose.npz           poses (1,63): one walk frame (for ``complete``, ``variations``, ``score``)
    keys.npz           poses (2,63) + root_orient (2,3): two key frames 24 frames apart (``inbetween``)
    poses.npz          poses (8,63): eight walk frames (``encode``, ``score``)
    noisy_joints.npz   joints (60,22,3) metres: 60 walk frames' joints plus 40 mm Gaussian noise (``denoise``)

Deterministic (fixed frames, fixed noise seed). Run from the repository root:

    .venv/bin/python tests/data/examples/make_examples.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))


def main() -> None:
    import torch

    from backend.cli_io import load_bvh, save_npz
    from backend.engine.kinematics import forward_kinematics

    walk = load_bvh(REPO / "tests" / "data" / "cmu_daz_07_01_walk.bvh")
    p, ro, tr = walk.poses, walk.root_orient, walk.trans
    save_npz(HERE / "pose.npz", poses=p[10:11])
    save_npz(HERE / "keys.npz", poses=p[[10, 34]], root_orient=ro[[10, 34]])
    save_npz(HERE / "poses.npz", poses=p[2:66:8])
    with torch.no_grad():
        j = forward_kinematics(torch.as_tensor(p[2:62]), torch.as_tensor(ro[2:62]), torch.as_tensor(tr[2:62]))[0]
    noisy = j.numpy() + np.random.default_rng(0).normal(0.0, 0.04, j.shape).astype(np.float32)
    save_npz(HERE / "noisy_joints.npz", joints=noisy)
    for f in sorted(HERE.glob("*.npz")):
        with np.load(f) as z:
            print(f.name, {k: z[k].shape for k in z.files}, f"{f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
