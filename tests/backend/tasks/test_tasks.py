"""Contract tests of backend.tasks on a tiny random-weight checkpoint (shapes, exactness, seeds,
cancellation, bad input). Never asserts on timings or on quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend import tasks
from backend.engine.kinematics import forward_kinematics
from backend.engine.prior import PosePrior
from backend.engine.regularizer import dposer_grad, dposer_loss
from backend.tasks.denoise import blend_weights, window_starts
from backend.tasks.inbetween import slerp_latent
from tests.backend.evaluation.tiny_checkpoint import make_tiny_checkpoint


@pytest.fixture(scope="module")
def prior(tmp_path_factory: pytest.TempPathFactory) -> PosePrior:
    return PosePrior.load(make_tiny_checkpoint(tmp_path_factory.mktemp("ck") / "tiny.pt"))


@pytest.fixture(scope="module")
def poses() -> np.ndarray:
    return (np.random.default_rng(0).standard_normal((4, 63)) * 0.2).astype(np.float32)


@pytest.mark.parametrize("sampler,steps,eta", [("ddim", 4, 1.0), ("ddim", 4, 0.0), ("em", 5, 1.0), ("ode", 3, 1.0)])
def test_sample_shapes_and_seed(prior: PosePrior, sampler: str, steps: int, eta: float) -> None:
    a = tasks.sample(prior, 3, sampler=sampler, steps=steps, seed=7, eta=eta)
    b = tasks.sample(prior, 3, sampler=sampler, steps=steps, seed=7, eta=eta)
    c = tasks.sample(prior, 3, sampler=sampler, steps=steps, seed=8, eta=eta)
    assert a.shape == (3, 63) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_variations(prior: PosePrior, poses: np.ndarray) -> None:
    v = tasks.variations(prior, poses[0], 0.3, 5, seed=1)
    assert v.shape == (5, 63) and np.array_equal(v, tasks.variations(prior, poses[0], 0.3, 5, seed=1))
    with pytest.raises(tasks.BadInput):
        tasks.variations(prior, poses[:2], 0.3, 2)


def test_encode_decode_shapes(prior: PosePrior, poses: np.ndarray) -> None:
    lat = tasks.encode(prior, poses, steps=3)
    assert lat.shape == (4, 63)
    assert tasks.decode(prior, lat, steps=3).shape == (4, 63)
    assert tasks.encode(prior, poses[0], steps=2).shape == (63,)


@pytest.mark.parametrize("ease", ["linear", "ease_in_out"])
def test_inbetween_exact_keys(prior: PosePrior, poses: np.ndarray, ease: str) -> None:
    ro = (np.random.default_rng(1).standard_normal((2, 3)) * 0.7).astype(np.float32)
    r = tasks.inbetween(prior, poses[:2], 6, ease=ease, root_orient=ro, steps=3)
    assert r["poses"].shape == (8, 63) and r["root_orient"].shape == (8, 3)
    assert np.array_equal(r["poses"][0], poses[0]) and np.array_equal(r["poses"][-1], poses[1])
    assert np.array_equal(r["root_orient"][0], ro[0]) and np.array_equal(r["root_orient"][-1], ro[1])
    assert np.all(np.isfinite(r["poses"]))


def test_inbetween_chain_and_zero_frames(prior: PosePrior, poses: np.ndarray) -> None:
    r = tasks.inbetween(prior, poses[:3], 4, steps=2)
    assert r["poses"].shape == (11, 63) and r["root_orient"] is None
    for i, k in enumerate((0, 5, 10)):
        assert np.array_equal(r["poses"][k], poses[i])
    r0 = tasks.inbetween(prior, poses[:2], 0, steps=2)
    assert np.array_equal(r0["poses"], poses[:2])
    # identical keys: the latent slerp falls back to linear and stays finite
    same = tasks.inbetween(prior, np.stack([poses[0], poses[0]]), 3, steps=2)
    assert np.all(np.isfinite(same["poses"]))


def test_slerp_latent_fallback() -> None:
    a = torch.randn(63)
    out = slerp_latent(a, a * 1.0000001, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(out[0], a) and torch.all(torch.isfinite(out))


def test_complete_contract(prior: PosePrior, poses: np.ndarray) -> None:
    keep = tasks.keep_from_mask("left_leg")
    r = tasks.complete(prior, poses[:2], keep, n_hypotheses=5, steps=6, seed=3,
                       root_orient=np.zeros((2, 3), np.float32))
    assert r["poses"].shape == (2, 5, 63) and r["scores"].shape == (2, 5)
    dims = np.repeat(keep, 3)
    for h in range(5):
        assert np.array_equal(r["poses"][:, h, dims], poses[:2, dims])  # bit-exact kept joints
    assert np.all(np.diff(r["scores"], axis=1) >= 0)  # best (lowest) first
    r2 = tasks.complete(prior, poses[:2], keep, n_hypotheses=5, steps=6, seed=3)
    assert np.array_equal(r["poses"], r2["poses"])
    # the scores are the prior's own score of the returned poses
    s = tasks.score(prior, r["poses"].reshape(-1, 63))["pose"].reshape(2, 5)
    np.testing.assert_allclose(s, r["scores"], rtol=1e-4, atol=1e-5)
    single = tasks.complete(prior, poses[0], ["left_hip", "spine1"], n_hypotheses=2, steps=2, seed=0)
    assert single["poses"].shape == (1, 2, 63)


def test_complete_gradient_matches_regularizer(prior: PosePrior) -> None:
    """The closed-form prior gradient used by complete equals autograd of engine dposer_loss."""
    x = torch.randn(3, 63, requires_grad=True)
    noise = torch.randn(3, 63)
    t = 0.2
    loss = dposer_loss(prior.eps_model, prior.sde, x, t, noise=noise, reduction="none").sum()
    loss.backward()
    sde = prior.sde
    tt = torch.tensor(t)
    a, s, w = sde.alpha(tt), sde.sigma(tt), 0.5 * torch.sqrt(1 + sde.alpha(tt) / sde.sigma(tt))
    with torch.inference_mode():
        g = 2 * w * dposer_grad(prior.fast_eps, x.detach(), t, a, s, noise)
    assert torch.allclose(x.grad, g, atol=1e-4, rtol=1e-4)


def test_parse_keep() -> None:
    k = tasks.parse_keep("left_hip, spine1")
    assert k.sum() == 2 and k[0] and k[2]
    assert tasks.parse_keep([0, 20]).sum() == 2
    assert tasks.parse_keep(np.ones(21, bool)).all()
    for bad in ("nose", ["left_hip", "elbow"], [21], np.ones(5, bool)):
        with pytest.raises(tasks.BadInput):
            tasks.parse_keep(bad)
    with pytest.raises(tasks.BadInput):
        tasks.keep_from_mask("tail")
    assert (~tasks.keep_from_mask("legs")).sum() == 8


def test_score_deterministic(prior: PosePrior, poses: np.ndarray) -> None:
    a, b = tasks.score(prior, poses), tasks.score(prior, poses)
    assert a["pose"].shape == (4,) and a["joints"].shape == (4, 21)
    assert np.array_equal(a["pose"], b["pose"])
    # per-pose score does not depend on the batch it is computed in
    np.testing.assert_allclose(tasks.score(prior, poses[1])["pose"], a["pose"][1:2], rtol=1e-5)


def _noisy_joints(poses: np.ndarray, T: int, noise_m: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    p = np.repeat(poses[:1], T, 0) + 0.01 * np.arange(T)[:, None].astype(np.float32)
    j = forward_kinematics(torch.as_tensor(p))[0].numpy()
    return j, j + np.random.default_rng(seed).standard_normal(j.shape).astype(np.float32) * noise_m


def test_denoise_joints_and_poses(prior: PosePrior, poses: np.ndarray) -> None:
    j, jn = _noisy_joints(poses, 25, 0.04)
    sched = tasks.DENOISE_SCHEDULES
    try:  # a short schedule for speed
        for k in list(sched):
            sched[k] = (3, 2, sched[k][2], sched[k][3])
        r = tasks.denoise(prior, jn, window=10, overlap=4, max_batch_frames=20, seed=0)
        assert r["poses"].shape == (25, 63) and r["joints"].shape == (25, 22, 3)
        assert r["root_orient"].shape == (25, 3) and r["trans"].shape == (25, 3)
        assert 20 < r["noise_mm"] < 60  # auto estimate near 40 mm
        r2 = tasks.denoise(prior, jn, window=10, overlap=4, max_batch_frames=20, seed=0)
        assert np.array_equal(r["poses"], r2["poses"])  # seeded: deterministic
        r3 = tasks.denoise(prior, jn, window=10, overlap=4, max_batch_frames=20)
        assert not np.array_equal(r["poses"], r3["poses"])  # seed None: random
        ro = np.full((25, 3), 0.1, np.float32)
        rp = tasks.denoise(prior, poses[:1].repeat(25, 0), root_orient=ro, noise_mm=20)
        assert rp["poses"].shape == (25, 63) and np.array_equal(rp["root_orient"], ro)
        r1 = tasks.denoise(prior, jn[:1], noise_mm=20, use_prior=False)
        assert r1["poses"].shape == (1, 63)
    finally:
        sched.update({20: (40, 3, 0.2, 0.05), 40: (60, 3, 0.25, 0.05), 100: (80, 3, 0.15, 0.05)})


def test_noise_estimate() -> None:
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2, 200)[:, None, None]
    clean = np.sin(t + np.arange(22)[None, :, None] * 0.1) * 0.2 + np.zeros((1, 22, 3))
    for s in (0.02, 0.1):
        est = tasks.estimate_noise_mm(clean + rng.standard_normal(clean.shape) * s)
        assert abs(est - 1000 * s) < 0.15 * 1000 * s


def test_blend_windows_cover() -> None:
    for T in (1, 59, 60, 61, 200, 1001):
        starts = window_starts(T, min(60, T), 20)
        cover = np.zeros(T)
        for s in starts:
            cover[s:s + min(60, T)] += blend_weights(min(60, T), 20, s == 0, s + min(60, T) >= T)
        assert np.all(cover > 0.2)


def test_cancel_and_progress(prior: PosePrior, poses: np.ndarray) -> None:
    seen: list[float] = []
    tasks.sample(prior, 2, sampler="em", steps=20, seed=0, progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == 1.0 and all(b >= a for a, b in zip(seen, seen[1:]))
    calls = {"n": 0}

    def cancel_after_3() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(tasks.TaskCancelled):
        tasks.sample(prior, 2, sampler="em", steps=50, should_cancel=cancel_after_3)
    assert calls["n"] == 4  # stopped within one step
    for fn in (lambda c: tasks.complete(prior, poses[0], tasks.keep_from_mask("arms"), 2, steps=50, should_cancel=c),
               lambda c: tasks.inbetween(prior, poses[:2], 3, steps=20, should_cancel=c),
               lambda c: tasks.denoise(prior, poses[:1].repeat(5, 0), noise_mm=20, should_cancel=c)):
        calls["n"] = 0
        with pytest.raises(tasks.TaskCancelled):
            fn(cancel_after_3)
        assert calls["n"] == 4


@pytest.mark.parametrize("call", [
    lambda p, x: tasks.sample(p, 2, sampler="magic"),
    lambda p, x: tasks.sample(p, 2.5),
    lambda p, x: tasks.score(p, np.zeros((3, 62))),
    lambda p, x: tasks.score(p, np.full((2, 63), np.nan)),
    lambda p, x: tasks.encode(p, np.zeros((2, 21, 3))),
    lambda p, x: tasks.inbetween(p, x[:1], 3),
    lambda p, x: tasks.inbetween(p, x[:2], 3, ease="bounce"),
    lambda p, x: tasks.inbetween(p, x[:2], 3, root_orient=np.zeros((3, 3))),
    lambda p, x: tasks.inbetween(p, x[:2], 3, trans=np.zeros((2, 2))),
    lambda p, x: tasks.inbetween(p, x[:2] * 100, 3),
    lambda p, x: tasks.complete(p, x, ["left_knee", "tail"]),
    lambda p, x: tasks.complete(p, np.zeros((2, 64)), ["left_knee"]),
    lambda p, x: tasks.denoise(p, np.zeros((10, 21, 3))),
    lambda p, x: tasks.denoise(p, np.full((10, 22, 3), np.inf)),
    lambda p, x: tasks.denoise(p, np.zeros((10, 63)), noise_mm="loud"),
    lambda p, x: tasks.denoise(p, np.zeros((10, 63)), trans=np.zeros((9, 3))),
    lambda p, x: tasks.sample(p, 2, seed="abc"),
])
def test_bad_input(prior: PosePrior, poses: np.ndarray, call) -> None:  # noqa: ANN001
    with pytest.raises(tasks.BadInput) as e:
        call(prior, poses)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)


def test_denoise_long_sequence_bounded_batches(prior: PosePrior, monkeypatch: pytest.MonkeyPatch) -> None:
    """10,000 frames run through overlapping windows in bounded groups (memory does not grow with T)."""
    monkeypatch.setitem(tasks.DENOISE_SCHEDULES, 20, (1, 1, 0.2, 0.05))
    seen: list[int] = []  # rows of every network call (one prior step per group here)
    monkeypatch.setattr(prior.fast_eps, "call_log", seen)
    T = 10_000
    poses = np.zeros((T, 63), np.float32)
    r = tasks.denoise(prior, poses, noise_mm=10, max_batch_frames=2048, seed=0)
    assert r["poses"].shape == (T, 63) and np.all(np.isfinite(r["poses"]))
    assert max(seen) <= 2048 and sum(seen) >= T


def test_denoise_groups_same_result_on_one_or_two_threads(prior: PosePrior, monkeypatch: pytest.MonkeyPatch) -> None:
    """Window groups are fitted in parallel on the CPU cores, each with its own generator: the result
    does not depend on the thread count, and the thread count is restored."""
    monkeypatch.setitem(tasks.DENOISE_SCHEDULES, 20, (2, 2, 0.2, 0.05))
    poses = (np.random.default_rng(1).standard_normal((300, 63)) * 0.1).astype(np.float32)
    saved = torch.get_num_threads()
    out = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out[n] = tasks.denoise(prior, poses, noise_mm=10, max_batch_frames=120, seed=3)["poses"]
            assert torch.get_num_threads() == n
    finally:
        torch.set_num_threads(saved)
    assert np.array_equal(out[1], out[2])


def test_denoise_cancel_in_a_worker_thread(prior: PosePrior) -> None:
    """A cancel seen by a worker thread stops the whole denoise with TaskCancelled."""
    poses = np.zeros((600, 63), np.float32)
    calls = []

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) > 5

    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(tasks.TaskCancelled):
            tasks.denoise(prior, poses, noise_mm=10, max_batch_frames=120, seed=0, should_cancel=should_cancel)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)


def test_canonical_axis_angle_same_rotation_angle_at_most_pi() -> None:
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(3)
    axes = rng.normal(size=(50, 21, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    angles = rng.uniform(0, 4 * np.pi, size=(50, 21, 1))
    poses = (axes * angles).reshape(50, 63).astype(np.float32)
    out = tasks.canonical_axis_angle(poses)
    norms = np.linalg.norm(out.reshape(-1, 3), axis=-1)
    assert norms.max() <= np.pi + 1e-5
    a = Rotation.from_rotvec(poses.reshape(-1, 3).astype(np.float64)).as_matrix()
    b = Rotation.from_rotvec(out.reshape(-1, 3).astype(np.float64)).as_matrix()
    assert np.abs(a - b).max() < 1e-4
    small = angles.reshape(-1) <= np.pi
    assert np.array_equal(out.reshape(-1, 3)[small], poses.reshape(-1, 3)[small])  # in range: untouched


def test_generated_poses_are_canonical(prior: PosePrior, poses: np.ndarray) -> None:
    for out in (tasks.sample(prior, 16, sampler="ddim", steps=4, seed=0),
                tasks.complete(prior, poses[:2], np.arange(21) >= 11, n_hypotheses=3, steps=4, seed=0)["poses"]):
        assert np.linalg.norm(out.reshape(-1, 3), axis=-1).max() <= np.pi + 1e-5


def test_inbetween_refinement_is_repeatable_and_keeps_keys(prior: PosePrior, poses: np.ndarray) -> None:
    keys = poses[:2]
    a = tasks.inbetween(prior, keys, 6, seed=0)["poses"]
    b = tasks.inbetween(prior, keys, 6, seed=0)["poses"]
    raw = tasks.inbetween(prior, keys, 6, refine_steps=0)["poses"]
    assert np.array_equal(a, b)  # the refinement's noise is seeded
    assert not np.array_equal(a, tasks.inbetween(prior, keys, 6)["poses"])  # seed None: random
    assert np.array_equal(a[[0, -1]], keys) and np.array_equal(raw[[0, -1]], keys)
    assert not np.allclose(a[1:-1], raw[1:-1])  # the refinement did move the in-between frames


def test_inbetween_trans_eased_per_segment_ends_exact(prior: PosePrior, poses: np.ndarray) -> None:
    """Contract 3: the keys' translations, interpolated linearly per segment at the eased parameter."""
    from dposer_core.curves import ease

    tr = np.array([[0.0, 0.9, 0.1], [1.0, 0.95, -0.3], [1.5, 0.9, 0.2]], np.float32)
    r = tasks.inbetween(prior, poses[:3], 3, ease="ease_in_out", trans=tr, steps=2, seed=0)
    assert r["trans"].shape == (9, 3) and r["trans"].dtype == np.float32 and r["root_orient"] is None
    assert np.array_equal(r["trans"][[0, 4, 8]], tr)  # keys exact
    u = ease(np.arange(1, 4) / 4.0, "ease_in_out")[:, None]
    np.testing.assert_allclose(r["trans"][1:4], (1 - u) * tr[0] + u * tr[1], atol=1e-6)
    np.testing.assert_allclose(r["trans"][5:8], (1 - u) * tr[1] + u * tr[2], atol=1e-6)
    assert tasks.inbetween(prior, poses[:2], 3, steps=2, seed=0)["trans"] is None
    assert np.array_equal(tasks.inbetween(prior, poses[:2], 0, trans=tr[:2], steps=2)["trans"], tr[:2])
