"""dposer_core.kinematics_np is pinned to its torch twin backend.engine.kinematics: forward kinematics
(with root_orient and trans, 22 and 24 joints, every batch shape) and Kabsch (a known rotation, a reflection)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.engine import kinematics as kt
from backend.engine.rotations import axis_angle_to_matrix as aa_to_matrix_t
from dposer_core import kinematics_np as kn
from dposer_core.rotations_np import axis_angle_to_matrix


def _t(x: np.ndarray | None) -> torch.Tensor | None:
    return None if x is None else torch.as_tensor(x, dtype=torch.float64)


@pytest.mark.parametrize("num_joints", [22, 24])
@pytest.mark.parametrize("with_root,with_trans", [(False, False), (True, False), (True, True), (False, True)])
def test_forward_kinematics_matches_torch(num_joints: int, with_root: bool, with_trans: bool) -> None:
    rng = np.random.default_rng(num_joints)
    pose = rng.normal(0, 0.4, (5, 63))
    root = rng.normal(0, 1.0, (5, 3)) if with_root else None
    trans = rng.normal(0, 2.0, (5, 3)) if with_trans else None
    got = kn.forward_kinematics(pose, root, trans, num_joints=num_joints)
    want = kt.forward_kinematics(_t(pose), _t(root), _t(trans), num_joints=num_joints)[0].numpy()
    assert got.shape == (5, num_joints, 3)
    np.testing.assert_allclose(got, want, atol=1e-12, rtol=0)


def test_forward_kinematics_shapes() -> None:
    rng = np.random.default_rng(1)
    pose = rng.normal(0, 0.4, (2, 3, 63))
    want = kt.forward_kinematics(_t(pose))[0].numpy()
    np.testing.assert_allclose(kn.forward_kinematics(pose), want, atol=1e-12)
    np.testing.assert_allclose(kn.forward_kinematics(pose.reshape(2, 3, 21, 3)), want, atol=1e-12)
    np.testing.assert_allclose(kn.forward_kinematics(pose[0, 0]), want[0, 0], atol=1e-12)  # one (63,) pose
    with pytest.raises(ValueError):
        kn.forward_kinematics(pose, num_joints=23)


def _rotation(seed: int) -> np.ndarray:
    return axis_angle_to_matrix(np.random.default_rng(seed).normal(0, 1.5, 3))


def test_kabsch_recovers_a_known_rotation() -> None:
    rng = np.random.default_rng(2)
    u = rng.normal(0, 1, (4, 22, 3))
    R = np.stack([_rotation(s) for s in range(4)])
    v = np.einsum("bij,bkj->bki", R, u)  # v_k = R u_k
    np.testing.assert_allclose(kn.kabsch(u, v), R, atol=1e-10)
    np.testing.assert_allclose(kn.kabsch(u, v), kt.kabsch(_t(u), _t(v)).numpy(), atol=1e-10)
    noisy = v + rng.normal(0, 0.01, v.shape)
    np.testing.assert_allclose(kn.kabsch(u, noisy), R, atol=0.02)


def test_kabsch_never_returns_a_reflection() -> None:
    """v is a mirror image of u: the best orthogonal map is a reflection, Kabsch returns the best rotation."""
    rng = np.random.default_rng(3)
    u = rng.normal(0, 1, (30, 3))
    mirror = _rotation(7) @ np.diag([1.0, 1.0, -1.0])
    v = u @ mirror.T
    H = u.T @ v
    U, _, Vt = np.linalg.svd(H)
    assert np.linalg.det(Vt.T @ U.T) < 0  # the unconstrained optimum is a reflection
    R = kn.kabsch(u, v)
    assert np.isclose(np.linalg.det(R), 1.0) and np.allclose(R @ R.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(R, kt.kabsch(_t(u), _t(v)).numpy(), atol=1e-10)
    cost = lambda M: float(np.sum((u @ M.T - v) ** 2))  # noqa: E731
    others = aa_to_matrix_t(torch.as_tensor(np.random.default_rng(4).normal(0, 2, (500, 3)))).numpy()
    assert all(cost(R) <= cost(M) + 1e-9 for M in others)
