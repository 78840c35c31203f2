"""Tests for backend.engine.rotations: round trips, agreement with scipy, gradients at zero."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from backend.engine import rotations as R

torch.set_default_dtype(torch.float32)


def _rand_aa(n: int, seed: int = 0, max_angle: float = 3.1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1)
    angle = torch.rand(n, 1, generator=g, dtype=torch.float64) * max_angle
    return axis * angle


def test_axis_angle_matrix_matches_scipy() -> None:
    aa = _rand_aa(200)
    ref = Rotation.from_rotvec(aa.numpy()).as_matrix()
    np.testing.assert_allclose(R.axis_angle_to_matrix(aa).numpy(), ref, atol=1e-12)


def test_quat_matches_scipy_scalar_first() -> None:
    aa = _rand_aa(200, 1)
    q = R.axis_angle_to_quat(aa).numpy()
    ref = Rotation.from_rotvec(aa.numpy()).as_quat()  # (x, y, z, w)
    ref = np.concatenate([ref[:, 3:], ref[:, :3]], 1)
    ref *= np.sign(ref[:, :1])
    np.testing.assert_allclose(q * np.sign(q[:, :1]), ref, atol=1e-12)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 2e-4)])
def test_round_trips(dtype: torch.dtype, tol: float) -> None:
    aa = _rand_aa(500, 2).to(dtype)
    aa = torch.cat([aa, torch.zeros(1, 3, dtype=dtype), torch.full((1, 3), 1e-9, dtype=dtype)])
    assert torch.allclose(R.quat_to_axis_angle(R.axis_angle_to_quat(aa)), aa, atol=tol)
    assert torch.allclose(R.matrix_to_axis_angle(R.axis_angle_to_matrix(aa)), aa, atol=tol)
    assert torch.allclose(R.rot6d_to_axis_angle(R.axis_angle_to_rot6d(aa)), aa, atol=tol)
    m = R.axis_angle_to_matrix(aa)
    assert torch.allclose(R.quat_to_matrix(R.matrix_to_quat(m)), m, atol=tol)
    assert torch.allclose(R.rot6d_to_matrix(R.matrix_to_rot6d(m)), m, atol=tol)


def test_matrix_to_quat_all_branches() -> None:
    # rotations by ~pi about each axis exercise the non-trace branches
    aa = torch.tensor([[3.1, 0, 0], [0, 3.1, 0], [0, 0, 3.1], [2.0, 2.0, 0.5], [0.1, 0.2, 0.3]], dtype=torch.float64)
    m = R.axis_angle_to_matrix(aa)
    q = R.matrix_to_quat(m)
    assert (q[:, 0] >= 0).all()
    assert torch.allclose(R.quat_to_matrix(q), m, atol=1e-12)


def test_quat_multiply_composes_like_matrices() -> None:
    a, b = _rand_aa(50, 3), _rand_aa(50, 4)
    qa, qb = R.axis_angle_to_quat(a), R.axis_angle_to_quat(b)
    m = R.axis_angle_to_matrix(a) @ R.axis_angle_to_matrix(b)
    assert torch.allclose(R.quat_to_matrix(R.quat_multiply(qa, qb)), m, atol=1e-12)


def test_slerp_endpoints_and_midpoint() -> None:
    a = R.axis_angle_to_quat(torch.zeros(3, dtype=torch.float64))
    b = R.axis_angle_to_quat(torch.tensor([0.0, 1.2, 0.0], dtype=torch.float64))
    assert torch.allclose(R.quat_slerp(a, b, 0.0), a)
    assert torch.allclose(R.quat_slerp(a, b, 1.0), b)
    mid = R.quat_to_axis_angle(R.quat_slerp(a, b, 0.5))
    assert torch.allclose(mid, torch.tensor([0.0, 0.6, 0.0], dtype=torch.float64), atol=1e-12)
    # shortest arc: -b is the same rotation
    assert torch.allclose(R.quat_to_axis_angle(R.quat_slerp(a, -b, 0.5)), mid, atol=1e-12)
    # near-identical quaternions take the linear branch without NaN
    assert torch.isfinite(R.quat_slerp(a, a, 0.3)).all()
    # batched t
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    out = R.quat_slerp(a.expand(3, 4), b.expand(3, 4), t)
    assert out.shape == (3, 4) and torch.allclose(out[2], b)


@pytest.mark.parametrize("fn", [R.axis_angle_to_matrix, R.axis_angle_to_quat, R.axis_angle_to_rot6d,
                                lambda x: R.quat_to_axis_angle(R.axis_angle_to_quat(x)),
                                lambda x: R.matrix_to_axis_angle(R.axis_angle_to_matrix(x))])
def test_finite_gradients_at_zero(fn) -> None:
    for x0 in (torch.zeros(2, 3, dtype=torch.float64), torch.full((2, 3), 1e-8, dtype=torch.float64)):
        x = x0.clone().requires_grad_(True)
        fn(x).square().sum().backward()
        assert torch.isfinite(x.grad).all()
        x = x0.clone().requires_grad_(True)
        (fn(x) * torch.arange(1.0, fn(x0).numel() + 1, dtype=torch.float64).reshape(fn(x0).shape)).sum().backward()
        assert torch.isfinite(x.grad).all()


def test_gradient_of_matrix_at_zero_is_skew() -> None:
    # d/dx R(x) at 0 is the generator [e_i]_x: check the Jacobian numerically vs autograd
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(R.axis_angle_to_matrix, x)  # (3,3,3)
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = 1.0
        K = torch.tensor([[0, -e[2], e[1]], [e[2], 0, -e[0]], [-e[1], e[0], 0]], dtype=torch.float64)
        assert torch.allclose(jac[..., i], K)
    assert torch.autograd.gradcheck(R.axis_angle_to_matrix, (_rand_aa(4, 5).requires_grad_(True),))
    assert torch.autograd.gradcheck(R.quat_to_axis_angle,
                                    (R.axis_angle_to_quat(_rand_aa(4, 6)).requires_grad_(True),))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_floats = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.tuples(_floats, _floats, _floats))
def test_property_matrix_round_trip(v: tuple[float, float, float]) -> None:
    aa = torch.tensor(v, dtype=torch.float64)
    m = R.axis_angle_to_matrix(aa)
    assert torch.allclose(m @ m.T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert torch.det(m).item() == pytest.approx(1.0, abs=1e-12)
    back = R.matrix_to_axis_angle(m)
    assert back.norm().item() <= np.pi + 1e-9
    assert torch.allclose(R.axis_angle_to_matrix(back), m, atol=1e-9)
