"""Issue 11 evaluation pieces: standing-pose test, acceleration, the denoiser's smoothness term,
per-source tables and the retarget convention statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend import tasks
from backend.engine.prior import PosePrior
from backend.evaluation import metrics as mt
from backend.evaluation.eval_data import EvalData, source_groups, stratified
from dposer_core.kinematics_np import forward_kinematics
from dposer_core.skeleton import body_joint_names
from tests.backend.evaluation.tiny_checkpoint import make_tiny_checkpoint


def test_feet_flat_under_hips_is_standing() -> None:
    names = list(body_joint_names())
    rest = np.zeros((1, 63))
    sit = np.zeros((1, 63))
    for side in ("left", "right"):
        sit[0, 3 * names.index(f"{side}_hip")] = -1.5   # thighs forward
        sit[0, 3 * names.index(f"{side}_knee")] = 1.5   # shins down
    step = np.zeros((1, 63))
    step[0, 3 * names.index("left_hip")] = -0.6          # a leg lifted forward
    tiptoe = np.zeros((1, 63))
    for side in ("left", "right"):
        tiptoe[0, 3 * names.index(f"{side}_ankle")] = 0.9  # heels up
    j = forward_kinematics(np.concatenate([rest, sit, step, tiptoe]))
    assert mt.feet_flat_under_hips(j).tolist() == [True, False, False, False]


def test_acceleration_of_constant_velocity_is_zero_and_of_noise_is_not() -> None:
    t = np.arange(20, dtype=np.float64)[:, None, None]
    lin = np.broadcast_to(t * np.array([0.01, 0.0, 0.0]), (20, 22, 3))
    assert mt.acceleration_mm(lin) == pytest.approx(0.0, abs=1e-9)
    noisy = lin + np.random.default_rng(0).normal(0, 0.01, lin.shape)
    assert mt.acceleration_mm(noisy) > 10.0


def test_denoiser_acceleration_term_smooths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prior = PosePrior.load(make_tiny_checkpoint(tmp_path / "tiny.pt"))
    for k in (20, 40, 100):
        monkeypatch.setitem(tasks.DENOISE_SCHEDULES, k, (15, 3, 0.2, 0.05))
    T = 30
    poses = (0.3 * np.sin(np.arange(T)[:, None] / 8.0 + np.linspace(0, 3, 63)[None])).astype(np.float32)
    clean = forward_kinematics(poses[None])
    noisy = (clean + np.random.default_rng(0).normal(0, 0.04, clean.shape)).astype(np.float32)
    acc = {}
    for w in (0.0, 160.0):
        monkeypatch.setitem(tasks.DENOISE_ACC_WEIGHTS, 40, w)
        out = tasks.denoise_windows(prior, noisy, 40, use_prior=False, seed=0)
        acc[w] = mt.acceleration_mm(forward_kinematics(out))
    assert acc[160.0] < 0.7 * acc[0.0]


def test_per_source_groups_and_stratified_subset() -> None:
    clips = [(f"c{i}", np.full((10, 63), i, np.float32)) for i in range(4)]
    data = EvalData(clips=clips, train_poses=np.zeros((5, 63), np.float32), source="t",
                    clip_sources=["a", "a", "b", "c"])
    assert data.sources() == ["a", "b", "c"]
    p, s = stratified(data, 5, np.random.default_rng(0))
    assert sorted(s.tolist()) == ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    assert np.all(p[s == "b"] == 2) and np.all(p[s == "c"] == 3)
    g = source_groups(s, data.sources())
    assert set(g) == {"pooled", "a", "b", "c"} and len(g["pooled"]) == 15


def test_convention_stats_against_amass() -> None:
    from backend.data.retarget_report import amass_stats, convention_stats, convention_table
    names, mu, sd = amass_stats()
    at_mean = np.tile(mu.reshape(1, 63), (4, 1))
    st = convention_stats(at_mean)
    assert all(v["ok"] for v in st.values())
    off = at_mean.copy()
    off[:, 3 * names.index("spine3")] += 2.0 * sd[names.index("spine3"), 0]  # 2 AMASS stds off on x
    st = convention_stats(off)
    assert not st["spine3"]["ok"] and st["spine3"]["z"][0] == pytest.approx(2.0, abs=0.01) and st["neck"]["ok"]
    assert "spine3 | 2.00 FAIL" in convention_table({"x": off})
