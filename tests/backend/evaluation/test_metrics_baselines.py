"""Metrics and baselines of the evaluation (numpy, no network)."""

from __future__ import annotations

import numpy as np

from backend.evaluation import baselines as bl
from backend.evaluation import metrics as mt
from dposer_core.kinematics_np import forward_kinematics


def _poses(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, 63)) * 0.2).astype(np.float32)


def test_mpjpe_apd_fd() -> None:
    j = forward_kinematics(_poses(5))
    assert j.shape == (5, 22, 3)
    assert np.allclose(mt.mpjpe(j, j), 0)
    shifted = j + np.array([0.01, 0, 0])
    assert np.allclose(mt.mpjpe(shifted, j), 10.0)
    assert mt.apd(np.repeat(j[:1], 4, 0)) == 0.0 and mt.apd(j) > 0
    a = np.random.default_rng(0).standard_normal((4000, 3))
    assert mt.frechet_distance(a, a + 0.0) < 1e-6
    assert abs(mt.frechet_distance(a, a + 1.0) - 3.0) < 0.05


def test_hidden_fk_joints() -> None:
    assert mt.hidden_fk_joints((0, 3, 6, 9)) == [4, 7, 10]  # left hip hidden moves knee, ankle, foot


def test_nn_and_limits_and_floor() -> None:
    p = _poses(50)
    j = forward_kinematics(p)
    assert np.allclose(mt.nearest_neighbour_mpjpe(j[:5], j), 0, atol=1e-3)
    lim = mt.JointLimits(p)
    assert lim.violations(p).mean() < 0.2
    assert lim.violations(p * 10).all()
    assert not mt.floor_violation(forward_kinematics(np.zeros((1, 63))))[0]


def test_completion_baselines_keep_exact() -> None:
    p, train = _poses(3), _poses(100, 1)
    keep = np.zeros(21, bool)
    keep[:10] = True
    dims = np.repeat(keep, 3)
    mp = bl.mean_pose_fill(p, keep, train.mean(0))
    assert np.array_equal(mp[:, dims], p[:, dims]) and np.allclose(mp[:, ~dims], train.mean(0)[~dims])
    nn = bl.nn_retrieval_fill(p, keep, train, k=4)
    assert nn.shape == (3, 4, 63) and np.array_equal(nn[:, 0, dims], p[:, dims])
    # retrieving a training pose itself returns it first
    nn2 = bl.nn_retrieval_fill(train[:2], keep, train, k=1)
    assert np.allclose(nn2[:, 0], train[:2])


def test_filters_reduce_noise() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(120)[:, None, None] / 30.0
    clean = np.sin(2 * np.pi * 0.5 * t) * np.ones((1, 22, 3)) * 0.2
    noisy = clean + rng.standard_normal(clean.shape) * 0.04
    for kind in ("gaussian", "butterworth"):
        tuned = bl.tune_filter(noisy[None], clean[None], kind)
        y = bl.apply_filter(noisy, kind, tuned["params"])
        assert mt.mpjpe(y, clean).mean() < 0.6 * mt.mpjpe(noisy, clean).mean()


def test_interp_baselines_hit_keys() -> None:
    p = _poses(4)
    s = bl.slerp_fill(p[0], p[1], 5)
    assert s.shape == (5, 63)
    c = bl.cubic_fill(p, np.array([0.0, 3, 6, 9]), np.array([0.0, 3, 4.5, 9]))
    assert np.allclose(forward_kinematics(c[[0, 1, 3]]), forward_kinematics(p[[0, 1, 3]]), atol=1e-5)
    g = bl.GaussianPoseModel(_poses(500)).sample(10, seed=1)
    assert g.shape == (10, 63)
