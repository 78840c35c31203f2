"""BVH reader against synthetic files with known rotations (3 and 6 channels, varied orders, End Sites, units)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.data.bvh import bvh_forward_kinematics, guess_unit_scale, parse_bvh, read_bvh

from bvh_synth import SynthBVH, SynthJoint, euler_matrix, random_bvh

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.mark.parametrize("six", [False, True])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_random_tree_matches_truth(tmp_path: Path, six: bool, newline: str) -> None:
    rng = np.random.default_rng(3 + six)
    bvh, truth = random_bvh(rng, T=9, six_everywhere=six)
    m = read_bvh(bvh.write(tmp_path / "a.bvh", newline=newline))
    assert m.names == truth["names"]
    assert m.parents.tolist() == truth["parents"]
    assert m.num_frames == 9
    assert m.frame_time == pytest.approx(1 / 60.0, rel=1e-6)
    assert m.fps == pytest.approx(60.0, rel=1e-5)
    np.testing.assert_allclose(m.local_rotations, truth["rot"], atol=1e-5)
    np.testing.assert_allclose(m.local_translations, truth["trans"], atol=1e-5)
    np.testing.assert_allclose(m.root_positions, truth["trans"][:, 0], atol=1e-5)
    assert set(m.end_sites) == set(truth["ends"])
    for j, e in truth["ends"].items():
        np.testing.assert_allclose(m.end_sites[j], e)
    # channel orders recorded per joint
    for j, jt in enumerate(bvh.joints):
        assert m.channels[j] == tuple(jt.channels)
        assert m.rot_orders[j] == "".join(c[0] for c in jt.channels if c.endswith("rotation"))


def test_units_scale_lengths_not_angles(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    bvh, truth = random_bvh(rng, T=4)
    p = bvh.write(tmp_path / "cm.bvh")
    a, b = read_bvh(p), read_bvh(p, scale=0.01)
    np.testing.assert_allclose(b.offsets, a.offsets * 0.01)
    np.testing.assert_allclose(b.local_translations, a.local_translations * 0.01)
    np.testing.assert_allclose(b.end_sites[2], a.end_sites[2] * 0.01)
    np.testing.assert_allclose(b.local_rotations, a.local_rotations)


def test_known_fk_rotation(tmp_path: Path) -> None:
    """Root turned 90 deg about Y (ZYX channels), child 90 deg about Z: child offset maps as expected."""
    joints = [SynthJoint("root", -1, (0, 0, 0), ["Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation"]),
              SynthJoint("a", 0, (0, 10, 0), ["Zrotation", "Xrotation", "Yrotation"]),
              SynthJoint("b", 1, (5, 0, 0), [], end_site=(1, 0, 0))]
    motion = np.array([[1.0, 2.0, 3.0, 0.0, 90.0, 0.0, 90.0, 0.0, 0.0]])
    m = parse_bvh(SynthBVH(joints, 0.01, motion).text())
    G, P = m.forward_kinematics()
    # root: Ry(90) maps +X -> -Z; a at root + Ry(90)(0,10,0) = (1,12,3)
    np.testing.assert_allclose(P[0, 1], [1, 12, 3], atol=1e-9)
    # b: offset (5,0,0) rotated by Ry(90) Rz(90): Rz(90) (5,0,0) = (0,5,0); Ry(90) keeps it -> (1,17,3)
    np.testing.assert_allclose(P[0, 2], [1, 17, 3], atol=1e-9)
    assert m.rot_orders[2] == "" and m.channels[2] == ()
    np.testing.assert_allclose(m.local_rotations[0, 2], np.eye(3))


def test_two_channel_joint_and_zero_channel_joint(tmp_path: Path) -> None:
    joints = [SynthJoint("root", -1, (0, 0, 0), ["Xposition", "Yposition", "Zposition", "Yrotation", "Xrotation", "Zrotation"]),
              SynthJoint("knee", 0, (0, -4, 0), ["Xrotation", "Zrotation"], end_site=(0, -4, 0))]
    motion = np.array([[0, 0, 0, 10, 20, 30, 40, 50], [0, 0, 0, -10, 0, 5, -40, 0]], dtype=float)
    m = parse_bvh(SynthBVH(joints, 1 / 30, motion).text())
    np.testing.assert_allclose(m.local_rotations[:, 0], euler_matrix("YXZ", motion[:, 3:6]), atol=1e-9)
    np.testing.assert_allclose(m.local_rotations[:, 1], euler_matrix("XZ", motion[:, 6:8]), atol=1e-9)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        parse_bvh("HIERARCHY\nROOT a\n{\nOFFSET 0 0 0\nCHANNELS 0\n}\n")
    with pytest.raises(ValueError):
        parse_bvh("HIERARCHY\nROOT a\n{\nOFFSET 0 0 0\nCHANNELS 1 Wrotation\n}\nMOTION\nFrames: 1\nFrame Time: 0.1\n0\n")


def test_guess_units() -> None:
    m = read_bvh(DATA / "cmu_daz_07_01_walk.bvh")
    assert guess_unit_scale(m) == pytest.approx(0.01)
    m = read_bvh(DATA / "cmu_cgspeed_131_01_trim241.bvh")
    assert guess_unit_scale(m) == pytest.approx(0.056444)
    m = read_bvh(DATA / "bandai1_walk_normal_001_trim90.bvh")
    assert guess_unit_scale(m) == pytest.approx(0.01)


def test_shipped_clips_parse() -> None:
    m = read_bvh(DATA / "cmu_daz_07_01_walk.bvh")
    assert (m.num_joints, m.num_frames) == (43, 317) and m.fps == pytest.approx(120, rel=1e-4)
    assert np.abs(m.eulers[0]).max() < 15.0  # CMU frame 0: the added (near) T-pose
    b = read_bvh(DATA / "bandai1_walk_normal_001_trim90.bvh")
    assert (b.num_joints, b.num_frames) == (22, 90) and b.fps == pytest.approx(30, rel=1e-4)
    assert all(len(c) == 6 for c in b.channels)
    G, P = b.forward_kinematics()
    assert np.all(np.isfinite(P))


def test_fk_helper_shapes() -> None:
    parents = np.array([-1, 0, 1])
    rots = np.broadcast_to(np.eye(3), (5, 3, 3, 3)).copy()
    G, P = bvh_forward_kinematics(parents, rots, np.array([[0, 0, 0], [0, 1, 0], [0, 1, 0]], float))
    assert G.shape == (5, 3, 3, 3) and P.shape == (5, 3, 3)
    np.testing.assert_allclose(P[:, 2], [[0, 2, 0]] * 5)


@pytest.mark.parametrize("order", ["ZXY", "ZYX", "XYZ", "XZY", "YXZ", "YZX", "ZX", "Y"])
def test_euler_to_matrix_matches_scipy(order: str) -> None:
    from scipy.spatial.transform import Rotation

    from backend.data.bvh import euler_to_matrix
    ang = np.random.default_rng(5).uniform(-180, 180, size=(50, len(order)))
    np.testing.assert_allclose(euler_to_matrix(order, ang),
                               Rotation.from_euler(order, ang, degrees=True).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(euler_to_matrix(order, ang), euler_matrix(order, ang), atol=1e-12)


def test_parse_speed_5000_frames_43_joints(tmp_path: Path) -> None:
    import time

    from backend.data.bench_bvh import make_file
    p = make_file(5000, tmp_path / "big.bvh")
    best = float("inf")
    for _ in range(2):  # CPU time, not wall time: the CI box is shared
        t0 = time.process_time()
        m = read_bvh(p)
        best = min(best, time.process_time() - t0)
    assert (m.num_frames, m.num_joints) == (5000, 43)
    assert best < 1.0, best


def test_nan_frame_is_named(tmp_path) -> None:
    """Issue 12, point 3: a frame of NaN gives one message naming it (not RuntimeWarnings and
    "SVD did not converge" later)."""
    import warnings

    import pytest

    from backend.data.bvh import parse_bvh

    text = ("HIERARCHY\nROOT hip\n{\n OFFSET 0 0 0\n CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation "
            "Yrotation\n JOINT knee\n {\n  OFFSET 0 -40 0\n  CHANNELS 3 Zrotation Xrotation Yrotation\n"
            "  End Site\n  {\n   OFFSET 0 -40 0\n  }\n }\n}\nMOTION\nFrames: 4\nFrame Time: 0.0333\n"
            "0 90 0 0 0 0 0 10 0\n0 90 0 0 0 0 0 12 0\nnan nan nan nan nan nan nan nan nan\n0 90 0 0 0 0 0 14 0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"BVH frame 2 .*NaN"):
            parse_bvh(text)
