"""AMASS reader on synthetic files written in exactly the AMASS layout (SMPL-H / SMPL-X)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.data.amass import R_ZUP_TO_YUP, read_amass
from dposer_core.kinematics_np import forward_kinematics


def write_amass(path: Path, T: int = 40, width: int = 156, gender: object = "female",
                fps_key: str = "mocap_framerate", fps: float = 120.0, n_betas: int = 16,
                seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    poses = rng.normal(0, 0.3, size=(T, width))
    # a smooth root turn so resampling is checkable
    poses[:, 0:3] = Rotation.from_euler("xz", np.stack([np.full(T, 90.0), np.linspace(0, 60, T)], 1),
                                        degrees=True).as_rotvec()
    trans = np.cumsum(rng.normal(0, 0.01, size=(T, 3)), axis=0) + np.array([0.0, 0.0, 0.9])
    arrays = {"poses": poses, "trans": trans, "betas": rng.normal(size=n_betas), "gender": gender,
              fps_key: np.array(fps), "dmpls": np.zeros((T, 8))}
    np.savez(path, **arrays)
    return arrays


@pytest.mark.parametrize("width,n_betas", [(156, 16), (165, 10)])
@pytest.mark.parametrize("gender", ["female", b"male", np.array("neutral"), np.array(b"female")])
@pytest.mark.parametrize("fps_key", ["mocap_framerate", "mocap_frame_rate"])
def test_formats(tmp_path: Path, width: int, n_betas: int, gender: object, fps_key: str) -> None:
    a = write_amass(tmp_path / "x.npz", width=width, gender=gender, fps_key=fps_key, n_betas=n_betas)
    m = read_amass(tmp_path / "x.npz", fps=None)
    assert m.model == ("smplh" if width == 156 else "smplx")
    assert m.gender in ("female", "male", "neutral")
    assert m.betas.shape == (n_betas,)
    assert m.body_pose.shape == (40, 63) and m.root_orient.shape == (40, 3) and m.trans.shape == (40, 3)
    assert m.source_fps == 120.0 and m.fps == 120.0
    np.testing.assert_allclose(m.body_pose, a["poses"][:, 3:66], atol=1e-6)


def test_zup_to_yup_moves_body_rigidly(tmp_path: Path) -> None:
    a = write_amass(tmp_path / "x.npz", T=10)
    m = read_amass(tmp_path / "x.npz", fps=None)
    P_z = forward_kinematics(a["poses"][:, 3:66], a["poses"][:, :3], a["trans"], num_joints=24)
    P_y = forward_kinematics(m.body_pose, m.root_orient, m.trans, num_joints=24)
    np.testing.assert_allclose(P_y, P_z @ R_ZUP_TO_YUP.T, atol=1e-5)
    # root was +90 deg about X in Z-up (an upright AMASS body): upright in Y-up -> head above pelvis
    assert np.all(P_y[:, 15, 1] > P_y[:, 0, 1] + 0.15)
    # Z-up trans height 0.9 becomes Y height
    assert np.all(P_y[:, 0, 1] > 0.5)


def test_resample_non_integer_rate(tmp_path: Path) -> None:
    write_amass(tmp_path / "x.npz", T=121, fps=59.94)
    m = read_amass(tmp_path / "x.npz")
    assert m.fps == 30.0 and m.source_fps == pytest.approx(59.94)
    assert m.num_frames == int(np.floor(120 / 59.94 * 30 + 1e-6)) + 1
    full = read_amass(tmp_path / "x.npz", fps=None)
    # frame k at 30 fps lies at source position k * 59.94 / 30; check one exact-ish midpoint by slerp
    k = 7
    pos = k * 59.94 / 30.0
    i0 = int(np.floor(pos))
    a = pos - i0
    r0 = Rotation.from_rotvec(full.root_orient[i0].astype(float))
    r1 = Rotation.from_rotvec(full.root_orient[i0 + 1].astype(float))
    from scipy.spatial.transform import Slerp
    want = Slerp([0, 1], Rotation.concatenate([r0, r1]))([a])
    got = Rotation.from_rotvec(m.root_orient[k].astype(float))
    assert np.degrees((want.inv() * got).magnitude()[0]) < 1e-3
    np.testing.assert_allclose(m.trans[k], (1 - a) * full.trans[i0] + a * full.trans[i0 + 1], atol=1e-5)


def test_60fps_to_30_takes_every_other_frame(tmp_path: Path) -> None:
    write_amass(tmp_path / "x.npz", T=21, fps=60.0)
    m, full = read_amass(tmp_path / "x.npz"), read_amass(tmp_path / "x.npz", fps=None)
    assert m.num_frames == 11
    np.testing.assert_allclose(m.trans, full.trans[::2], atol=1e-6)
    R = Rotation.from_rotvec(m.body_pose.reshape(-1, 3).astype(float))
    Rf = Rotation.from_rotvec(full.body_pose[::2].reshape(-1, 3).astype(float))
    assert np.degrees((R.inv() * Rf).magnitude()).max() < 1e-3


def test_bad_files(tmp_path: Path) -> None:
    np.savez(tmp_path / "shape.npz", betas=np.zeros(16), gender="male")
    with pytest.raises(ValueError, match="poses"):
        read_amass(tmp_path / "shape.npz")
    np.savez(tmp_path / "w.npz", poses=np.zeros((3, 72)), trans=np.zeros((3, 3)), mocap_framerate=30.0)
    with pytest.raises(ValueError, match="156"):
        read_amass(tmp_path / "w.npz")
    np.savez(tmp_path / "nofps.npz", poses=np.zeros((3, 156)), trans=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="framerate"):
        read_amass(tmp_path / "nofps.npz")


def test_foreign_files_get_our_one_liners(tmp_path) -> None:
    """Issue 12, point 9: numpy's "load it unsafely using allow_pickle=" advice is never repeated."""
    import io

    import numpy as np
    import pytest

    from backend.data.amass import read_amass

    txt = tmp_path / "notes.npz"
    txt.write_text("root:x:0:0\n")
    np.savez(tmp_path / "obj.npz", poses=np.zeros((3, 156)), gender=np.array([{"a": 1}], dtype=object),
             mocap_framerate=60.0)
    np.save(tmp_path / "one.npy", np.zeros(3))
    for path, words in ((txt, "not an AMASS .npz file"), (tmp_path / "obj.npz", "cannot be read as plain numbers"),
                        (tmp_path / "one.npy", "single .npy")):
        with pytest.raises(ValueError) as e:
            read_amass(path)
        assert words in str(e.value) and "allow_pickle" not in str(e.value), str(e.value)
    nan = dict(poses=np.zeros((5, 156)), trans=np.zeros((5, 3)), mocap_framerate=30.0)
    nan["poses"][3, 7] = np.nan
    buf = io.BytesIO()
    np.savez(buf, **nan)
    buf.seek(0)
    with pytest.raises(ValueError, match="frame 3 holds NaN"):
        read_amass(buf)  # a file object works too (the server reads through one)
