"""Datablocks DPoser made (meshes, curves, armatures, cameras), removed once no object uses them."""

from __future__ import annotations

from typing import Any


def remove_if_unused(data: Any) -> bool:
    """Remove a mesh, curve, armature or camera datablock that nothing uses any more; True if removed."""
    import bpy

    if data is None or data.users != 0:
        return False
    for kind, store in ((bpy.types.Armature, bpy.data.armatures), (bpy.types.Mesh, bpy.data.meshes),
                        (bpy.types.Curve, bpy.data.curves), (bpy.types.Camera, bpy.data.cameras)):
        if isinstance(data, kind):
            store.remove(data)
            return True
    return False
