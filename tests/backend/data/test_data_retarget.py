"""Retargeting: exact round trip through a BVH of the SMPL skeleton itself, the shipped real clips
under the bone-direction targets, family detection, resampling and frame-0 handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.data.bvh import parse_bvh, read_bvh
from backend.data.families import Family, detect_family, get_family, load_families
from backend.data.resample import resample_rotations
from backend.data.retarget import retarget_bvh, retarget_file
from backend.data.retarget_plan import SMPL_NAMES
from backend.data.retarget_report import GROUPS, TARGET_DEG, bone_angle_errors, group_errors
from dposer_core.kinematics_np import forward_kinematics
from dposer_core.skeleton import smpl_skeleton

from bvh_synth import SynthBVH, SynthJoint

DATA = Path(__file__).resolve().parents[2] / "data"


def _global_rotations(body_pose: np.ndarray, root_orient: np.ndarray) -> np.ndarray:
    """(T,22,3,3) world rotation of each SMPL joint's frame (the engine's torch FK, float64)."""
    import torch

    from backend.engine.kinematics import forward_kinematics as fk_torch
    bp, ro = (torch.as_tensor(np.asarray(x, np.float64)) for x in (body_pose, root_orient))
    return fk_torch(bp, ro)[1].numpy()


def test_numpy_fk_with_hands_matches_the_torch_fk() -> None:
    """``num_joints=24`` (the hands, used by the retarget report) of the numpy FK = the engine's."""
    import torch

    from backend.engine.kinematics import forward_kinematics as fk_torch
    rng = np.random.default_rng(0)
    bp, ro, tr = rng.normal(0, 0.4, (5, 63)), rng.normal(0, 0.4, (5, 3)), rng.normal(0, 1, (5, 3))
    want = fk_torch(*(torch.as_tensor(x) for x in (bp, ro, tr)), num_joints=24)[0].numpy()
    np.testing.assert_allclose(forward_kinematics(bp, ro, tr, num_joints=24), want, atol=1e-12)


def smpl_as_bvh(body_pose: np.ndarray, root_orient: np.ndarray, trans: np.ndarray, fps: float = 60.0,
                units: float = 100.0, order: str = "ZXY", axes: np.ndarray | None = None,
                frames: np.ndarray | None = None) -> str:
    """Write an SMPL motion as a BVH of the 24-joint SMPL skeleton (in cm, optionally other world axes).

    axes: (3,3) A with v_file = A @ v_smpl (e.g. Z-up); the rest skeleton is rotated too.
    frames: (24,3,3) per-joint local axes F_j (world axes of joint j in the SMPL rest pose), as in rigs
        like Bandai's whose zero pose is not the rest pose: L'_j = F_p^T L_j F_j, offsets F_p^T o_j.
    """
    sk = smpl_skeleton()
    A = np.eye(3) if axes is None else axes
    F = np.broadcast_to(np.eye(3), (24, 3, 3)) if frames is None else frames
    par = list(sk.parents)
    off = sk.offsets() @ A.T * units
    off[0] = 0.0
    T = body_pose.shape[0]
    aa = np.concatenate([root_orient[:, None], body_pose.reshape(T, 21, 3), np.zeros((T, 2, 3))], axis=1)
    R = Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(T, 24, 3, 3)
    R = A @ R @ A.T
    Fa = A @ F @ A.T
    for j in range(24):
        Fp = Fa[par[j]] if j > 0 else np.eye(3)
        R[:, j] = Fp.T @ R[:, j] @ Fa[j]
        if j > 0:
            off[j] = Fp.T @ off[j]
    eul = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_euler(order, degrees=True).reshape(T, 24, 3)
    root_pos = ((trans + sk.rest_joints[0]) @ A.T) * units
    joints, cols = [], []
    for j, name in enumerate(sk.names):
        ch = [f"{a}rotation" for a in order]
        if j == 0:
            ch = ["Xposition", "Yposition", "Zposition"] + ch
            cols += [root_pos[:, 0], root_pos[:, 1], root_pos[:, 2]]
        cols += [eul[:, j, 0], eul[:, j, 1], eul[:, j, 2]]
        end = tuple((Fa[j].T @ A @ np.array([0, 10.0, 0])).tolist()) if name == "head" else None
        joints.append(SynthJoint(name, sk.parents[j], tuple(off[j]), ch, end))
    return SynthBVH(joints, 1.0 / fps, np.stack(cols, 1)).text()


def smpl_family(up_axis: str = "+Y", forward_axis: str = "+Z") -> Family:
    children = {"pelvis": None, "left_foot": None, "right_foot": None, "head": "head/End"}
    sk = smpl_skeleton()
    joints = {}
    for j, n in enumerate(SMPL_NAMES[:22]):
        kids = [SMPL_NAMES[c] for c in range(24) if sk.parents[c] == j]
        end = children.get(n, kids[0] if len(kids) == 1 else None)
        if n == "spine3":
            end = "neck"
        joints[n] = {"source": n, **({"end": end} if end else {})}
    spec = {"name": "smpl_test", "units_to_m": 0.01, "up_axis": up_axis, "forward_axis": forward_axis,
            "drop_first_frame": False, "reference_pose": "zero", "joints": joints,
            "detect": {"all_of": list(SMPL_NAMES)}}
    return Family("smpl_test", spec)


def signed_permutations(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n,3,3) random proper signed permutation matrices."""
    out = []
    while len(out) < n:
        P = np.eye(3)[rng.permutation(3)] * rng.choice([-1.0, 1.0], size=3)[:, None]
        if np.linalg.det(P) > 0:
            out.append(P)
    return np.stack(out)


@pytest.mark.filterwarnings("ignore:Gimbal lock")
def test_reference_globals_for_rigs_with_rotated_joint_frames() -> None:
    """A rig whose zero pose is not anatomical (like Bandai's): with the T-pose reference given as each
    joint's world axes, the retarget is still exact."""
    rng = np.random.default_rng(4)
    body, root, trans = random_smpl_motion(rng, 10)
    F = signed_permutations(rng, 24)
    m = parse_bvh(smpl_as_bvh(body, root, trans, fps=30.0, frames=F))
    fam = smpl_family()
    axis_name = {(1, 0, 0): "+X", (-1, 0, 0): "-X", (0, 1, 0): "+Y", (0, -1, 0): "-Y", (0, 0, 1): "+Z", (0, 0, -1): "-Z"}
    globals_ = {n: [axis_name[tuple(int(v) for v in F[j][:, k])] for k in range(3)] for j, n in enumerate(SMPL_NAMES)}
    spec = dict(fam.spec, reference_pose={"globals": globals_})
    sm = retarget_bvh(m, Family("smpl_rot", spec), fps=None, floor=False)
    ang = np.degrees((Rotation.from_rotvec(sm.body_pose.reshape(-1, 3).astype(float)).inv()
                      * Rotation.from_rotvec(body.reshape(-1, 3))).magnitude())
    assert ang.max() < 0.05, ang.max()
    np.testing.assert_allclose(sm.trans, trans, atol=1e-4)
    # and with the (wrong) zero-pose reference it is not
    bad = retarget_bvh(m, fam, fps=None, floor=False)
    assert np.abs(bad.body_pose - body).max() > 0.5


def random_smpl_motion(rng: np.random.Generator, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    body = rng.normal(0, 0.35, size=(T, 63))
    root = Rotation.random(T, random_state=1).as_rotvec()
    trans = rng.normal(0, 0.5, size=(T, 3))
    return body, root, trans


@pytest.mark.parametrize("order,axes,up,fwd", [
    ("ZXY", None, "+Y", "+Z"),
    ("XYZ", np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]), "+Z", "-Y"),  # a Z-up file: v_file = A v_smpl
])
def test_smpl_skeleton_round_trip_is_exact(order: str, axes, up: str, fwd: str) -> None:
    rng = np.random.default_rng(0)
    body, root, trans = random_smpl_motion(rng, 12)
    m = parse_bvh(smpl_as_bvh(body, root, trans, fps=30.0, order=order, axes=axes))
    sm = retarget_bvh(m, smpl_family(up, fwd), fps=None, normalize_leg_length=True, floor=False)
    assert sm.body_pose.shape == (12, 63) and sm.fps == pytest.approx(30.0, rel=1e-6)
    R_got = Rotation.from_rotvec(sm.body_pose.reshape(-1, 3).astype(np.float64))
    R_true = Rotation.from_rotvec(body.reshape(-1, 3))
    ang = np.degrees((R_got.inv() * R_true).magnitude())
    assert ang.max() < 0.05, ang.max()
    ang_root = np.degrees((Rotation.from_rotvec(sm.root_orient.astype(np.float64)).inv() * Rotation.from_rotvec(root)).magnitude())
    assert ang_root.max() < 0.05
    np.testing.assert_allclose(sm.trans, trans, atol=1e-4)


def test_resample_to_30fps_halves_60fps() -> None:
    rng = np.random.default_rng(1)
    body, root, trans = random_smpl_motion(rng, 21)
    m = parse_bvh(smpl_as_bvh(body, root, trans, fps=60.0))
    sm = retarget_bvh(m, smpl_family(), fps=30.0, floor=False)
    assert sm.fps == 30.0 and sm.num_frames == 11
    R_got = Rotation.from_rotvec(sm.body_pose.reshape(-1, 3).astype(np.float64))
    R_true = Rotation.from_rotvec(body[::2].reshape(-1, 3))
    assert np.degrees((R_got.inv() * R_true).magnitude()).max() < 0.05
    np.testing.assert_allclose(sm.trans, trans[::2], atol=1e-4)


def test_resample_slerp_midpoint() -> None:
    q = Rotation.from_euler("z", [[0], [90]], degrees=True).as_quat()[:, None]  # (2,1,4)
    q2, pos = resample_rotations(q, src_fps=1.0, dst_fps=2.0)
    assert q2.shape == (3, 1, 4)
    np.testing.assert_allclose(pos, [0, 0.5, 1.0])
    np.testing.assert_allclose(Rotation.from_quat(q2[1, 0]).as_euler("zyx", degrees=True)[0], 45.0, atol=1e-6)


@pytest.mark.parametrize("fname,family", [
    ("cmu_daz_07_01_walk.bvh", "cmu_daz"),
    ("cmu_cgspeed_131_01_trim241.bvh", "cmu_cgspeed"),
    ("bandai1_walk_normal_001_trim90.bvh", "bandai_namco"),
])
def test_shipped_clips_detect_and_meet_targets(fname: str, family: str) -> None:
    m = read_bvh(DATA / fname)
    assert detect_family(m.names).name == family
    per_bone, n = bone_angle_errors(m)
    assert n > 0 and len(per_bone) >= 12
    groups = group_errors(per_bone)
    for g, v in groups.items():
        if g in TARGET_DEG:  # limbs; the spine and neck are aligned rest to rest
            assert v <= TARGET_DEG[g], (g, v, per_bone)
    # limbs bone by bone, too
    for b in GROUPS["legs"] + GROUPS["arms"]:
        if b in per_bone:
            assert per_bone[b] <= 5.0, (b, per_bone[b])


@pytest.mark.parametrize("fname", ["cmu_daz_07_01_walk.bvh", "bandai1_walk_normal_001_trim90.bvh"])
def test_walk_upright_forward_on_floor(fname: str) -> None:
    """The walk stays upright, faces its direction of travel, and feet stay near the floor."""
    sm = retarget_file(DATA / fname)
    src = read_bvh(DATA / fname)
    assert sm.fps == 30.0
    if fname.startswith("cmu"):
        assert sm.num_frames == int(np.floor((src.num_frames - 2) / 4)) + 1  # frame 0 dropped, 120 -> 30 fps
    else:
        assert sm.num_frames == src.num_frames  # Bandai: 30 fps, frame 0 kept
    P = forward_kinematics(sm.body_pose, sm.root_orient, sm.trans)
    G = _global_rotations(sm.body_pose, sm.root_orient)
    up = (P[:, 15] - P[:, 0]) / np.linalg.norm(P[:, 15] - P[:, 0], axis=-1, keepdims=True)
    assert np.all(up[:, 1] > 0.9)  # head above pelvis
    # head upright: the head's local +Y stays within 30 deg of world up
    assert np.all(G[:, 15, 1, 1] > np.cos(np.radians(30)))
    fwd = G[:, 0, :, 2]  # pelvis +Z
    travel = P[-1, 0] - P[0, 0]
    travel[1] = 0
    assert float(np.mean(fwd @ (travel / np.linalg.norm(travel)))) > 0.8
    feet_y = P[:, [7, 8, 10, 11], 1].min(axis=1)
    assert np.all((feet_y > -0.03) & (feet_y < 0.15)), feet_y  # a foot on the floor (y = 0) in every frame
    # legs not splayed: ankles no further apart than 0.45 m sideways
    lat = np.abs(np.einsum("ti,ti->t", P[:, 7] - P[:, 8], G[:, 0, :, 0]))
    assert lat.max() < 0.45


def test_families_are_data() -> None:
    fams = load_families()
    assert {"cmu_daz", "cmu_cgspeed", "bandai_namco"} <= set(fams)
    for f in fams.values():
        assert set(f.spec["joints"]) == set(SMPL_NAMES[:22]), f.name
        assert f.spec["up_axis"] and f.spec["forward_axis"] and f.spec["units_to_m"] > 0
    with pytest.raises(ValueError):
        detect_family(["a", "b", "c"])


def test_user_supplied_family_dir(tmp_path: Path) -> None:
    import json
    (tmp_path / "mine.json").write_text(json.dumps(smpl_family().spec | {"name": "mine"}))
    fams = load_families(tmp_path)
    assert list(fams) == ["mine"]


def test_units_from_family_or_guessed() -> None:
    raw = read_bvh(DATA / "cmu_daz_07_01_walk.bvh")                 # cm, family says 0.01
    pre = read_bvh(DATA / "cmu_daz_07_01_walk.bvh", scale=0.01)     # already metres
    metres_file = read_bvh(DATA / "cmu_daz_07_01_walk.bvh", scale=0.01)
    metres_file.scale = 1.0                                         # as if the file itself were in metres
    a, b, c = (retarget_bvh(m) for m in (raw, pre, metres_file))
    for x in (b, c):
        np.testing.assert_allclose(x.body_pose, a.body_pose, atol=1e-5)
        np.testing.assert_allclose(x.trans, a.trans, atol=1e-5)


CGSPEED_STD_NAMES = {  # the shipped cgspeed spelling -> the common cgspeed spelling (same rig)
    "LeftHip": "LeftUpLeg", "LeftKnee": "LeftLeg", "LeftAnkle": "LeftFoot", "LeftToe": "LeftToeBase",
    "RightHip": "RightUpLeg", "RightKnee": "RightLeg", "RightAnkle": "RightFoot", "RightToe": "RightToeBase",
    "lowerback": "LowerBack", "Chest": "Spine", "Chest2": "Spine1", "lowerneck": "Neck", "Neck": "Neck1",
    "LeftCollar": "LeftShoulder", "LeftShoulder": "LeftArm", "LeftElbow": "LeftForeArm", "LeftWrist": "LeftHand",
    "lhand": "LeftFingerBase", "LFingers": "LeftHandIndex1",
    "RightCollar": "RightShoulder", "RightShoulder": "RightArm", "RightElbow": "RightForeArm",
    "RightWrist": "RightHand", "rhand": "RightFingerBase", "RFingers": "RightHandIndex1",
}


def test_cgspeed_common_spelling_family_matches() -> None:
    import re
    text = (DATA / "cmu_cgspeed_131_01_trim241.bvh").read_text()
    head, motion = text.split("MOTION", 1)
    head = re.sub(r"(ROOT|JOINT)\s+(\S+)", lambda m: f"{m.group(1)} {CGSPEED_STD_NAMES.get(m.group(2), m.group(2))}", head)
    std = parse_bvh(head + "MOTION" + motion)
    assert detect_family(std.names).name == "cmu_cgspeed_std"
    a = retarget_bvh(read_bvh(DATA / "cmu_cgspeed_131_01_trim241.bvh"))
    b = retarget_bvh(std)
    np.testing.assert_allclose(b.body_pose, a.body_pose, atol=1e-5)
    np.testing.assert_allclose(b.trans, a.trans, atol=1e-5)


@pytest.mark.parametrize("fname", ["cmu_daz_07_01_walk.bvh", "cmu_cgspeed_131_01_trim241.bvh",
                                   "bandai1_walk_normal_001_trim90.bvh"])
def test_torso_head_feet_collars_in_smpl_pose_space(fname: str) -> None:
    """Rest-to-rest alignment: a walk's spine, neck, head, toes and collars sit near AMASS's means (within
    3 AMASS stds on one short clip of one actor), where bone-direction matching put spine3 ~9 stds away."""
    from backend.data.retarget_report import CONVENTION_JOINTS, convention_stats
    st = convention_stats(retarget_file(DATA / fname).body_pose)
    for j in CONVENTION_JOINTS:
        assert max(abs(z) for z in st[j]["z"]) <= 3.0, (j, st[j])


def test_neutral_corrections_map_the_standing_posture_to_the_target() -> None:
    """standing_deg N and neutral_deg A: a frame whose plain rest-to-rest local is N retargets to A."""
    import json
    m = read_bvh(DATA / "cmu_daz_07_01_walk.bvh")
    fam = get_family("cmu_daz")
    spec = json.loads(json.dumps(fam.spec))
    for k in ("standing_deg", "neutral_deg", "share"):
        spec.pop(k, None)
    plain = retarget_bvh(m, Family("plain", spec), fps=None)
    t = 5
    aa = plain.body_pose.reshape(-1, 21, 3)
    names = list(SMPL_NAMES[1:22])
    stand = {n: np.degrees(aa[t, names.index(n)]).tolist() for n in ("spine1", "spine3", "neck", "head")}
    spec2 = dict(spec, standing_deg=stand, neutral_deg={"left_collar": [0.0, 0.0, -20.0]})
    out = retarget_bvh(m, Family("cal", spec2), fps=None).body_pose.reshape(-1, 21, 3)
    for n in stand:
        np.testing.assert_allclose(out[t, names.index(n)], 0.0, atol=1e-6)
    np.testing.assert_allclose(np.degrees(out[:, names.index("left_collar")]),
                               np.tile([0.0, 0.0, -20.0], (len(out), 1)), atol=1e-5)
    # limbs keep their world bone directions: same shoulder-to-elbow direction in both
    P0 = forward_kinematics(plain.body_pose, plain.root_orient)
    P1 = forward_kinematics(out.reshape(-1, 63), plain.root_orient)
    for a, b in ((16, 18), (1, 4), (4, 7)):
        d0 = (P0[:, b] - P0[:, a]) / np.linalg.norm(P0[:, b] - P0[:, a], axis=-1, keepdims=True)
        d1 = (P1[:, b] - P1[:, a]) / np.linalg.norm(P1[:, b] - P1[:, a], axis=-1, keepdims=True)
        assert np.degrees(np.arccos(np.clip((d0 * d1).sum(-1), -1, 1))).max() < 0.01
