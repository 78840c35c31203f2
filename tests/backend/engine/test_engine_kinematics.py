"""Tests for backend.engine.kinematics and dposer_core.skeleton."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.engine.kinematics import body_joints, forward_kinematics
from backend.engine.rotations import axis_angle_to_matrix
from dposer_core.constants import BODY_MASKS, POSE_DIM
from dposer_core.skeleton import Skeleton, body_joint_names, smpl_skeleton


def test_skeleton_basics() -> None:
    s = smpl_skeleton()
    assert s.num_joints == 24 and POSE_DIM == 63 and len(body_joint_names()) == 21
    assert s.rest_joints.shape == (24, 3)
    assert all(p < j for j, p in enumerate(s.parents)) and s.parents[0] == -1
    assert s.index("left_knee") == 4
    with pytest.raises(KeyError, match="unknown joint"):
        s.index("tail")
    assert Skeleton.from_dict(s.to_dict()).names == s.names
    assert np.allclose(Skeleton.from_dict(s.to_dict()).rest_joints, s.rest_joints)
    # +X is the subject's left, +Y up
    assert s.rest_joints[s.index("left_hip"), 0] > 0 > s.rest_joints[s.index("right_hip"), 0]
    assert s.rest_joints[s.index("head"), 1] > s.rest_joints[s.index("pelvis"), 1]
    assert all(0 <= i < 21 for m in BODY_MASKS.values() for i in m)
    bad = s.to_dict()
    bad["parents"] = [0] + bad["parents"][1:]
    with pytest.raises(ValueError):
        Skeleton.from_dict(bad)


def test_zero_pose_gives_rest_joints() -> None:
    s = smpl_skeleton()
    j, r = forward_kinematics(torch.zeros(63, dtype=torch.float64), num_joints=24)
    assert np.allclose(j.numpy(), s.rest_joints)
    assert torch.allclose(r, torch.eye(3, dtype=torch.float64).expand(24, 3, 3))


def test_shapes_and_layouts() -> None:
    pose = torch.randn(2, 5, 63, dtype=torch.float64) * 0.5
    j1, r1 = forward_kinematics(pose)
    j2, _ = forward_kinematics(pose.reshape(2, 5, 21, 3))
    assert j1.shape == (2, 5, 22, 3) and r1.shape == (2, 5, 22, 3, 3)
    assert torch.allclose(j1, j2)
    assert torch.allclose(body_joints(pose), j1)
    j24, _ = forward_kinematics(pose, num_joints=24)
    assert torch.allclose(j24[..., :22, :], j1)
    with pytest.raises(ValueError):
        forward_kinematics(torch.zeros(60))
    with pytest.raises(ValueError):
        forward_kinematics(torch.zeros(63), num_joints=23)


def test_root_orient_and_trans() -> None:
    g = torch.Generator().manual_seed(0)
    pose = torch.randn(4, 63, generator=g, dtype=torch.float64) * 0.4
    ro = torch.randn(4, 3, generator=g, dtype=torch.float64)
    tr = torch.randn(4, 3, generator=g, dtype=torch.float64)
    j0, r0 = forward_kinematics(pose)
    j, r = forward_kinematics(pose, ro, tr)
    Rr = axis_angle_to_matrix(ro)
    root = j0[:, :1]
    expect = root + ((j0 - root) @ Rr.transpose(-1, -2)) + tr[:, None]
    assert torch.allclose(j, expect, atol=1e-12)
    assert torch.allclose(r, Rr[:, None] @ r0, atol=1e-12)


def test_bone_lengths_preserved_and_local_rotation_chain() -> None:
    s = smpl_skeleton()
    pose = torch.randn(8, 63, dtype=torch.float64)
    j, r = forward_kinematics(pose, torch.randn(8, 3, dtype=torch.float64), num_joints=24)
    off = torch.as_tensor(s.offsets())
    for c in range(1, 24):
        p = s.parents[c]
        assert torch.allclose((j[:, c] - j[:, p]).norm(dim=-1), off[c].norm().expand(8), atol=1e-12)
        if c <= 21:  # local rotation = parent^T child
            loc = r[:, p].transpose(-1, -2) @ r[:, c]
            assert torch.allclose(loc, axis_angle_to_matrix(pose[:, 3 * (c - 1): 3 * c]), atol=1e-10)


def test_rest_joints_override_and_gradients() -> None:
    s = smpl_skeleton()
    rest = torch.as_tensor(s.rest_joints) * 2.0
    j, _ = forward_kinematics(torch.zeros(63, dtype=torch.float64), rest_joints=rest, num_joints=24)
    assert torch.allclose(j, rest)
    pose = torch.zeros(3, 63, dtype=torch.float64, requires_grad=True)
    forward_kinematics(pose)[0].square().sum().backward()
    assert torch.isfinite(pose.grad).all()
