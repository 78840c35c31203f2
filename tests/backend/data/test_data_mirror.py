"""Mirror augmentation: FK of a mirrored pose is the mirror image of FK of the pose."""

from __future__ import annotations

import numpy as np
import torch

from backend.data.mirror import (body_mirror_permutation, joint_mirror_permutation, mirror_points, mirror_poses,
                                 mirror_root_orient)
from backend.engine.kinematics import forward_kinematics
from dposer_core.skeleton import Skeleton, body_joint_names, smpl_skeleton


def _symmetric_skeleton() -> Skeleton:
    sk = smpl_skeleton()
    r = sk.rest_joints.copy()
    perm = joint_mirror_permutation(sk.num_joints)
    mir = r[perm] * np.array([-1.0, 1.0, 1.0])
    return Skeleton(sk.names, sk.parents, 0.5 * (r + mir))


def _fk(poses: np.ndarray, ro: np.ndarray, skeleton: Skeleton | None) -> np.ndarray:
    j, _ = forward_kinematics(torch.as_tensor(poses, dtype=torch.float64), torch.as_tensor(ro, dtype=torch.float64),
                              skeleton=skeleton)
    return j.numpy()


def test_permutation_swaps_twins_and_is_an_involution() -> None:
    names = body_joint_names()
    perm = body_mirror_permutation()
    assert names[perm[names.index("left_elbow")]] == "right_elbow"
    assert names[perm[names.index("spine2")]] == "spine2"
    np.testing.assert_array_equal(perm[perm], np.arange(21))
    p = np.random.default_rng(0).normal(0, 0.5, (7, 63)).astype(np.float32)
    np.testing.assert_array_equal(mirror_poses(mirror_poses(p)), p)


def test_fk_of_mirrored_pose_is_the_mirror_image() -> None:
    rng = np.random.default_rng(1)
    poses = rng.normal(0, 0.5, (16, 63))
    ro = rng.normal(0, 0.7, (16, 3))
    sym = _symmetric_skeleton()
    a = _fk(poses, ro, sym)
    b = _fk(mirror_poses(poses), mirror_root_orient(ro), sym)
    np.testing.assert_allclose(mirror_points(a), b, atol=1e-9)
    # the real SMPL rest skeleton is symmetric to ~1 cm, so the mirror image holds to a few cm
    a = _fk(poses, ro, None)
    b = _fk(mirror_poses(poses), mirror_root_orient(ro), None)
    assert np.abs(mirror_points(a[..., :22, :]) - b[..., :22, :]).max() < 0.03
    # and is not the identity: a lifted left arm becomes a lifted right arm
    p = np.zeros(63)
    p[3 * body_joint_names().index("left_shoulder") + 2] = 1.2
    j = _fk(mirror_poses(p[None]), np.zeros((1, 3)), sym)[0]
    lw, rw = smpl_skeleton().index("left_wrist"), smpl_skeleton().index("right_wrist")
    j0 = _fk(p[None], np.zeros((1, 3)), sym)[0]
    assert j0[lw, 1] > j0[rw, 1] + 0.2 and j[rw, 1] > j[lw, 1] + 0.2
