"""Bulk action writing / reading for pose-bone quaternions and the root (pelvis) location.

One pass: every F-curve is created once, gets ``keyframe_points.add(n)`` and a single
``foreach_set("co", ...)`` (plus interpolation and key type), then ``fcurve.update()``.

Blender API differences handled here:

* 4.4+ (and required on 5.x): *slotted actions*. The action gets a slot for the object
  (``action.slots.new('OBJECT', name)``), a layer with a keyframe strip, and the F-curves live in the
  strip's channelbag for that slot (``strip.channelbag(slot, ensure=True)``). The slot is assigned with
  ``animation_data.action_slot``.
* 4.2 / 4.3: legacy ``action.fcurves`` (``action.fcurves.new(data_path, index=i, action_group=bone)``).

Keyframe type ``'GENERATED'`` exists on both 4.2 and 5.0 (:func:`generated_key_type` tells).
Values are stored by Blender as float32, so a write/read round trip is bit-exact for float32 input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

ROT_PATH = 'pose.bones["{}"].rotation_quaternion'
LOC_PATH = 'pose.bones["{}"].location'

_INTERP = {"CONSTANT": 0, "LINEAR": 1, "BEZIER": 2}


def uses_slotted_actions() -> bool:
    """True on Blender 4.4+ (slotted actions; the legacy ``action.fcurves`` is gone in 5.0)."""
    import bpy

    return bpy.app.version >= (4, 4, 0)


def key_type_value(name: str) -> int:
    """Integer value of keyframe type ``name`` (for ``foreach_set("type", ...)``); ``KeyError`` if unknown."""
    import bpy

    items = bpy.types.Keyframe.bl_rna.properties["type"].enum_items
    return int(items[name].value)


def generated_key_type() -> str:
    """'GENERATED' when this Blender has that keyframe type, else 'KEYFRAME'."""
    import bpy

    items = bpy.types.Keyframe.bl_rna.properties["type"].enum_items
    return "GENERATED" if "GENERATED" in items.keys() else "KEYFRAME"


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


# --------------------------------------------------------------------------- channel access

def ensure_action(obj: Any, action: Any = None, name: str | None = None) -> tuple[Any, Any]:
    """Assign ``action`` (or a new action ``name``) to ``obj``; returns (action, slot) (slot None on 4.2/4.3)."""
    import bpy

    if action is None:
        action = bpy.data.actions.new(name or f"{obj.name}Action")
    ad = obj.animation_data or obj.animation_data_create()
    if ad.action != action:
        ad.action = action
    slot = None
    if uses_slotted_actions():
        slot = ad.action_slot
        if slot is None:
            cands = [s for s in action.slots if s.target_id_type in ('OBJECT', 'UNSPECIFIED')]
            slot = cands[0] if cands else action.slots.new(id_type='OBJECT', name=obj.name)
            ad.action_slot = slot
    return action, slot


def channelbag(action: Any, slot: Any, create: bool = False) -> Any:
    """The F-curve container of ``action`` for ``slot``: a channelbag on 4.4+, the action itself on 4.2/4.3."""
    if not uses_slotted_actions():
        return action
    if slot is None:
        return None
    for layer in action.layers:
        for strip in layer.strips:
            cb = strip.channelbag(slot)
            if cb is not None:
                return cb
    if not create:
        return None
    layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
    strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type='KEYFRAME')
    return strip.channelbag(slot, ensure=True)


def action_slot_for(obj: Any, action: Any) -> Any:
    """The slot ``obj`` uses for ``action`` (its assigned slot, else the first OBJECT slot); None on 4.2/4.3."""
    if not uses_slotted_actions():
        return None
    ad = obj.animation_data if obj is not None else None
    if ad is not None and ad.action == action and ad.action_slot is not None:
        return ad.action_slot
    for s in action.slots:
        if s.target_id_type in ('OBJECT', 'UNSPECIFIED'):
            return s
    return None


def _fcurves(container: Any) -> Any:
    return container.fcurves


def _new_fcurve(container: Any, data_path: str, index: int, group: str) -> Any:
    """Create (or empty) the F-curve ``data_path[index]`` in ``container``, in group ``group``."""
    fcs = _fcurves(container)
    fc = fcs.find(data_path, index=index)
    if fc is not None:
        fcs.remove(fc)
    if uses_slotted_actions():
        try:
            fc = fcs.new(data_path, index=index, group_name=group)
        except TypeError:  # 4.4: no group_name argument yet
            fc = fcs.new(data_path, index=index)
            fc.group = container.groups.get(group) or container.groups.new(group)
    else:
        fc = fcs.new(data_path, index=index, action_group=group)
    return fc


def _fill(fc: Any, frames: np.ndarray, values: np.ndarray, interp: int, key_type: int | None) -> None:
    n = len(frames)
    fc.keyframe_points.add(n)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2], co[1::2] = frames, values
    fc.keyframe_points.foreach_set("co", co)
    fc.keyframe_points.foreach_set("interpolation", np.full(n, interp, dtype=np.int32))
    if key_type is not None:
        fc.keyframe_points.foreach_set("type", np.full(n, key_type, dtype=np.int32))
    fc.update()


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
    kt = None if key_type is None else key_type_value(key_type)
    it = _INTERP[interpolation]
    for b, bone in enumerate(bone_names):
        pb = obj.pose.bones.get(bone)
        if pb is not None:
            pb.rotation_mode = 'QUATERNION'
        path = ROT_PATH.format(bone)
        for i in range(4):
            _fill(_new_fcurve(cb, path, i, bone), fr, q[:, b, i], it, kt)
    if loc is not None:
        path = LOC_PATH.format(root_bone)
        for i in range(3):
            _fill(_new_fcurve(cb, path, i, root_bone), fr, loc[:, i], it, kt)
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
        for fc in _fcurves(cb):
            curves[(fc.data_path, fc.array_index)] = fc

    def keys(fc: Any) -> tuple[np.ndarray, np.ndarray]:
        n = len(fc.keyframe_points)
        co = np.empty(2 * n, dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        return co[0::2], co[1::2]

    wanted = [(ROT_PATH.format(b), i) for b in bone_names for i in range(4)] + \
             [(LOC_PATH.format(root_bone), i) for i in range(3)]
    data = {k: keys(curves[k]) for k in wanted if k in curves}
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


def set_key_type(action: Any, key_type: str, frames: Iterable[float] | None = None, obj: Any = None) -> int:
    """Set the keyframe type of the keys of ``action`` (all, or those on ``frames``); returns the count."""
    cb = channelbag(action, action_slot_for(obj, action)) if uses_slotted_actions() else action
    if cb is None:
        return 0
    val = key_type_value(key_type)
    sel = None if frames is None else np.asarray(list(frames), dtype=np.float32)
    count = 0
    for fc in _fcurves(cb):
        n = len(fc.keyframe_points)
        types = np.empty(n, dtype=np.int32)
        fc.keyframe_points.foreach_get("type", types)
        if sel is None:
            mask = np.ones(n, dtype=bool)
        else:
            co = np.empty(2 * n, dtype=np.float32)
            fc.keyframe_points.foreach_get("co", co)
            mask = np.isin(co[0::2], sel)
        types[mask] = val
        fc.keyframe_points.foreach_set("type", types)
        count += int(mask.sum())
    return count


def key_types(action: Any, obj: Any = None) -> dict[tuple[str, int], list[str]]:
    """Keyframe type names per F-curve ``(data_path, index)`` (for tests / reports)."""
    import bpy

    items = bpy.types.Keyframe.bl_rna.properties["type"].enum_items
    by_val = {it.value: it.identifier for it in items}
    cb = channelbag(action, action_slot_for(obj, action)) if uses_slotted_actions() else action
    out: dict[tuple[str, int], list[str]] = {}
    if cb is None:
        return out
    for fc in _fcurves(cb):
        n = len(fc.keyframe_points)
        t = np.empty(n, dtype=np.int32)
        fc.keyframe_points.foreach_get("type", t)
        out[(fc.data_path, fc.array_index)] = [by_val[int(v)] for v in t]
    return out


def action_fcurves(action: Any, obj: Any = None) -> list[Any]:
    """The F-curves of ``action`` for ``obj``'s slot (5.x) or ``action.fcurves`` (4.2)."""
    cb = channelbag(action, action_slot_for(obj, action)) if uses_slotted_actions() else action
    return [] if cb is None else list(_fcurves(cb))


def keyed_frames(action: Any, obj: Any = None) -> np.ndarray:
    """Sorted unique frames that carry a key on any F-curve of ``action`` (for the in-between A/B defaults)."""
    fr: list[np.ndarray] = []
    for fc in action_fcurves(action, obj):
        n = len(fc.keyframe_points)
        co = np.empty(2 * n, dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        fr.append(co[0::2])
    return np.unique(np.concatenate(fr)).astype(np.float64) if fr else np.zeros(0)


# --------------------------------------------------------------------------- SMPL-level convenience

def write_smpl_motion(obj: Any, body_pose: np.ndarray, root_orient: np.ndarray | None = None,
                      trans: np.ndarray | None = None, frame_start: float = 1.0,
                      frames: Iterable[float] | None = None, floor_based_trans: bool = False,
                      action: Any = None, name: str | None = None, key_type: str | None = None,
                      interpolation: str = "LINEAR", assign: bool = True, rig: Any = None) -> Any:
    """Convert an SMPL motion with :mod:`pose_convert` and write it in one pass (:func:`write_action`).

    Args:
        obj: an SMPL-like armature object.
        body_pose: (T,63) or (T,21,3) axis-angle; root_orient: (T,3) or None (the pelvis is then keyed
            with identity); trans: (T,3) or None (no location keys).
        floor_based_trans: ``trans`` is floor-based (AMASS / the backend's BVH import, feet on SMPL y = 0):
            subtract the armature's floor lift (``pose_convert.motion_trans_to_rig``).
        Other arguments as in :func:`write_action`. All 24 bones are keyed (hands with identity).
    Returns:
        the action.
    """
    from . import pose_convert as pc

    rig = rig or pc.SMPLRig.from_armature(obj)
    bp = np.asarray(body_pose, dtype=np.float64)
    T = bp.shape[0]
    if root_orient is None:
        root_orient = np.zeros((T, 3))
    t = None
    if trans is not None:
        t = pc.motion_trans_to_rig(trans, obj) if floor_based_trans else np.asarray(trans, dtype=np.float64)
    quats, loc = pc.pose_to_bone_data(bp, root_orient, t, rig)
    present = rig.present()
    return write_action(obj, quats[:, present], [rig.bone_names[j] for j in present], frames=frames,
                        frame_start=frame_start, location=loc, root_bone=rig.bone_names[0], action=action,
                        name=name, key_type=key_type, interpolation=interpolation, assign=assign)


def read_smpl_motion(obj: Any, action: Any = None, floor_based_trans: bool = False,
                     rig: Any = None) -> dict[str, np.ndarray]:
    """Read an action (default: ``obj``'s active one) back as SMPL: dict(frames (T,), body_pose (T,63),
    root_orient (T,3), trans (T,3)); ``trans`` is zero when the pelvis location is not keyed."""
    from . import pose_convert as pc

    rig = rig or pc.SMPLRig.from_armature(obj)
    if action is None:
        if obj.animation_data is None or obj.animation_data.action is None:
            raise ValueError(f"'{obj.name}' has no active action")
        action = obj.animation_data.action
    present = rig.present()
    m = read_action(action, [rig.bone_names[j] for j in present], obj, root_bone=rig.bone_names[0])
    T = len(m.frames)
    quats = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (T, 24, 1))
    quats[:, present] = m.quats
    body, root, trans = pc.bone_data_to_pose(quats, m.location, rig)
    if floor_based_trans:
        trans = pc.rig_trans_to_motion(trans, obj)
    if not np.all(np.isfinite(quats)) or not np.all(np.isfinite(trans)):
        raise ValueError(f"action '{action.name}' contains NaN or inf values")
    return {"frames": m.frames, "body_pose": body.reshape(T, 63), "root_orient": root, "trans": trans}


def key_smpl_pose(obj: Any, frame: float, body_pose: np.ndarray, root_orient: np.ndarray | None = None,
                  trans: np.ndarray | None = None, key_type: str | None = None, rig: Any = None,
                  joints: Sequence[int] | None = None) -> int:
    """Apply one SMPL pose to ``obj`` and key it at ``frame`` (rotations of the mapped bones, or only of
    SMPL joint indices ``joints``; the pelvis location too when ``trans`` is given). Returns keys written."""
    from . import pose_convert as pc

    rig = rig or pc.SMPLRig.from_armature(obj)
    pc.apply_smpl_pose(obj, body_pose, root_orient, trans, rig, joints=joints)
    idx = rig.present() if joints is None else [j for j in joints if rig.bone_names[j] is not None]
    return key_pose(obj, frame, [rig.bone_names[j] for j in idx],
                    location_bone=rig.bone_names[0] if trans is not None else None, key_type=key_type)


__all__ = ["Motion", "uses_slotted_actions", "key_type_value", "generated_key_type", "ensure_action",
           "channelbag", "action_slot_for", "write_action", "read_action", "key_pose", "set_key_type",
           "key_types", "action_fcurves", "keyed_frames", "ROT_PATH", "LOC_PATH", "write_smpl_motion",
           "read_smpl_motion", "key_smpl_pose"]
