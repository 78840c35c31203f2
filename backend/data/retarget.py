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

Families are data: ``backend/data/families/*.json`` (:mod:`backend.data.families`, described in
``backend/data/README.md``); steps 2-3 are :func:`backend.data.retarget_plan.plan_retarget`, step 6 is
:mod:`backend.data.resample`.
"""


from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from dposer_core.kinematics_np import forward_kinematics
from dposer_core.skeleton import smpl_skeleton

from .bvh import BVHMotion, read_bvh
from .families import Family, detect_family, get_family
from .resample import normalize, resample_linear, resample_rotations
from .retarget_plan import N_BODY, SMPL_BONES, SMPL_NAMES, RetargetPlan, joint_point, plan_retarget

__all__ = ["SMPLMotion", "retarget_bvh", "retarget_file", "source_bone_directions", "FOOT_JOINT_HEIGHT"]

# Height of the lowest SMPL foot joint (ankle or toe joint) above the floor in contact frames, metres.
FOOT_JOINT_HEIGHT = 0.05


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


def _prepare(motion: BVHMotion, family: str | Family | None, drop_first_frame: bool | None
             ) -> tuple[Family, BVHMotion, RetargetPlan, np.ndarray, np.ndarray]:
    """Resolve the family, drop the T-pose frame if asked (None = the family's default), plan the
    retarget and run the source FK. Returns (family, motion, plan, G (T,J,3,3), P (T,J,3))."""
    fam = detect_family(motion.names) if family is None else (get_family(family) if isinstance(family, str) else family)
    drop = fam.drop_first_frame if drop_first_frame is None else drop_first_frame
    if drop and motion.num_frames > 1:
        motion = motion.slice(slice(1, None))
    plan = plan_retarget(motion, fam)
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
        Pj = forward_kinematics(aa0[:, 1:].reshape(T, 63), aa0[:, 0], trans)
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
        d = joint_point(P, G, motion, plan.end[j]) - P[:, plan.src[j]]
        if np.linalg.norm(d[0]) < 1e-9:
            continue
        dirs.append(normalize(d @ plan.C.T))
        pairs.append((SMPL_NAMES.index(bone[0]), SMPL_NAMES.index(bone[1])))
        names.append(name)
    return np.stack(dirs, axis=1), np.asarray(pairs), names
