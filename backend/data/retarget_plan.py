"""The retarget plan: how one family's skeleton maps onto SMPL, solved once per BVH skeleton (numpy + scipy).

Steps 2-3 of the method in :mod:`backend.data.retarget`: which source joint drives each SMPL joint 0..21,
and the constant rest alignment ``Q[j] = G_ref[s(j)]^T R_ref[j]`` from the family's reference pose
(bone directions for the limbs, rest to rest for the torso, neck, head, toes and collars), with the
family's twist and neutral-posture corrections folded in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from dposer_core.skeleton import smpl_skeleton

from .bvh import BVHMotion, bvh_forward_kinematics, guess_unit_scale
from .families import AXES, Family, family_axis_change
from .resample import normalize

__all__ = ["RetargetPlan", "plan_retarget", "joint_point", "SMPL_BONES", "SMPL_NAMES", "N_BODY"]

SMPL_NAMES: tuple[str, ...] = smpl_skeleton().names
N_BODY = 22  # pelvis + 21 body joints

# SMPL bone of each joint (joint -> end joint), used for rest alignment and quality checks.
# None: no bone in the 24-joint skeleton (head, toes); "up" = the head's up axis.
SMPL_BONES: dict[str, tuple[str, str] | str | None] = {
    "pelvis": None,
    "left_hip": ("left_hip", "left_knee"), "right_hip": ("right_hip", "right_knee"),
    "spine1": ("spine1", "spine2"),
    "left_knee": ("left_knee", "left_ankle"), "right_knee": ("right_knee", "right_ankle"),
    "spine2": ("spine2", "spine3"),
    "left_ankle": ("left_ankle", "left_foot"), "right_ankle": ("right_ankle", "right_foot"),
    "spine3": ("spine3", "neck"),
    "left_foot": None, "right_foot": None,
    "neck": ("neck", "head"),
    "left_collar": ("left_collar", "left_shoulder"), "right_collar": ("right_collar", "right_shoulder"),
    "head": "up",
    "left_shoulder": ("left_shoulder", "left_elbow"), "right_shoulder": ("right_shoulder", "right_elbow"),
    "left_elbow": ("left_elbow", "left_wrist"), "right_elbow": ("right_elbow", "right_wrist"),
    "left_wrist": ("left_wrist", "left_hand"), "right_wrist": ("right_wrist", "right_hand"),
}


# --------------------------------------------------------------------------- helpers

def _resolve(motion: BVHMotion, ref: str | list[str] | None) -> str | None:
    """First name of ``ref`` (a name or a list of alternatives) present in the motion."""
    if ref is None:
        return None
    alts = [ref] if isinstance(ref, str) else list(ref)
    for a in alts:
        base = a[:-4] if a.endswith("/End") else a
        if base in motion.names:
            if a.endswith("/End") and motion.index(base) not in motion.end_sites:
                continue
            return a
    return None


def joint_point(P: np.ndarray, G: np.ndarray, motion: BVHMotion, name: str, C: np.ndarray | None = None) -> np.ndarray:
    """(T,3) world position of joint ``name`` or of its End Site (``"<joint>/End"``).

    ``C``: the axis change already applied to ``P``/``G`` (End Site offsets are in file axes).
    """
    if name.endswith("/End"):
        j = motion.index(name[:-4])
        off = motion.end_sites[j] if C is None else C @ motion.end_sites[j]
        return P[:, j] + G[:, j] @ off
    return P[:, motion.index(name)]


def _rest_extent(motion: BVHMotion) -> float:
    """Largest extent (file units) of the zero-pose skeleton, End Sites included."""
    J = motion.num_joints
    _, P = bvh_forward_kinematics(motion.parents, np.broadcast_to(np.eye(3), (1, J, 3, 3)), motion.offsets[None])
    pts = [P[0]] + [P[0, j][None] + off[None] for j, off in motion.end_sites.items()]
    return float(np.max(np.ptp(np.concatenate(pts), axis=0)))


def _frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """(3,3) orthonormal frame with columns [primary, secondary_perp, primary x secondary_perp]."""
    a = normalize(primary)
    b = normalize(secondary - (secondary @ a) * a)
    return np.stack([a, b, np.cross(a, b)], axis=-1)


def _align(p_from: np.ndarray, p_to: np.ndarray, fwd_from: np.ndarray, fwd_to: np.ndarray,
           left_from: np.ndarray, left_to: np.ndarray) -> np.ndarray:
    """Rotation R with R p_from || p_to and the twist fixed by the body's forward (or left) axis."""
    pf, pt = normalize(p_from), normalize(p_to)
    use_left = abs(float(pf @ fwd_from)) > 0.8 or abs(float(pt @ fwd_to)) > 0.8
    s_from, s_to = (left_from, left_to) if use_left else (fwd_from, fwd_to)
    return _frame(pt, s_to) @ _frame(pf, s_from).T


# --------------------------------------------------------------------------- the plan

@dataclass
class RetargetPlan:
    """Resolved mapping of one family onto one BVH skeleton."""

    src: list[int | None]        # per SMPL joint 0..21: source joint index or None (constant local)
    end: list[str | None]        # per SMPL joint: source bone end ("name" or "name/End") or None
    Q: np.ndarray                # (22,3,3) rest alignment (neutral corrections folded in)
    null_local: np.ndarray       # (22,3,3) constant local rotation of unmapped joints (identity or "neutral_deg")
    C: np.ndarray                # (3,3) axis change
    scale: float                 # source units -> metres (times motion.scale)
    trans_scale: float           # leg-length ratio SMPL / source
    pelvis_src: int


def _reference_local(motion: BVHMotion, spec: dict[str, Any]) -> np.ndarray:
    """(1,J,3,3) local rotations of the family's reference pose ("zero" or per-joint Euler degrees)."""
    J = motion.num_joints
    loc = np.broadcast_to(np.eye(3), (1, J, 3, 3)).copy()
    ref = spec.get("reference_pose", "zero")
    if isinstance(ref, dict) and "globals" in ref:
        # World axes of each listed joint in a neutral T-pose, in the SMPL body frame; the others
        # keep SMPL-local identity. Converted to source axes: G_src = C^T G_smpl C.
        C = family_axis_change(spec)
        G = np.zeros((J, 3, 3))
        for j in range(J):
            name = motion.names[j]
            p = int(motion.parents[j])
            if name in ref["globals"]:
                cols = [np.asarray(AXES[a], dtype=np.float64) for a in ref["globals"][name]]
                Gw = np.stack(cols, axis=-1)
                if np.linalg.det(Gw) < 0.5:
                    raise ValueError(f"reference_pose.globals[{name!r}] is not a rotation")
                G[j] = C.T @ Gw @ C
            else:
                G[j] = G[p] if p >= 0 else np.eye(3)
            loc[0, j] = G[j] if p < 0 else G[p].T @ G[j]
        return loc
    if isinstance(ref, dict):
        for name, e in ref.items():
            if name in motion.names:
                j = motion.index(name)
                order = motion.rot_orders[j] or "ZXY"
                if isinstance(e, dict) and "quat_xyzw" in e:
                    loc[0, j] = Rotation.from_quat(e["quat_xyzw"]).as_matrix()
                else:
                    loc[0, j] = Rotation.from_euler(order.upper(), np.asarray(e)[:len(order)], degrees=True).as_matrix()
    return loc


def plan_retarget(motion: BVHMotion, family: Family) -> RetargetPlan:
    """Map ``family`` onto ``motion``'s skeleton: source joint and rest alignment ``Q`` per SMPL joint,
    axis change, units and the leg-length ratio for the translation."""
    spec = family.spec
    C = family.axis_change()
    unit = family.units_to_m if motion.scale == 1.0 else 1.0
    # A user's file may be in other units than the family usually is: trust the family's unit only
    # if it gives a human-sized skeleton, else guess from the skeleton's size.
    height = _rest_extent(motion) * unit
    if not 0.5 < height < 3.0:
        unit = guess_unit_scale(motion)
    joints_spec: dict[str, Any] = spec["joints"]
    src: list[int | None] = []
    end: list[str | None] = []
    for name in SMPL_NAMES[:N_BODY]:
        e = joints_spec.get(name)
        if e is None:
            src.append(None)
            end.append(None)
            continue
        s = _resolve(motion, e.get("source"))
        if s is None:
            if name == "pelvis":
                raise ValueError(f"family {family.name}: pelvis source {e.get('source')} not in BVH")
            src.append(None)
            end.append(None)
            continue
        src.append(motion.index(s))
        end.append(_resolve(motion, e.get("end")))

    # Reference pose FK in SMPL axes (scale irrelevant for directions).
    ref_loc = _reference_local(motion, spec)
    Gr, Pr = bvh_forward_kinematics(motion.parents, ref_loc, motion.offsets[None])
    Gr = C @ Gr @ C.T
    Pr = Pr @ C.T

    def pos(sj: str) -> np.ndarray:
        return joint_point(Pr, Gr, motion, sj, C)[0]

    # Body frame of the reference pose (source) vs SMPL rest (+X left, +Y up, +Z forward).
    pelvis_src = src[0]
    assert pelvis_src is not None
    lh, rh, nk = src[SMPL_NAMES.index("left_hip")], src[SMPL_NAMES.index("right_hip")], src[SMPL_NAMES.index("neck")]
    if lh is None or rh is None:
        raise ValueError(f"family {family.name}: hips must be mapped")
    left_s = normalize(Pr[0, lh] - Pr[0, rh])
    up_pt = Pr[0, nk] if nk is not None else Pr[0, src[SMPL_NAMES.index("spine3")] or pelvis_src]
    up_s = up_pt - Pr[0, pelvis_src]
    up_s = normalize(up_s - (up_s @ left_s) * left_s)
    fwd_s = np.cross(left_s, up_s)
    body_src = np.stack([left_s, up_s, fwd_s], axis=-1)  # columns
    ey = np.array([0.0, 1.0, 0.0])

    sk = smpl_skeleton()
    rest = sk.rest_joints
    # The same body frame measured on the SMPL rest skeleton (nearly, not exactly, the identity).
    left_m = normalize(rest[1] - rest[2])
    up_m = rest[12] - rest[0]
    up_m = normalize(up_m - (up_m @ left_m) * left_m)
    fwd_m = np.cross(left_m, up_m)
    body_smpl = np.stack([left_m, up_m, fwd_m], axis=-1)
    R0 = body_src @ body_smpl.T  # SMPL pelvis world rotation in the reference pose
    R_ref = np.zeros((N_BODY, 3, 3))
    Q = np.zeros((N_BODY, 3, 3))
    for j, name in enumerate(SMPL_NAMES[:N_BODY]):
        p = sk.parents[j]
        if j == 0:
            R_ref[0] = R0
        elif src[j] is None:
            R_ref[j] = R_ref[p]
        else:
            bone = SMPL_BONES[name]
            align = (joints_spec.get(name) or {}).get("align", "direction")
            if align == "neutral":
                # Neutral-to-neutral: in the reference pose this SMPL joint is at its rest (local
                # identity) although its bone then points elsewhere than the source bone.
                R_ref[j] = R_ref[p]
            elif end[j] is None or bone is None:
                # No matching bone: in the reference pose the joint is either upright in the world
                # ("body", e.g. the head, so it looks straight ahead) or SMPL-local identity ("parent").
                how = (joints_spec.get(name) or {}).get("ref", "body" if name == "head" else "parent")
                R_ref[j] = R0 if how == "body" else R_ref[p]
            else:
                d_src = pos(end[j]) - Pr[0, src[j]]
                if np.linalg.norm(d_src) < 1e-9:
                    R_ref[j] = R_ref[p]
                else:
                    if bone == "up":  # the head: upright in the body frame, then aligned
                        R_ref[j] = _align(R0 @ ey, d_src, fwd_s, fwd_s, left_s, left_s) @ R0
                        Q[j] = Gr[0, src[j]].T @ R_ref[j]
                        continue
                    d_smpl = rest[SMPL_NAMES.index(bone[1])] - rest[SMPL_NAMES.index(bone[0])]
                    R_ref[j] = _align(d_smpl, d_src, fwd_m, fwd_s, left_m, left_s)
        if src[j] is not None:
            Q[j] = Gr[0, src[j]].T @ R_ref[j]

    # Optional twist of a SMPL bone about its own rest direction (data: "twist_deg"), e.g. to put
    # the elbow's flexion axis where SMPL has it when a rig's zero pose has the upper arm rolled.
    # Bone directions (and so positions) do not change; only the split of twist between the joint
    # and its child does.
    for name, deg in (spec.get("twist_deg") or {}).items():
        j = SMPL_NAMES.index(name)
        bone = SMPL_BONES[name]
        if src[j] is None or not isinstance(bone, tuple) or not deg:
            continue
        d = normalize(rest[SMPL_NAMES.index(bone[1])] - rest[SMPL_NAMES.index(bone[0])])
        Q[j] = Q[j] @ Rotation.from_rotvec(np.radians(float(deg)) * d).as_matrix()

    # Neutral corrections (data): "standing_deg" = the SMPL-local rotation (rotation vector, degrees)
    # a neutral-aligned joint has in the rig's standing posture after plain rest-to-rest alignment
    # (measured with `retarget_report --calibrate-neutral`); "neutral_deg" = the SMPL-local rotation
    # that standing posture must map to (default: SMPL rest, identity), and the constant local rotation
    # of an unmapped (null) joint. With M_j = N_j^T M_parent A_j folded into Q_j, the standing posture
    # gives local A_j exactly; bone-direction-aligned joints keep M_j = I (their directions stay exact).
    stand = spec.get("standing_deg") or {}
    target = spec.get("neutral_deg") or {}

    def _rv(v: Any) -> np.ndarray:
        return Rotation.from_rotvec(np.radians(np.asarray(v, dtype=np.float64))).as_matrix() if v is not None \
            else np.eye(3)

    M = np.broadcast_to(np.eye(3), (N_BODY, 3, 3)).copy()
    null_local = np.broadcast_to(np.eye(3), (N_BODY, 3, 3)).copy()
    for j, name in enumerate(SMPL_NAMES[:N_BODY]):
        if j == 0:
            continue
        p = sk.parents[j]
        neutral = src[j] is None or (joints_spec.get(name) or {}).get("align") == "neutral"
        if not neutral:
            continue
        A = _rv(target.get(name))
        N = _rv(stand.get(name)) if src[j] is not None else np.eye(3)
        M[j] = N.T @ M[p] @ A
        if src[j] is None:
            null_local[j] = A
        else:
            Q[j] = Q[j] @ M[j]

    # Leg-length ratio (hip -> knee -> ankle) for the translation.
    kn, an = src[SMPL_NAMES.index("left_knee")], src[SMPL_NAMES.index("left_ankle")]
    trans_scale = 1.0
    if kn is not None and an is not None:
        src_leg = (np.linalg.norm(Pr[0, kn] - Pr[0, lh]) + np.linalg.norm(Pr[0, an] - Pr[0, kn])) * unit
        smpl_leg = np.linalg.norm(rest[4] - rest[1]) + np.linalg.norm(rest[7] - rest[4])
        if src_leg > 1e-6:
            trans_scale = float(smpl_leg / src_leg)
    return RetargetPlan(src, end, Q, null_local, C, unit, trans_scale, pelvis_src)

