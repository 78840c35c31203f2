"""Retarget BVH motion onto the SMPL body skeleton (numpy + scipy; no torch, no bpy).

Method (per frame, fully batched):

1. Source FK gives each source joint's world rotation ``G_src`` (T,Js,3,3) and position (T,Js,3).
   Both are moved into SMPL axes (+Y up, face +Z, +X = subject's left) with the family's constant
   axis change ``C`` and into metres with ``units_to_m``.
2. Every SMPL joint ``j`` (0..21) is either driven by one source joint ``s(j)`` (the joint whose world
   rotation carries the source bone that matches SMPL bone ``j -> child``; source joints in between
   that SMPL lacks are thereby folded in), or is ``null`` (SMPL local rotation stays identity, e.g.
   the collars CMU never keys).
3. Rest alignment per joint: in the family's *reference pose* (normally the zero pose of the BVH), the
   SMPL bone ``j`` must point along the source bone ``s(j) -> end(j)`` with the same twist relative
   to the body (secondary axis: the body's forward axis, or its left axis for bones that point
   forward such as the feet). That gives the SMPL world rotation ``R_ref[j]`` of the bone in the
   reference pose and the constant offset ``Q[j] = G_ref[s(j)]^T R_ref[j]``.
4. Then ``G_smpl[j](t) = G_src[s(j)](t) @ Q[j]`` and ``local[j] = G_smpl[parent]^T G_smpl[j]``.
   By construction every mapped SMPL bone's world direction equals its source bone's direction.
5. Root: ``root_orient = G_smpl[0]``; ``trans`` puts the SMPL pelvis at the source pelvis position
   (scaled by the SMPL/source leg-length ratio so the feet stay near the floor).
6. Resample to ``fps`` (slerp of the local rotations, linear translation).

Families are data: ``backend/data/families/*.json`` (see ``backend/data/README.md``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from dposer_core.skeleton import smpl_skeleton

from .bvh import BVHMotion, bvh_forward_kinematics, guess_unit_scale, read_bvh

__all__ = ["SMPLMotion", "Family", "load_families", "get_family", "detect_family", "retarget_bvh",
           "retarget_file", "smpl_fk_np", "resample_rotations", "SMPL_BONES", "source_bone_directions",
           "FAMILIES_DIR"]

FAMILIES_DIR = Path(__file__).resolve().parent / "families"
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

# Height of the lowest SMPL foot joint (ankle or toe joint) above the floor in contact frames, metres.
FOOT_JOINT_HEIGHT = 0.05

_AXES = {"+X": (1, 0, 0), "-X": (-1, 0, 0), "+Y": (0, 1, 0), "-Y": (0, -1, 0), "+Z": (0, 0, 1), "-Z": (0, 0, -1)}


@dataclass
class SMPLMotion:
    """SMPL motion in the SMPL native frame (metres, +Y up).

    Attributes:
        body_pose: (T,63) parent-relative axis-angle of SMPL joints 1..21.
        root_orient: (T,3) axis-angle global orientation of the pelvis.
        trans: (T,3) translation (SMPL convention: pelvis world = rest pelvis + trans).
        fps: frames per second.
        name: clip name (optional).
        family: the source skeleton family (optional).
    """

    body_pose: np.ndarray
    root_orient: np.ndarray
    trans: np.ndarray
    fps: float
    name: str = ""
    family: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.body_pose.shape[0])


# --------------------------------------------------------------------------- families

@dataclass(frozen=True)
class Family:
    """A skeleton family loaded from ``families/<name>.json``."""

    name: str
    spec: dict[str, Any]

    @property
    def units_to_m(self) -> float:
        return float(self.spec.get("units_to_m", 1.0))

    @property
    def drop_first_frame(self) -> bool:
        return bool(self.spec.get("drop_first_frame", False))

    def axis_change(self) -> np.ndarray:
        """(3,3) C with ``v_smpl = C @ v_src`` (from ``up_axis`` / ``forward_axis`` of the world)."""
        return family_axis_change(self.spec)

    def detect_score(self, names: list[str] | tuple[str, ...]) -> float:
        """Fraction of the family's signature joints present in ``names`` (best signature set)."""
        det = self.spec.get("detect", {})
        sets = det.get("any_of_sets") or [det.get("all_of", [])]
        have = set(names)
        best = 0.0
        for s in sets:
            if s:
                best = max(best, sum(n in have for n in s) / len(s))
        return best


def family_axis_change(spec: dict[str, Any]) -> np.ndarray:
    """(3,3) C with ``v_smpl = C @ v_src`` from a family spec's world ``up_axis`` / ``forward_axis``."""
    up = np.asarray(_AXES[spec.get("up_axis", "+Y")], dtype=np.float64)
    fwd = np.asarray(_AXES[spec.get("forward_axis", "+Z")], dtype=np.float64)
    left = np.cross(up, fwd)  # SMPL: X = Y x Z
    return np.stack([left, up, fwd])  # rows


@lru_cache(maxsize=8)
def _load_families_cached(directory: str) -> tuple[Family, ...]:
    fams = []
    for p in sorted(Path(directory).glob("*.json")):
        with open(p, encoding="utf-8") as f:
            spec = json.load(f)
        fams.append(Family(spec.get("name", p.stem), spec))
    return tuple(fams)


def load_families(directory: str | os.PathLike | None = None) -> dict[str, Family]:
    """All families in ``directory`` (default ``backend/data/families``), by name."""
    return {f.name: f for f in _load_families_cached(str(directory or FAMILIES_DIR))}


def get_family(name: str) -> Family:
    fams = load_families()
    if name not in fams:
        raise KeyError(f"unknown skeleton family {name!r}; known: {', '.join(sorted(fams))}")
    return fams[name]


def detect_family(names: list[str] | tuple[str, ...]) -> Family:
    """The family whose signature joints best match ``names``; ``ValueError`` if none fits."""
    best, score = None, 0.0
    for fam in load_families().values():
        s = fam.detect_score(names)
        if s > score:
            best, score = fam, s
    if best is None or score < float(best.spec.get("detect", {}).get("min_score", 0.9)):
        raise ValueError(f"no skeleton family matches this BVH (best score {score:.2f}); joints: "
                         f"{', '.join(names[:12])}...; add a JSON file to {FAMILIES_DIR}")
    return best


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


def _point(P: np.ndarray, G: np.ndarray, motion: BVHMotion, name: str, C: np.ndarray | None = None) -> np.ndarray:
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


def _normalize(v: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def _frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """(3,3) orthonormal frame with columns [primary, secondary_perp, primary x secondary_perp]."""
    a = _normalize(primary)
    b = _normalize(secondary - (secondary @ a) * a)
    return np.stack([a, b, np.cross(a, b)], axis=-1)


def _align(p_from: np.ndarray, p_to: np.ndarray, fwd_from: np.ndarray, fwd_to: np.ndarray,
           left_from: np.ndarray, left_to: np.ndarray) -> np.ndarray:
    """Rotation R with R p_from || p_to and the twist fixed by the body's forward (or left) axis."""
    pf, pt = _normalize(p_from), _normalize(p_to)
    use_left = abs(float(pf @ fwd_from)) > 0.8 or abs(float(pt @ fwd_to)) > 0.8
    s_from, s_to = (left_from, left_to) if use_left else (fwd_from, fwd_to)
    return _frame(pt, s_to) @ _frame(pf, s_from).T


def smpl_fk_np(body_pose: np.ndarray, root_orient: np.ndarray | None = None,
               trans: np.ndarray | None = None, num_joints: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Numpy SMPL FK (same convention as ``backend.engine.kinematics.forward_kinematics``).

    Args:
        body_pose: (T,63) axis-angle of joints 1..21.
        root_orient: (T,3) or None.
        trans: (T,3) or None.
        num_joints: 22 or 24 (hands get identity).

    Returns:
        joints (T,num_joints,3), global rotations (T,num_joints,3,3).
    """
    sk = smpl_skeleton()
    body_pose = np.asarray(body_pose, dtype=np.float64).reshape(-1, 63)
    T = body_pose.shape[0]
    ro = np.zeros((T, 3)) if root_orient is None else np.asarray(root_orient, dtype=np.float64).reshape(T, 3)
    aa = np.concatenate([ro[:, None], body_pose.reshape(T, 21, 3), np.zeros((T, num_joints - 22, 3))], axis=1)
    local = Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(T, num_joints, 3, 3)
    parents = np.asarray(sk.parents[:num_joints])
    off = sk.offsets()[:num_joints].copy()
    G, P = bvh_forward_kinematics(parents, local, off[None])
    if trans is not None:
        P = P + np.asarray(trans, dtype=np.float64).reshape(T, 1, 3)
    return P, G


def resample_rotations(quats: np.ndarray, src_fps: float, dst_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Slerp-resample rotation sequences.

    Args:
        quats: (T,K,4) scipy-order (x,y,z,w) unit quaternions sampled at ``src_fps``.

    Returns:
        (T2,K,4) quaternions at ``dst_fps`` covering the same duration, and the (T2,) fractional
        source-frame positions they were taken at (for resampling other channels linearly).
    """
    T = quats.shape[0]
    # BVH frame times are rounded (0.0333333, 0.00833333): snap rates within 0.01 % of an integer.
    if abs(src_fps - round(src_fps)) < 1e-4 * src_fps:
        src_fps = float(round(src_fps))
    if T == 0 or abs(src_fps - dst_fps) < 1e-6 * dst_fps:
        return quats.copy(), np.arange(T, dtype=np.float64)
    duration = (T - 1) / src_fps
    n2 = int(np.floor(duration * dst_fps + 1e-6)) + 1
    pos = np.arange(n2) * (src_fps / dst_fps)
    pos = np.minimum(pos, T - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, T - 1)
    a = (pos - i0)[:, None, None]
    q0, q1 = quats[i0], quats[i1]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    omega = np.arccos(dot)
    so = np.sin(omega)
    near = so < 1e-6
    so_safe = np.where(near, 1.0, so)
    w0 = np.where(near, 1.0 - a, np.sin((1.0 - a) * omega) / so_safe)
    w1 = np.where(near, a, np.sin(a * omega) / so_safe)
    q = w0 * q0 + w1 * q1
    return _normalize(q), pos


def resample_linear(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """(T,...) sampled at integer frames -> values at fractional frame positions ``pos`` (T2,)."""
    if x.shape[0] == 0:
        return x.copy()
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, x.shape[0] - 1)
    a = (pos - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    return (1 - a) * x[i0] + a * x[i1]


# --------------------------------------------------------------------------- retarget

@dataclass
class _Plan:
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
                cols = [np.asarray(_AXES[a], dtype=np.float64) for a in ref["globals"][name]]
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


def _plan(motion: BVHMotion, family: Family) -> _Plan:
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
        return _point(Pr, Gr, motion, sj, C)[0]

    # Body frame of the reference pose (source) vs SMPL rest (+X left, +Y up, +Z forward).
    pelvis_src = src[0]
    assert pelvis_src is not None
    lh, rh, nk = src[SMPL_NAMES.index("left_hip")], src[SMPL_NAMES.index("right_hip")], src[SMPL_NAMES.index("neck")]
    if lh is None or rh is None:
        raise ValueError(f"family {family.name}: hips must be mapped")
    left_s = _normalize(Pr[0, lh] - Pr[0, rh])
    up_pt = Pr[0, nk] if nk is not None else Pr[0, src[SMPL_NAMES.index("spine3")] or pelvis_src]
    up_s = up_pt - Pr[0, pelvis_src]
    up_s = _normalize(up_s - (up_s @ left_s) * left_s)
    fwd_s = np.cross(left_s, up_s)
    body_src = np.stack([left_s, up_s, fwd_s], axis=-1)  # columns
    ey = np.array([0.0, 1.0, 0.0])

    sk = smpl_skeleton()
    rest = sk.rest_joints
    # The same body frame measured on the SMPL rest skeleton (nearly, not exactly, the identity).
    left_m = _normalize(rest[1] - rest[2])
    up_m = rest[12] - rest[0]
    up_m = _normalize(up_m - (up_m @ left_m) * left_m)
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
        d = _normalize(rest[SMPL_NAMES.index(bone[1])] - rest[SMPL_NAMES.index(bone[0])])
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
    return _Plan(src, end, Q, null_local, C, unit, trans_scale, pelvis_src)


def _prepare(motion: BVHMotion, family: str | Family | None, drop_first_frame: bool | None
             ) -> tuple[Family, BVHMotion, _Plan, np.ndarray, np.ndarray]:
    """Resolve the family, drop the T-pose frame if asked (None = the family's default), plan the
    retarget and run the source FK. Returns (family, motion, plan, G (T,J,3,3), P (T,J,3))."""
    fam = detect_family(motion.names) if family is None else (get_family(family) if isinstance(family, str) else family)
    drop = fam.drop_first_frame if drop_first_frame is None else drop_first_frame
    if drop and motion.num_frames > 1:
        motion = motion.slice(slice(1, None))
    plan = _plan(motion, fam)
    G, P = motion.forward_kinematics()
    return fam, motion, plan, G, P


def retarget_bvh(motion: BVHMotion, family: str | Family | None = None, fps: float | None = 30.0,
                 drop_first_frame: bool | None = None, normalize_leg_length: bool = True,
                 name: str = "", floor: bool = True) -> SMPLMotion:
    """Retarget a BVH motion onto SMPL.

    Args:
        motion: a :class:`BVHMotion` (any unit scale; the family's ``units_to_m`` is used when the
            motion was read with ``scale=1``).
        family: family name, a :class:`Family`, or None to auto-detect from the joint names.
        fps: output frame rate (slerp resampling); None keeps the source rate.
        drop_first_frame: drop frame 0 (CMU's added T-pose); None = the family's default.
        normalize_leg_length: scale the root translation by SMPL leg length / source leg length.
        floor: shift the clip vertically so the feet touch y = 0 (see ``FOOT_JOINT_HEIGHT``);
            False keeps the source's own vertical placement (pelvis at the scaled source height).
        name: clip name stored in the result.

    Returns:
        :class:`SMPLMotion` with body_pose (T2,63), root_orient (T2,3), trans (T2,3) in SMPL axes.
    """
    fam, motion, plan, G, P = _prepare(motion, family, drop_first_frame)
    C = plan.C
    Gs = C @ G @ C.T                             # (T,Js,3,3) in SMPL axes
    T = Gs.shape[0]
    Gsmpl = np.zeros((T, N_BODY, 3, 3))
    sk = smpl_skeleton()
    for j in range(N_BODY):
        if plan.src[j] is None:
            Gsmpl[:, j] = Gsmpl[:, sk.parents[j]] @ plan.null_local[j]
        else:
            Gsmpl[:, j] = Gs[:, plan.src[j]] @ plan.Q[j]
    local = np.empty_like(Gsmpl)
    local[:, 0] = Gsmpl[:, 0]
    par = np.asarray(sk.parents[1:N_BODY])
    local[:, 1:] = np.swapaxes(Gsmpl[:, par], -1, -2) @ Gsmpl[:, 1:]

    pelvis = (P[:, plan.pelvis_src] @ C.T) * plan.scale
    if normalize_leg_length:
        pelvis = pelvis * plan.trans_scale
    trans = pelvis - sk.rest_joints[0]

    # Shared rotations (data: "share"): a rig joint that sits between two SMPL joints gives a fraction of
    # its local rotation to the SMPL parent; the child's world rotation (and every descendant) is unchanged.
    for sh in fam.spec.get("share") or []:
        a, b = SMPL_NAMES.index(sh["to"]), SMPL_NAMES.index(sh["from"])
        assert sk.parents[b] == a, f"share: {sh['to']} must be the parent of {sh['from']}"
        rv = Rotation.from_matrix(local[:, b]).as_rotvec()
        S = Rotation.from_rotvec(float(sh["fraction"]) * rv).as_matrix()
        local[:, a] = local[:, a] @ S
        local[:, b] = np.swapaxes(S, -1, -2) @ local[:, b]

    quats = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_quat().reshape(T, N_BODY, 4)
    if floor and T > 0:
        # Put the clip on the floor (y = 0): the lowest foot joint in the frames where the feet are
        # lowest (5th percentile, i.e. contact frames) sits FOOT_JOINT_HEIGHT above it.
        aa0 = Rotation.from_quat(quats.reshape(-1, 4)).as_rotvec().reshape(T, N_BODY, 3)
        Pj, _ = smpl_fk_np(aa0[:, 1:].reshape(T, 63), aa0[:, 0], trans, num_joints=22)
        low = Pj[:, [7, 8, 10, 11], 1].min(axis=1)
        trans = trans.copy()
        trans[:, 1] += FOOT_JOINT_HEIGHT - float(np.percentile(low, 5))
    src_fps = motion.fps
    if fps is not None and src_fps > 0:
        quats, pos = resample_rotations(quats, src_fps, fps)
        trans = resample_linear(trans, pos)
        out_fps = float(fps)
    else:
        out_fps = float(src_fps)
    aa = Rotation.from_quat(quats.reshape(-1, 4)).as_rotvec().reshape(-1, N_BODY, 3)
    return SMPLMotion(body_pose=aa[:, 1:].reshape(-1, 63).astype(np.float32),
                      root_orient=aa[:, 0].astype(np.float32), trans=trans.astype(np.float32),
                      fps=out_fps, name=name, family=fam.name)


def retarget_file(path: str | os.PathLike, family: str | Family | None = None, fps: float | None = 30.0,
                  **kwargs: Any) -> SMPLMotion:
    """``read_bvh`` + ``retarget_bvh`` (units from the family JSON)."""
    motion = read_bvh(path)
    return retarget_bvh(motion, family=family, fps=fps, name=Path(path).stem, **kwargs)


def source_bone_directions(motion: BVHMotion, family: str | Family | None = None,
                           drop_first_frame: bool | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """World bone directions of the source, in SMPL axes, for the mapped SMPL bones.

    Returns:
        dirs (T,K,3) unit source bone directions, smpl_pairs (K,2) SMPL (start, end) joint indices of
        the matching SMPL bones, and the K SMPL joint names (bone start). T = source frames (after
        the optional first-frame drop), not resampled.
    """
    fam, motion, plan, G, P = _prepare(motion, family, drop_first_frame)
    dirs, pairs, names = [], [], []
    for j, name in enumerate(SMPL_NAMES[:N_BODY]):
        bone = SMPL_BONES[name]
        if plan.src[j] is None or plan.end[j] is None or not isinstance(bone, tuple):
            continue
        d = _point(P, G, motion, plan.end[j]) - P[:, plan.src[j]]
        if np.linalg.norm(d[0]) < 1e-9:
            continue
        dirs.append(_normalize(d @ plan.C.T))
        pairs.append((SMPL_NAMES.index(bone[0]), SMPL_NAMES.index(bone[1])))
        names.append(name)
    return np.stack(dirs, axis=1), np.asarray(pairs), names
