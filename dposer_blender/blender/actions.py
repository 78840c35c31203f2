"""Pose-bone animation as actions: bulk write / read of bone rotations and the root location, single-pose
keys, SMPL motions (converted with :mod:`.rig`), and the pose an action gives at a frame.

The F-curves themselves (slotted actions on 4.4+, the one bulk key writer) are :mod:`.fcurves`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from ..dposer_core.constants import NUM_JOINTS
from . import rig as _rig
from .fcurves import (LOC_PATH, ROT_PATH, action_fcurves, action_slot_for, channelbag, ensure_action, fcurve,
                      read_keys, uses_slotted_actions, write_keys)


@dataclass
class Motion:
    """Pose-bone animation read from / written to an action.

    Attributes:
        frames: (T,) float frame numbers.
        quats: (T,B,4) float rotation_quaternion per bone (w, x, y, z), float32 when read back.
        bone_names: the B bone names, in the order of ``quats``.
        location: (T,3) root bone location or None.
        root_bone: name of the bone whose location is keyed (or None).
    """

    frames: np.ndarray
    quats: np.ndarray
    bone_names: tuple[str, ...]
    location: np.ndarray | None = None
    root_bone: str | None = None


# --------------------------------------------------------------------------- write / read

def write_action(obj: Any, quats: np.ndarray, bone_names: Sequence[str], frames: Iterable[float] | None = None,
                 frame_start: float = 1.0, location: np.ndarray | None = None, root_bone: str | None = None,
                 action: Any = None, name: str | None = None, key_type: str | None = None,
                 interpolation: str = "LINEAR", assign: bool = True) -> Any:
    """Write a motion into an action in one pass; returns the action.

    Args:
        obj: the armature object (its slot / animation data is used; rotation modes set to QUATERNION).
        quats: (T,B,4) pose-bone quaternions (w, x, y, z), B = len(bone_names) (e.g. 21 or 24).
        bone_names: bone per column of ``quats``.
        frames: (T,) frame numbers; default ``frame_start + arange(T)``.
        location: optional (T,3) location of ``root_bone`` (default: the first bone name).
        action: write into this action (existing F-curves of the written channels are replaced, other
            channels are kept); default a new action called ``name``.
        key_type: keyframe type for all written keys, e.g. ``generated_key_type()``; None keeps 'KEYFRAME'.
        interpolation: 'LINEAR', 'BEZIER' or 'CONSTANT'.
        assign: assign the action (and slot) to ``obj``. Without it a new action is still given a slot
            for ``obj`` (5.x) but ``obj``'s animation data is left as it was.
    """
    q = np.asarray(quats, dtype=np.float64)
    if q.ndim != 3 or q.shape[-1] != 4 or q.shape[1] != len(bone_names):
        raise ValueError(f"quats must be (T,{len(bone_names)},4), got {q.shape}")
    if not np.all(np.isfinite(q)):
        raise ValueError("quats contain NaN or inf")
    T = q.shape[0]
    fr = np.arange(T, dtype=np.float64) + frame_start if frames is None else np.asarray(list(frames), np.float64)
    if fr.shape != (T,):
        raise ValueError(f"frames must have {T} entries, got {fr.shape}")
    loc = None
    if location is not None:
        loc = np.asarray(location, dtype=np.float64)
        if loc.shape != (T, 3) or not np.all(np.isfinite(loc)):
            raise ValueError(f"location must be a finite (T,3)=({T},3) array, got {loc.shape}")
        root_bone = root_bone or bone_names[0]

    prev_action = prev_slot = None
    if obj.animation_data is not None:
        prev_action = obj.animation_data.action
        prev_slot = obj.animation_data.action_slot if uses_slotted_actions() else None
    action, slot = ensure_action(obj, action, name)
    cb = channelbag(action, slot, create=True)
    for b, bone in enumerate(bone_names):
        pb = obj.pose.bones.get(bone)
        if pb is not None:
            pb.rotation_mode = 'QUATERNION'
        path = ROT_PATH.format(bone)
        for i in range(4):
            write_keys(fcurve(cb, path, i, bone, fresh=True), fr, q[:, b, i], interpolation, key_type)
    if loc is not None:
        path = LOC_PATH.format(root_bone)
        for i in range(3):
            write_keys(fcurve(cb, path, i, root_bone, fresh=True), fr, loc[:, i], interpolation, key_type)
    if not assign:
        ad = obj.animation_data
        ad.action = prev_action
        if prev_action is not None and uses_slotted_actions() and prev_slot is not None:
            ad.action_slot = prev_slot
    return action


def read_action(action: Any, bone_names: Sequence[str], obj: Any = None, root_bone: str | None = None,
                slot: Any = None) -> Motion:
    """Read pose-bone quaternions (and the root location) from an action.

    Frames are the sorted union of the key frames of the rotation / location F-curves; an F-curve whose
    keys are exactly on those frames is read with ``foreach_get`` (bit-exact), others are evaluated.
    Missing channels read as identity rotation / zero location. ``location`` is None when no location
    F-curve of ``root_bone`` (default: first bone name) exists.
    """
    slot = slot if slot is not None else action_slot_for(obj, action)
    cb = channelbag(action, slot) if uses_slotted_actions() else action
    root_bone = root_bone or bone_names[0]
    curves: dict[tuple[str, int], Any] = {}
    if cb is not None:
        for fc in cb.fcurves:
            curves[(fc.data_path, fc.array_index)] = fc

    wanted = [(ROT_PATH.format(b), i) for b in bone_names for i in range(4)] + \
             [(LOC_PATH.format(root_bone), i) for i in range(3)]
    data = {k: read_keys(curves[k]) for k in wanted if k in curves}
    frames = np.unique(np.concatenate([f for f, _ in data.values()])) if data else np.zeros(0, np.float32)
    T = len(frames)

    def column(k: tuple[str, int], default: float) -> np.ndarray:
        if k not in data:
            return np.full(T, default, dtype=np.float32)
        f, v = data[k]
        if len(f) == T and np.array_equal(f, frames):
            return v
        fc = curves[k]
        return np.array([fc.evaluate(float(x)) for x in frames], dtype=np.float32)

    quats = np.empty((T, len(bone_names), 4), dtype=np.float32)
    for b, bone in enumerate(bone_names):
        for i in range(4):
            quats[:, b, i] = column((ROT_PATH.format(bone), i), 1.0 if i == 0 else 0.0)
    loc = None
    if any((LOC_PATH.format(root_bone), i) in data for i in range(3)):
        loc = np.stack([column((LOC_PATH.format(root_bone), i), 0.0) for i in range(3)], axis=-1)
    return Motion(frames.astype(np.float64), quats, tuple(bone_names), loc, root_bone if loc is not None else None)


def key_pose(obj: Any, frame: float, bone_names: Sequence[str] | None = None, location_bone: str | None = None,
             key_type: str | None = None, group: bool = True) -> int:
    """Key the current ``rotation_quaternion`` of ``bone_names`` (default all pose bones) and, if given, the
    ``location`` of ``location_bone`` at ``frame``, with keyframe type ``key_type`` (default 'KEYFRAME').
    Works on 4.2 and 5.x (``keyframe_insert`` creates the action / slot / channelbag as needed).
    Returns the number of F-curve keys written."""
    kt = key_type or 'KEYFRAME'
    names = list(bone_names) if bone_names is not None else [pb.name for pb in obj.pose.bones]
    n = 0
    for bone in names:
        pb = obj.pose.bones[bone]
        if pb.rotation_mode != 'QUATERNION':
            q = pb.matrix_basis.to_3x3().normalized().to_quaternion()
            pb.rotation_mode = 'QUATERNION'
            pb.rotation_quaternion = q
        pb.keyframe_insert("rotation_quaternion", frame=float(frame), group=bone if group else "", keytype=kt)
        n += 4
    if location_bone is not None:
        obj.pose.bones[location_bone].keyframe_insert("location", frame=float(frame),
                                                      group=location_bone if group else "", keytype=kt)
        n += 3
    return n


# --------------------------------------------------------------------------- SMPL-level convenience

def write_smpl_motion(obj: Any, body_pose: np.ndarray, root_orient: np.ndarray | None = None,
                      trans: np.ndarray | None = None, frame_start: float = 1.0,
                      frames: Iterable[float] | None = None, floor_based_trans: bool = False,
                      action: Any = None, name: str | None = None, key_type: str | None = None,
                      interpolation: str = "LINEAR", assign: bool = True, rig: Any = None) -> Any:
    """Convert an SMPL motion with :mod:`.rig` and write it in one pass (:func:`write_action`).

    Args:
        obj: an SMPL-like armature object.
        body_pose: (T,63) or (T,21,3) axis-angle; root_orient: (T,3) or None (the pelvis is then keyed
            with identity); trans: (T,3) or None (no location keys).
        floor_based_trans: ``trans`` is floor-based (AMASS / the backend's BVH import, feet on SMPL y = 0):
            subtract the armature's floor lift (``rig.motion_trans_to_rig``).
        Other arguments as in :func:`write_action`. All 24 bones are keyed (hands with identity).
    Returns:
        the action.
    """
    rig = rig or _rig.SMPLRig.from_armature(obj)
    bp = np.asarray(body_pose, dtype=np.float64)
    T = bp.shape[0]
    if root_orient is None:
        root_orient = np.zeros((T, 3))
    t = None
    if trans is not None:
        t = _rig.motion_trans_to_rig(trans, obj) if floor_based_trans else np.asarray(trans, dtype=np.float64)
    quats, loc = _rig.pose_to_bone_data(bp, root_orient, t, rig)
    present = rig.present()
    return write_action(obj, quats[:, present], [rig.bone_names[j] for j in present], frames=frames,
                        frame_start=frame_start, location=loc, root_bone=rig.bone_names[0], action=action,
                        name=name, key_type=key_type, interpolation=interpolation, assign=assign)


def read_smpl_motion(obj: Any, action: Any = None, floor_based_trans: bool = False,
                     rig: Any = None) -> dict[str, np.ndarray]:
    """Read an action (default: ``obj``'s active one) back as SMPL: dict(frames (T,), body_pose (T,63),
    root_orient (T,3), trans (T,3)); ``trans`` is zero when the pelvis location is not keyed."""
    rig = rig or _rig.SMPLRig.from_armature(obj)
    if action is None:
        if obj.animation_data is None or obj.animation_data.action is None:
            raise ValueError(f"'{obj.name}' has no active action")
        action = obj.animation_data.action
    present = rig.present()
    m = read_action(action, [rig.bone_names[j] for j in present], obj, root_bone=rig.bone_names[0])
    T = len(m.frames)
    quats = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (T, NUM_JOINTS, 1))
    quats[:, present] = m.quats
    body, root, trans = _rig.bone_data_to_pose(quats, m.location, rig)
    if floor_based_trans:
        trans = _rig.rig_trans_to_motion(trans, obj)
    if not np.all(np.isfinite(quats)) or not np.all(np.isfinite(trans)):
        raise ValueError(f"action '{action.name}' contains NaN or inf values")
    return {"frames": m.frames, "body_pose": body.reshape(T, 63), "root_orient": root, "trans": trans}


def key_smpl_pose(obj: Any, frame: float, body_pose: np.ndarray, root_orient: np.ndarray | None = None,
                  trans: np.ndarray | None = None, key_type: str | None = None, rig: Any = None,
                  joints: Sequence[int] | None = None) -> int:
    """Apply one SMPL pose to ``obj`` and key it at ``frame`` (rotations of the mapped bones, or only of
    SMPL joint indices ``joints``; the pelvis location too when ``trans`` is given). Returns keys written."""
    rig = rig or _rig.SMPLRig.from_armature(obj)
    _rig.apply_smpl_pose(obj, body_pose, root_orient, trans, rig, joints=joints)
    idx = rig.present() if joints is None else [j for j in joints if rig.bone_names[j] is not None]
    return key_pose(obj, frame, [rig.bone_names[j] for j in idx],
                    location_bone=rig.bone_names[0] if trans is not None else None, key_type=key_type)


def pose_quats_at(obj: Any, action: Any, frame: float, rig: _rig.SMPLRig) -> tuple[np.ndarray, np.ndarray | None]:
    """Pose-bone quaternions (24,4) and pelvis location (3,) or None, evaluated from ``action`` at ``frame``
    (channels without an F-curve: the bone's current value). No scene change. The values may hold NaN
    when the action does."""
    curves = {(fc.data_path, fc.array_index): fc for fc in action_fcurves(action, obj)}
    cur_q, cur_loc = _rig.read_pose_quats(obj, rig)
    q = cur_q.copy()
    for j in rig.present():
        path = ROT_PATH.format(rig.bone_names[j])
        for i in range(4):
            fc = curves.get((path, i))
            if fc is not None:
                q[j, i] = fc.evaluate(float(frame))
    loc = None
    lp = LOC_PATH.format(rig.bone_names[0])
    if any((lp, i) in curves for i in range(3)):
        loc = cur_loc.copy()
        for i in range(3):
            fc = curves.get((lp, i))
            if fc is not None:
                loc[i] = fc.evaluate(float(frame))
    return q, loc


__all__ = ["Motion", "write_action", "read_action", "key_pose", "write_smpl_motion", "read_smpl_motion",
           "key_smpl_pose", "pose_quats_at"]
