"""Retarget quality report: ``python -m backend.data.retarget_report [--mocap DIR | FILES...] [--png OUT]``.

For every mapped SMPL bone (joint -> child) it measures the angle between the bone's world direction
in SMPL FK of the retargeted pose and the world direction of the matching source bone (source FK,
moved into SMPL axes), averaged over all frames; printed per bone and per group (legs, arms, spine,
neck). It also renders a side-by-side plot of source and SMPL skeletons for a few frames to a PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from dposer_core.kinematics_np import forward_kinematics
from dposer_core.skeleton import body_joint_names, smpl_skeleton

from backend import ROOT

from .bvh import BVHMotion, read_bvh
from .families import Family, detect_family, get_family
from .retarget import retarget_bvh, source_bone_directions
from .retarget_plan import SMPL_NAMES, plan_retarget

GROUPS: dict[str, tuple[str, ...]] = {
    "legs": ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"),
    "arms": ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist"),
    "collars": ("left_collar", "right_collar"),
    "spine": ("spine1", "spine2", "spine3"),
    "neck": ("neck",),
}
# Bone-direction targets: limbs only. Spine, neck, head, feet and collars are aligned rest to rest
# (their convention is checked against AMASS instead: :func:`convention_table`), so their direction
# error is reported but is the rest-shape difference between rig and SMPL, not a retarget error.
TARGET_DEG = {"legs": 5.0, "arms": 5.0}
CONVENTION_JOINTS = ("spine1", "spine2", "spine3", "neck", "head", "left_foot", "right_foot", "left_collar",
                     "right_collar")
AMASS_STATS_PATH = Path(__file__).resolve().parent / "amass_pose_stats.json"


def amass_stats() -> tuple[list[str], np.ndarray, np.ndarray]:
    """(joint names (21), mean (21,3), std (21,3)) of DPoser's AMASS training poses, radians
    (``amass_pose_stats.json``, a copy of ``shared/reference/amass-pose-stats.json``)."""
    d = json.loads(AMASS_STATS_PATH.read_text())
    return list(d["joints"]), np.asarray(d["mean"], np.float64), np.asarray(d["std"], np.float64)


def convention_stats(poses: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """Per body joint: mean and std (degrees, per axis-angle component) of ``poses`` (N,63), their
    distance from the AMASS mean in AMASS stds (``z``) and ``ok`` = every axis within 1 std."""
    names, mu, sd = amass_stats()
    p = np.degrees(np.asarray(poses, np.float64).reshape(-1, 21, 3))
    m, s = p.mean(0), p.std(0)
    z = (m - np.degrees(mu)) / np.degrees(sd)
    return {n: {"mean_deg": m[j].round(2).tolist(), "std_deg": s[j].round(2).tolist(),
                "z": z[j].round(2).tolist(), "ok": bool(np.all(np.abs(z[j]) <= 1.0))}
            for j, n in enumerate(names)}


def convention_table(groups: dict[str, np.ndarray], joints: tuple[str, ...] = CONVENTION_JOINTS) -> str:
    """Markdown table: per joint (rows) and group (columns, e.g. families / sources / 'all'), the
    largest |z| over the 3 axes (distance of the group's mean from the AMASS mean in AMASS stds) and
    pass (<= 1) / FAIL."""
    stats = {g: convention_stats(p) for g, p in groups.items() if len(p)}
    cols = list(stats)
    lines = ["| joint | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for j in joints:
        cells = []
        for g in cols:
            z = max(abs(v) for v in stats[g][j]["z"])
            cells.append(f"{z:.2f} {'ok' if z <= 1.0 else 'FAIL'}")
        lines.append(f"| {j} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bone_angle_errors(motion: BVHMotion, family: str | None = None,
                      poses_out: list[np.ndarray] | None = None) -> tuple[dict[str, float], int]:
    """Mean angle (degrees) per mapped SMPL bone between SMPL and source world bone directions.

    Args:
        poses_out: if given, the retargeted (T,63) body poses are appended to it.

    Returns ({smpl_joint_name: mean_deg}, number of frames compared).
    """
    sm = retarget_bvh(motion, family=family, fps=None)
    if poses_out is not None:
        poses_out.append(sm.body_pose)
    d_src, pairs, names = source_bone_directions(motion, family=family)
    P = forward_kinematics(sm.body_pose, sm.root_orient, sm.trans, num_joints=24)
    d = P[:, pairs[:, 1]] - P[:, pairs[:, 0]]
    d /= np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)
    cos = np.clip(np.sum(d * d_src, axis=-1), -1.0, 1.0)
    ang = np.degrees(np.arccos(cos))  # (T,K)
    return {n: float(a) for n, a in zip(names, ang.mean(0))}, int(ang.shape[0])


def group_errors(per_bone: dict[str, float]) -> dict[str, float]:
    """Mean over the bones of each group present in ``per_bone``."""
    out = {}
    for g, members in GROUPS.items():
        vals = [per_bone[m] for m in members if m in per_bone]
        if vals:
            out[g] = float(np.mean(vals))
    return out


HINGES: dict[str, tuple[str, int, tuple[str, ...]]] = {
    # hinge joint -> (parent whose twist sets its axis, SMPL hinge axis, the chain rolled together)
    "left_elbow": ("left_shoulder", 1, ("left_shoulder", "left_elbow", "left_wrist")),
    "right_elbow": ("right_shoulder", 1, ("right_shoulder", "right_elbow", "right_wrist")),
}


def hinge_axis_twist(body_pose: np.ndarray, joint: str, axis: int, min_deg: float = 20.0) -> float:
    """Angle (degrees) between a hinge joint's principal rotation axis and SMPL's hinge axis, measured
    about the parent bone (X for the arms): the ``twist_deg`` of the parent that removes it.

    Args:
        body_pose: (N,63) poses of one family.
        joint: 'left_elbow' or 'right_elbow'.
        axis: index of the SMPL hinge axis (1 = Y for the elbows).
    """
    aa = body_pose.reshape(-1, 21, 3)[:, body_joint_names().index(joint)].astype(np.float64)
    ang = np.linalg.norm(aa, axis=-1)
    v = aa[ang > np.radians(min_deg)]
    if len(v) < 10:
        return 0.0
    w, U = np.linalg.eigh(v.T @ v)
    ax = U[:, -1] * np.sign(U[axis, -1])
    # elbows: the axis lies in the Y-Z plane; its angle from +Y about +X
    return float(np.degrees(np.arctan2(ax[2], ax[1])))


def calibrate_twists(files: list[Path], family: str) -> dict[str, float]:
    """Suggested ``twist_deg`` for ``family`` from its clips, given the twists already in the family
    JSON (returns the totals to write there): the roll of each arm chain (shoulder, elbow, wrist about
    their own rest directions) that puts the elbow's flexion axis onto SMPL's Y axis."""
    fam = get_family(family)
    poses = []
    for f in files:
        m = read_bvh(f)
        if detect_family(m.names).name == family:
            poses.append(retarget_bvh(m, fam, fps=30.0).body_pose)
    if not poses:
        return {}
    bp = np.concatenate(poses)
    have = fam.spec.get("twist_deg") or {}
    out = {}
    for joint, (parent, axis, chain) in HINGES.items():
        psi = hinge_axis_twist(bp, joint, axis)
        sign = 1.0 if joint.startswith("left") else -1.0
        total = round(float(have.get(parent, 0.0)) + sign * psi, 1)
        for c in chain:  # the whole arm is rolled in the rig's zero pose: roll every bone of it
            out[c] = total
    return out


NEUTRAL_JOINTS = ("spine1", "spine2", "spine3", "neck", "head", "left_foot", "right_foot", "left_collar",
                  "right_collar")


def standing_frames(body_pose: np.ndarray, root_orient: np.ndarray, max_leg_deg: float = 25.0,
                    max_tilt_deg: float = 25.0, arm_down: float = 0.6) -> np.ndarray:
    """(T,) bool: frames of a neutral standing posture: pelvis upright (within ``max_tilt_deg``), hips
    and knees within ``max_leg_deg`` of straight, both upper arms hanging (world direction y below
    ``-arm_down``). Only bone-direction-aligned joints and the root decide, so the test does not
    depend on the neutral corrections it is used to measure."""
    bn = body_joint_names()
    aa = np.asarray(body_pose, np.float64).reshape(-1, 21, 3)
    legs = [bn.index(n) for n in ("left_hip", "right_hip", "left_knee", "right_knee")]
    ok = np.all(np.degrees(np.linalg.norm(aa[:, legs], axis=-1)) < max_leg_deg, axis=1)
    up = Rotation.from_rotvec(np.asarray(root_orient, np.float64)).as_matrix()[:, 1, 1]
    ok &= up > np.cos(np.radians(max_tilt_deg))
    P = forward_kinematics(body_pose, root_orient)
    for sh, el in ((16, 18), (17, 19)):
        d = P[:, el] - P[:, sh]
        d /= np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9)
        ok &= d[:, 1] < -arm_down
    return ok


def calibrate_neutral(files: list[Path], family: str, log=print) -> dict[str, list[float]]:
    """Suggested ``standing_deg`` for ``family``: per neutral-aligned joint with a source, the mean
    SMPL-local rotation (rotation vector, degrees) over the standing frames (:func:`standing_frames`)
    of its clips, retargeted with plain rest-to-rest alignment (the family's ``standing_deg``
    ignored; its ``neutral_deg`` targets too, so the values are what the rig's standing posture is)."""
    fam = get_family(family)
    spec = {k: v for k, v in fam.spec.items() if k not in ("standing_deg", "neutral_deg")}
    plain = Family(fam.name, spec)
    bps, ros = [], []
    for f in files:
        m = read_bvh(f)
        if detect_family(m.names).name != family:
            continue
        sm = retarget_bvh(m, plain, fps=30.0)
        sel = standing_frames(sm.body_pose, sm.root_orient)
        bps.append(sm.body_pose[sel])
    bp = np.concatenate(bps) if bps else np.zeros((0, 63))
    log(f"{family}: {len(bp)} standing frames from {len(bps)} clips")
    if len(bp) < 10:
        return {}
    aa = bp.reshape(-1, 21, 3).astype(np.float64)
    bn = body_joint_names()
    out = {}
    for name in NEUTRAL_JOINTS:
        e = fam.spec["joints"].get(name)
        if not e or e.get("align") != "neutral":
            continue
        mean = Rotation.from_rotvec(aa[:, bn.index(name)]).mean().as_rotvec()
        out[name] = [round(float(x), 1) for x in np.degrees(mean)]
    return out


def report(files: list[Path], max_files_per_family: int | None = None) -> dict[str, dict[str, float]]:
    """Frame-weighted mean bone errors per family over ``files``. Returns {family: {bone|group: deg}}."""
    acc: dict[str, dict[str, list[float]]] = {}
    counts: dict[str, int] = {}
    poses: dict[str, list[np.ndarray]] = {}
    for f in files:
        m = read_bvh(f)
        fam = detect_family(m.names).name
        if max_files_per_family is not None and counts.get(fam, 0) >= max_files_per_family:
            continue
        counts[fam] = counts.get(fam, 0) + 1
        per, n = bone_angle_errors(m, fam, poses.setdefault(fam, []))
        a = acc.setdefault(fam, {})
        for k, v in per.items():
            a.setdefault(k, []).append(v * n)
        a.setdefault("__n", []).append(n)
    out = {}
    for fam, a in acc.items():
        n = float(np.sum(a.pop("__n")))
        per = {k: float(np.sum(v) / n) for k, v in a.items()}
        per.update({f"[{g}]": v for g, v in group_errors(per).items()})
        bp = np.concatenate(poses[fam])
        per["(elbow roll)"] = float(np.mean([abs(hinge_axis_twist(bp, j, HINGES[j][1])) for j in HINGES]))
        per["(frames)"] = n
        out[fam] = per
    return out


def format_table(results: dict[str, dict[str, float]]) -> str:
    """Text table: one row per bone / group, one column per family."""
    fams = sorted(results)
    rows = [n for n in SMPL_NAMES if any(n in results[f] for f in fams)] + \
        [f"[{g}]" for g in GROUPS if any(f"[{g}]" in results[f] for f in fams)] + ["(elbow roll)", "(frames)"]
    w = max(12, *(len(f) for f in fams)) if fams else 12
    lines = ["mean bone-direction error, degrees (SMPL FK vs source FK)",
             f"{'bone':<16}" + "".join(f"{f:>{w + 2}}" for f in fams)]
    for r in rows:
        lines.append(f"{r:<16}" + "".join(
            (f"{results[f][r]:>{w + 2}.0f}" if r == "(frames)" else f"{results[f][r]:>{w + 2}.2f}")
            if r in results[f] else f"{'-':>{w + 2}}" for f in fams))
    lines.append("targets: limbs <= 5 deg (spine, neck, collars: aligned rest to rest, no direction target). (elbow roll): angle between the elbow's\n"
                 "principal flexion axis and SMPL's (a twist check the direction error cannot see).")
    return "\n".join(lines)


def plot_comparison(motion: BVHMotion, out_png: str | os.PathLike, family: str | None = None,
                    n_frames: int = 4, title: str = "") -> Path:
    """Render source (left of each pair) and SMPL (right) skeletons, front and side views, to a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fam = detect_family(motion.names) if family is None else get_family(family)
    sm = retarget_bvh(motion, family=fam, fps=None)
    mo = motion.slice(slice(1, None)) if fam.drop_first_frame and motion.num_frames > 1 else motion
    plan = plan_retarget(mo, fam)
    G, P = mo.forward_kinematics()
    Ps = (P @ plan.C.T) * plan.scale * plan.trans_scale
    Pj = forward_kinematics(sm.body_pose, sm.root_orient, sm.trans, num_joints=24)
    T = Pj.shape[0]
    frames = np.linspace(0, T - 1, n_frames).astype(int)
    sp = smpl_skeleton().parents
    fig, axes = plt.subplots(2, n_frames, figsize=(3.2 * n_frames, 7.5))
    for c, t in enumerate(frames):
        for r, (ax_h, lab) in enumerate(((0, "front (X-Y)"), (2, "side (Z-Y)"))):
            ax = axes[r, c]
            off = np.array([0.0, 0.0, 0.0])
            center_s = Ps[t, plan.pelvis_src]
            center_j = Pj[t, 0]
            for j, p in enumerate(mo.parents):
                if p >= 0 and not (p == 0 and plan.pelvis_src != 0):  # skip a floor anchor's bone
                    a, b = Ps[t, p] - center_s, Ps[t, j] - center_s
                    ax.plot([a[ax_h] - 0.5, b[ax_h] - 0.5], [a[1], b[1]], "-", color="tab:blue", lw=1.5)
            for j in range(1, 24):
                a, b = Pj[t, sp[j]] - center_j + off, Pj[t, j] - center_j + off
                name = SMPL_NAMES[j]
                col = "tab:red" if name.startswith("left") else ("tab:green" if name.startswith("right") else "k")
                ax.plot([a[ax_h] + 0.5, b[ax_h] + 0.5], [a[1], b[1]], "-", color=col, lw=2)
            ax.set_aspect("equal")
            ax.set_xlim(-1.3, 1.3)
            ax.set_ylim(-1.1, 0.9)
            ax.set_title(f"frame {t} {lab}", fontsize=8)
            ax.tick_params(labelsize=6)
    fig.suptitle(f"{title or fam.name}: source (blue, left) vs SMPL (right; red=left side)", fontsize=10)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="BVH files (default: the shipped test clips + --mocap)")
    ap.add_argument("--mocap", default=None, help="unpacked mocap dir (searched recursively for .bvh)")
    ap.add_argument("--max-per-family", type=int, default=20)
    ap.add_argument("--png", default=None, help="write a comparison plot per family here (dir)")
    ap.add_argument("--calibrate", action="store_true",
                    help="print suggested twist_deg per family (elbow flexion axis onto SMPL's)")
    ap.add_argument("--calibrate-neutral", action="store_true",
                    help="print suggested standing_deg per family (standing posture -> SMPL neutral)")
    args = ap.parse_args(argv)
    files = [Path(f) for f in args.files]
    if args.mocap:
        files += sorted(Path(args.mocap).rglob("*.bvh"))
    if not files:
        files = sorted((ROOT / "tests" / "data").glob("*.bvh"))
    if not files:
        print("no BVH files given", file=sys.stderr)
        return 2
    if args.calibrate:
        fams = sorted({detect_family(read_bvh(f).names).name for f in files})
        for fam in fams:
            print(f"{fam}: twist_deg {calibrate_twists(files, fam)}")
    if args.calibrate_neutral:
        fams = sorted({detect_family(read_bvh(f).names).name for f in files})
        for fam in fams:
            print(f'{fam}: "standing_deg": {json.dumps(calibrate_neutral(files, fam))}')
    res = report(files, args.max_per_family)
    print(format_table(res))
    if args.png:
        done = set()
        for f in files:
            m = read_bvh(f)
            fam = detect_family(m.names).name
            if fam in done:
                continue
            done.add(fam)
            out = plot_comparison(m, Path(args.png) / f"retarget_{fam}.png", fam, title=f"{fam}: {f.name}")
            print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
