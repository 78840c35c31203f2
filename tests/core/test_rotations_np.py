"""dposer_core.rotations_np is pinned to its torch twin backend.engine.rotations: every conversion,
random rotations, near-zero angles and angles near (and at) pi."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.engine import rotations as rt
from dposer_core import rotations_np as rn

TOL = 1e-9
NAMES = ["axis_angle_to_matrix", "axis_angle_to_quat", "quat_to_matrix", "quat_to_axis_angle", "matrix_to_quat",
         "matrix_to_axis_angle"]


def _axis_angles() -> np.ndarray:
    """(N, 3): random rotations plus angles 0, tiny, small and close to pi about random axes."""
    rng = np.random.default_rng(0)
    axes = rng.standard_normal((12, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = [0.0, 1e-12, 1e-9, 1e-7, 1e-5, 1e-3, 0.5, 2.0, math.pi - 1e-3, math.pi - 1e-6]
    special = np.concatenate([axes * a for a in angles])
    return np.concatenate([rng.uniform(-math.pi, math.pi, (200, 3)) / math.sqrt(3), special])


def _torch(name: str, x: np.ndarray) -> np.ndarray:
    return getattr(rt, name)(torch.as_tensor(x, dtype=torch.float64)).numpy()


def test_every_conversion_has_a_twin() -> None:
    public = {n for n in dir(rn) if not n.startswith("_") and callable(getattr(rn, n)) and "_to_" in n}
    assert public == set(NAMES) and all(hasattr(rt, n) for n in NAMES)


@pytest.mark.parametrize("name", ["axis_angle_to_matrix", "axis_angle_to_quat"])
def test_from_axis_angle(name: str) -> None:
    aa = _axis_angles()
    np.testing.assert_allclose(getattr(rn, name)(aa), _torch(name, aa), atol=TOL, rtol=0)


@pytest.mark.parametrize("name", ["quat_to_matrix", "quat_to_axis_angle"])
def test_from_quaternion(name: str) -> None:
    q = _torch("axis_angle_to_quat", _axis_angles())
    q = np.concatenate([q, -q, 3.0 * q])  # either sign, any norm
    np.testing.assert_allclose(getattr(rn, name)(q), _torch(name, q), atol=TOL, rtol=0)


@pytest.mark.parametrize("name", ["matrix_to_quat", "matrix_to_axis_angle"])
def test_from_matrix(name: str) -> None:
    m = _torch("axis_angle_to_matrix", _axis_angles())
    np.testing.assert_allclose(getattr(rn, name)(m), _torch(name, m), atol=1e-7, rtol=0)


def test_round_trips_and_batch_shapes() -> None:
    aa = _axis_angles()
    np.testing.assert_allclose(rn.matrix_to_axis_angle(rn.axis_angle_to_matrix(aa)), aa, atol=1e-6)
    np.testing.assert_allclose(rn.quat_to_axis_angle(rn.axis_angle_to_quat(aa)), aa, atol=1e-9)
    batch = aa[:24].reshape(2, 4, 3, 3)
    assert rn.axis_angle_to_matrix(batch).shape == (2, 4, 3, 3, 3)
    assert rn.axis_angle_to_quat(batch).shape == (2, 4, 3, 4)


def test_angle_pi_is_pi_either_way() -> None:
    """At exactly pi, aa and -aa are the same rotation: both twins give one of them."""
    axes = np.eye(3) * math.pi
    m = rn.axis_angle_to_matrix(axes)
    for got in (rn.matrix_to_axis_angle(m), _torch("matrix_to_axis_angle", m)):
        np.testing.assert_allclose(np.abs(got), np.abs(axes), atol=1e-7)
        np.testing.assert_allclose(rn.axis_angle_to_matrix(got), m, atol=1e-7)
