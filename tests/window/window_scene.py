"""Scene snapshots for the window suite: everything an operation may change, and the one-Ctrl+Z check."""

from __future__ import annotations

import bpy
import numpy as np

from window_common import check, ext, key


def quats_of(name: str) -> np.ndarray:
    obj = bpy.data.objects[name]
    out = np.empty((len(obj.pose.bones), 4))
    for i, pb in enumerate(obj.pose.bones):
        pb.rotation_mode = pb.rotation_mode  # no-op; read below
        out[i] = tuple(pb.rotation_quaternion)
    return out


def snapshot() -> dict:
    """Everything an operation may change: objects, actions with their keys, NLA tracks, custom props."""
    snap: dict = {"objects": sorted(o.name for o in bpy.data.objects),
                  "actions": {}, "nla": {}, "pose": {}, "props": {}, "markers": len(bpy.context.scene.timeline_markers),
                  "active": getattr(bpy.context.view_layer.objects.active, "name", None),
                  "selected": sorted(o.name for o in bpy.context.view_layer.objects if o.select_get())}
    fcurves = ext("blender.fcurves")
    for act in bpy.data.actions:
        keys = {}
        for fc in fcurves.action_fcurves(act):
            co = np.empty(2 * len(fc.keyframe_points), np.float32)
            fc.keyframe_points.foreach_get("co", co)
            keys[f"{fc.data_path}[{fc.array_index}]"] = co.tobytes().hex()
        snap["actions"][act.name] = keys
    for o in bpy.data.objects:
        if o.type == 'ARMATURE' and o.get("dposer_ghost_of") is None:
            snap["pose"][o.name] = np.round([tuple(pb.rotation_quaternion) for pb in o.pose.bones], 6).tolist()
            ad = o.animation_data
            snap["nla"][o.name] = ([(t.name, t.mute, [s.action.name if s.action else None for s in t.strips])
                                    for t in ad.nla_tracks] if ad else [],
                                   ad.action.name if ad and ad.action else None)
            snap["props"][o.name] = sorted(k for k in o.keys())
    return snap


def diff(a: dict, b: dict) -> str:
    out = []
    for k in a:
        if a[k] != b.get(k):
            if isinstance(a[k], dict):
                ks = [kk for kk in set(a[k]) | set(b.get(k, {})) if a[k].get(kk) != b.get(k, {}).get(kk)]
                out.append(f"{k}: {sorted(ks)[:5]}")
            else:
                out.append(f"{k}: {a[k]!r} != {b.get(k)!r}"[:200])
    return "; ".join(out) or "same"


def undo_check(name: str, before: dict):
    """One Ctrl+Z brings back ``before`` exactly; Ctrl+Shift+Z brings the operation's result back."""
    after = snapshot()
    if after == before:
        check(f"undo: {name}", False, "the operation changed nothing, so there is nothing to undo")
        return
    key("ctrl+z")
    yield 1.0
    undone = snapshot()
    ok = undone == before
    detail = "one Ctrl+Z restored the scene" if ok else "after one Ctrl+Z: " + diff(before, undone)
    key("ctrl+shift+z")
    yield 1.0
    redone = snapshot()
    ok2 = redone == after
    check(f"undo: {name}", ok and ok2, detail + ("" if ok2 else "; redo differs: " + diff(after, redone)))

