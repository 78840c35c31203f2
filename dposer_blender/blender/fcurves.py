"""F-curves: where they live (slotted actions on 4.4+, ``action.fcurves`` on 4.2 / 4.3), the one bulk key
writer, and key reads.

Every key DPoser writes goes through :func:`write_keys`: one ``keyframe_points.add(n)`` and one
``foreach_set("co", ...)`` (plus interpolation and key type) per F-curve, then ``fcurve.update()``.

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

from typing import Any, Iterable

import numpy as np

ROT_PATH = 'pose.bones["{}"].rotation_quaternion'
LOC_PATH = 'pose.bones["{}"].location'

#: ``Keyframe.interpolation`` values for ``foreach_set``.
INTERPOLATION = {"CONSTANT": 0, "LINEAR": 1, "BEZIER": 2}


def uses_slotted_actions() -> bool:
    """True on Blender 4.4+ (slotted actions; the legacy ``action.fcurves`` is gone in 5.0)."""
    import bpy

    return bpy.app.version >= (4, 4, 0)


def _key_type_items() -> Any:
    import bpy

    return bpy.types.Keyframe.bl_rna.properties["type"].enum_items


def key_type_value(name: str) -> int:
    """Integer value of keyframe type ``name`` (for ``foreach_set("type", ...)``); ``KeyError`` if unknown."""
    return int(_key_type_items()[name].value)


def generated_key_type() -> str:
    """'GENERATED' when this Blender has that keyframe type, else 'KEYFRAME'."""
    return "GENERATED" if "GENERATED" in _key_type_items().keys() else "KEYFRAME"


# --------------------------------------------------------------------------- where the F-curves live

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


def container_of(obj: Any, action: Any, create: bool = False) -> Any:
    """The F-curve container of ``action`` for ``obj`` (with ``create``: its slot and channelbag are made)."""
    if not uses_slotted_actions():
        return action
    slot = action_slot_for(obj, action)
    if slot is None and create:
        _, slot = ensure_action(obj, action)
    return channelbag(action, slot, create=create)


def action_fcurves(action: Any, obj: Any = None) -> list[Any]:
    """The F-curves of ``action`` for ``obj``'s slot (5.x) or ``action.fcurves`` (4.2)."""
    cb = container_of(obj, action)
    return [] if cb is None else list(cb.fcurves)


def fcurve(container: Any, data_path: str, index: int, group: str | None, fresh: bool = False) -> Any:
    """The F-curve ``data_path[index]`` of ``container``, created in ``group`` when missing; with ``fresh``
    an existing one is removed first (a new, empty F-curve)."""
    fcs = container.fcurves
    fc = fcs.find(data_path, index=index)
    if fc is not None:
        if not fresh:
            return fc
        fcs.remove(fc)
    if not uses_slotted_actions():
        return fcs.new(data_path, index=index, action_group=group or "")
    try:
        return fcs.new(data_path, index=index, group_name=group or "")
    except TypeError:  # 4.4: no group_name argument yet
        fc = fcs.new(data_path, index=index)
        if group:
            fc.group = container.groups.get(group) or container.groups.new(group)
        return fc


# --------------------------------------------------------------------------- the one bulk key writer

def write_keys(fc: Any, frames: np.ndarray, values: np.ndarray, interpolation: str | None = None,
               key_type: str | None = None, between: tuple[float, float] | None = None) -> None:
    """Add keys (``frames``, ``values``) to ``fc`` in one bulk write.

    Args:
        interpolation: 'LINEAR', 'BEZIER' or 'CONSTANT' for the new keys (None: Blender's default).
        key_type: keyframe type of the new keys, e.g. ``generated_key_type()`` (None: 'KEYFRAME').
        between: (lo, hi): first remove the keys strictly inside (lo, hi). Keys that stay keep their values
            bit-exact (float32 read back and written unchanged).
    """
    kps = fc.keyframe_points
    if between is not None and len(kps):
        lo, hi = between
        x = read_keys(fc)[0]
        for i in np.nonzero((x > lo) & (x < hi))[0][::-1]:
            kps.remove(kps[int(i)], fast=True)
    m = len(kps)
    k = len(frames)
    if k == 0:
        fc.update()
        return
    kps.add(k)
    co = np.empty(2 * (m + k), dtype=np.float32)
    kps.foreach_get("co", co)
    co[2 * m::2] = frames
    co[2 * m + 1::2] = values
    kps.foreach_set("co", co)
    for attr, val in (("type", None if key_type is None else key_type_value(key_type)),
                      ("interpolation", None if interpolation is None else INTERPOLATION[interpolation])):
        if val is None:
            continue
        arr = np.empty(m + k, dtype=np.int32)
        kps.foreach_get(attr, arr)
        arr[m:] = val
        kps.foreach_set(attr, arr)
    # new points: handles at their keys (update() recomputes auto handles)
    hl = np.empty(2 * (m + k), dtype=np.float32)
    kps.foreach_get("handle_left", hl)
    hl[2 * m:] = co[2 * m:]
    kps.foreach_set("handle_left", hl)
    kps.foreach_set("handle_right", hl)
    fc.update()


# --------------------------------------------------------------------------- reading keys

def read_keys(fc: Any) -> tuple[np.ndarray, np.ndarray]:
    """The keys of ``fc`` as float32 (frames (n,), values (n,))."""
    n = len(fc.keyframe_points)
    co = np.empty(2 * n, dtype=np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return co[0::2], co[1::2]


def keyed_frames(action: Any, obj: Any = None, prefix: str = "") -> np.ndarray:
    """Sorted unique frames that carry a key on any F-curve of ``action`` (whose data path starts with
    ``prefix``)."""
    fr = [read_keys(fc)[0] for fc in action_fcurves(action, obj) if fc.data_path.startswith(prefix)]
    return np.unique(np.concatenate(fr)).astype(np.float64) if fr else np.zeros(0)


def set_key_type(action: Any, key_type: str, frames: Iterable[float] | None = None, obj: Any = None) -> int:
    """Set the keyframe type of the keys of ``action`` (all, or those on ``frames``); returns the count."""
    val = key_type_value(key_type)
    sel = None if frames is None else np.asarray(list(frames), dtype=np.float32)
    count = 0
    for fc in action_fcurves(action, obj):
        n = len(fc.keyframe_points)
        types = np.empty(n, dtype=np.int32)
        fc.keyframe_points.foreach_get("type", types)
        mask = np.ones(n, dtype=bool) if sel is None else np.isin(read_keys(fc)[0], sel)
        types[mask] = val
        fc.keyframe_points.foreach_set("type", types)
        count += int(mask.sum())
    return count


def key_types(action: Any, obj: Any = None) -> dict[tuple[str, int], list[str]]:
    """Keyframe type names per F-curve ``(data_path, index)`` (for tests / reports)."""
    by_val = {it.value: it.identifier for it in _key_type_items()}
    out: dict[tuple[str, int], list[str]] = {}
    for fc in action_fcurves(action, obj):
        n = len(fc.keyframe_points)
        t = np.empty(n, dtype=np.int32)
        fc.keyframe_points.foreach_get("type", t)
        out[(fc.data_path, fc.array_index)] = [by_val[int(v)] for v in t]
    return out


__all__ = ["ROT_PATH", "LOC_PATH", "INTERPOLATION", "uses_slotted_actions", "key_type_value", "generated_key_type",
           "ensure_action", "channelbag", "action_slot_for", "container_of", "action_fcurves", "fcurve",
           "write_keys", "read_keys", "keyed_frames", "set_key_type", "key_types"]
