"""Left/right mirror of SMPL body poses (numpy): the augmentation of issue 11.

The mirror plane is the body's sagittal plane x = 0 (SMPL native frame: +X is the subject's left).
Reflecting a rotation R by M = diag(-1, 1, 1) gives M R M, whose axis-angle is (x, -y, -z) of R's;
mirroring a body pose therefore swaps every left joint with its right twin and negates the y and z
components of every joint's axis-angle. FK of the mirrored pose is the mirror image of FK of the pose
(exactly for a left/right-symmetric skeleton; SMPL's rest skeleton is symmetric to a few mm).
"""

from __future__ import annotations

import numpy as np

from dposer_core.skeleton import body_joint_names, smpl_skeleton

__all__ = ["MIRROR_SIGN", "body_mirror_permutation", "joint_mirror_permutation", "mirror_poses",
           "mirror_root_orient", "mirror_points"]

MIRROR_SIGN = np.array([1.0, -1.0, -1.0], dtype=np.float32)


def _twin(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


def body_mirror_permutation() -> np.ndarray:
    """(21,) index of each body joint's left/right twin (itself for the spine, neck and head)."""
    names = list(body_joint_names())
    return np.array([names.index(_twin(n)) for n in names], dtype=np.int64)


def joint_mirror_permutation(num_joints: int = 22) -> np.ndarray:
    """(num_joints,) twin index of each SMPL joint (pelvis first)."""
    names = list(smpl_skeleton().names[:num_joints])
    return np.array([names.index(_twin(n)) for n in names], dtype=np.int64)


def mirror_poses(poses: np.ndarray) -> np.ndarray:
    """(...,63) body poses -> their mirror images (same dtype)."""
    p = np.asarray(poses)
    aa = p.reshape(p.shape[:-1] + (21, 3))[..., body_mirror_permutation(), :] * MIRROR_SIGN.astype(p.dtype)
    return aa.reshape(p.shape)


def mirror_root_orient(root_orient: np.ndarray) -> np.ndarray:
    """(...,3) global orientation (axis-angle) -> mirrored."""
    r = np.asarray(root_orient)
    return r * MIRROR_SIGN.astype(r.dtype)


def mirror_points(points: np.ndarray) -> np.ndarray:
    """(...,J,3) joint positions (J = 22 or 24, SMPL order) -> mirror image (x negated, twins swapped)."""
    x = np.asarray(points)
    out = x[..., joint_mirror_permutation(x.shape[-2]), :].copy()
    out[..., 0] *= -1
    return out
