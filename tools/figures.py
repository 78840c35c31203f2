"""Figures of an SMPL character for the demo and the docs: duplicates posed side by side, contact sheets of
poses and filmstrips of an animation, rendered headless with :mod:`tools.render`.

Everything created for a render (duplicates, camera, floor, lights) is removed afterwards unless
``keep=True``; the source armature is left untouched.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dposer_blender.blender.rig import apply_smpl_pose
from tools.render import (add_floor, add_label, body_objects, frame_camera, preserved_render_settings, remove_objects,
                          render_objects, render_png, setup_scene, tile_pngs, world_points)


def duplicate_character(armature_obj: Any, offset: tuple[float, float, float], collection: Any,
                        suffix: str = "dup") -> tuple[Any, list[Any]]:
    """Copy an armature object and its body meshes (object copies sharing the mesh/armature data, so this
    is cheap), moved by ``offset``; the copy has no animation data (pose it directly)."""
    arm = armature_obj.copy()
    arm.name = f"{armature_obj.name}_{suffix}"
    if arm.animation_data is not None:
        arm.animation_data_clear()
    collection.objects.link(arm)
    arm.location = tuple(np.array(armature_obj.location) + np.asarray(offset, dtype=float))
    bodies = []
    for b in body_objects(armature_obj):
        bc = b.copy()
        bc.name = f"{b.name}_{suffix}"
        collection.objects.link(bc)
        bc.parent = arm
        bc.matrix_parent_inverse = b.matrix_parent_inverse.copy()
        for mod in bc.modifiers:
            if mod.type == 'ARMATURE':
                mod.object = arm
        bodies.append(bc)
    return arm, bodies


def copy_pose(src: Any, dst: Any) -> None:
    """Copy the current (evaluated) local pose of ``src`` onto ``dst`` (same bone names)."""
    for pb in src.pose.bones:
        q = dst.pose.bones.get(pb.name)
        if q is None:
            continue
        q.rotation_mode = pb.rotation_mode
        q.matrix_basis = pb.matrix_basis.copy()


def ground_object(obj: Any, z: float = 0.0) -> float:
    """Move an armature object vertically so the lowest point of its evaluated body meshes is at ``z``;
    returns the shift applied."""
    import bpy

    bpy.context.view_layer.update()
    pts = world_points(body_objects(obj) or [obj], bpy.context.evaluated_depsgraph_get())
    dz = float(z - pts[:, 2].min())
    obj.location.z += dz
    return dz


def remove_horizontal_root_motion(obj: Any) -> None:
    """Zero the horizontal (armature-space X/Y) part of the root bones' pose translation, keeping height."""
    for pb in obj.pose.bones:
        if pb.parent is not None:
            continue
        m = np.array(pb.bone.matrix_local)[:3, :3]
        d = m @ np.array(tuple(pb.location))
        d[0] = d[1] = 0.0
        pb.location = tuple(m.T @ d)


def grid_offsets(n: int, columns: int | None = None, spacing: float = 0.95, row_spacing: float = 1.3) -> np.ndarray:
    """(n,3) offsets of a centred grid: columns along +X, rows going back along +Y (Blender)."""
    columns = columns or n
    rows = (n + columns - 1) // columns
    out = np.zeros((n, 3))
    for i in range(n):
        r, c = divmod(i, columns)
        ncol = min(columns, n - r * columns)
        out[i] = ((c - (ncol - 1) / 2.0) * spacing, r * row_spacing - (rows - 1) * row_spacing / 2.0, 0.0)
    return out


def contact_sheet(armature_obj: Any, poses: Sequence[tuple[np.ndarray, np.ndarray | None]], filepath: str,
                  columns: int | None = None, spacing: float = 0.95, view: str | tuple[float, float] = "sheet",
                  resolution: tuple[int, int] = (960, 480), keep: bool = False, scene: Any = None,
                  lens: float = 85.0, ground: bool = True, labels: Sequence[str] | None = None) -> str:
    """Render N SMPL poses ``(body_pose (63,)|(21,3), root_orient (3,)|None)`` to one PNG.

    One row (``columns`` None or >= N): the poses are duplicated characters side by side in one render.
    Several rows: every pose is rendered alone with the same camera and the cells are tiled (so no row
    hides another); ``resolution`` is then the size of the whole sheet. ``ground`` moves each figure so
    its lowest point touches the floor; ``labels`` puts a caption under each figure. The source armature
    is left untouched (the duplicates are removed unless ``keep``).
    """
    import bpy

    scene = scene or bpy.context.scene
    coll = scene.collection
    n = len(poses)
    columns = min(columns or n, n)
    rows = (n + columns - 1) // columns
    offs = grid_offsets(n, columns, spacing) if rows == 1 else np.zeros((n, 3))
    dups: list[Any] = []
    arms: list[Any] = []
    texts: list[Any] = []
    try:
        for i, ((body, root), off) in enumerate(zip(poses, offs)):
            arm, bodies = duplicate_character(armature_obj, tuple(off), coll, suffix=f"sheet{i}")
            apply_smpl_pose(arm, body, root)
            dups.append(arm)
            dups.extend(bodies)
            arms.append(arm)
            if ground:
                ground_object(arm)
        if labels is not None:
            bpy.context.view_layer.update()
            dg = bpy.context.evaluated_depsgraph_get()
            for arm, text in zip(arms, labels):
                pts = world_points(body_objects(arm), dg)
                c = 0.5 * (pts.min(0) + pts.max(0))  # caption above the head, facing the camera
                texts.append(add_label(coll, str(text), (float(c[0]), float(c[1]), float(pts[:, 2].max()) + 0.07)))
            dups.extend(texts)
        if rows == 1:
            return render_objects(scene, arms, filepath, view=view, resolution=resolution, keep=keep, lens=lens,
                                  extra_visible=texts)
        with preserved_render_settings(scene):
            return _tiled_sheet(scene, arms, texts, filepath, columns, rows, resolution, view, lens)
    finally:
        if not keep:
            remove_objects(dups)


def _tiled_sheet(scene: Any, arms: list[Any], texts: list[Any], filepath: str, columns: int, rows: int,
                 resolution: tuple[int, int], view: str | tuple[float, float], lens: float) -> str:
    """Render each armature's bodies alone with one shared camera and tile the cells into ``filepath``."""
    import os

    import bpy

    cell = (max(16, resolution[0] // columns), max(16, resolution[1] // rows))
    setup_scene(scene, cell)
    bpy.context.view_layer.update()
    dg = bpy.context.evaluated_depsgraph_get()
    allpts = world_points([b for a in arms for b in body_objects(a)] + texts, dg)
    old_cam = scene.camera
    cam = frame_camera(scene, allpts, view, lens=lens)
    floor = add_floor(scene, allpts)
    others = [o for o in scene.objects if o.type in {'MESH', 'CURVE', 'SURFACE', 'META', 'FONT'}
              and o is not floor]
    saved = [(o, o.hide_render) for o in others]
    tmp_paths: list[str] = []
    try:
        for i, arm in enumerate(arms):
            vis = set(body_objects(arm)) | ({texts[i]} if i < len(texts) else set())
            for o in others:
                o.hide_render = o not in vis
            tmp_paths.append(render_png(scene, f"{filepath}.cell{i}.png"))
        tile_pngs(tmp_paths, columns, filepath)
    finally:
        for o, h in saved:
            o.hide_render = h
        scene.camera = old_cam
        remove_objects([cam, floor])
        for p in tmp_paths:
            if os.path.exists(p):
                os.remove(p)
    return filepath


def filmstrip(armature_obj: Any, frames: Sequence[int], filepath: str, spacing: float = 0.75,
              view: str | tuple[float, float] = "sheet", resolution: tuple[int, int] = (1280, 360),
              keep: bool = False, scene: Any = None, root_motion: bool = False, lens: float = 85.0) -> str:
    """Render the armature's pose at each of ``frames`` as duplicates side by side (left to right) to
    one PNG. Without ``root_motion`` the horizontal root translation is removed so the figures stay in
    their slots (height is kept). The scene's current frame is restored."""
    import bpy

    scene = scene or bpy.context.scene
    coll = scene.collection
    old_frame = scene.frame_current
    offs = grid_offsets(len(frames), None, spacing)
    dups: list[Any] = []
    try:
        for i, (fr, off) in enumerate(zip(frames, offs)):
            scene.frame_set(int(fr))
            arm, bodies = duplicate_character(armature_obj, tuple(off), coll, suffix=f"strip{i}")
            copy_pose(armature_obj, arm)
            if not root_motion:
                remove_horizontal_root_motion(arm)
            dups.append(arm)
            dups.extend(bodies)
        scene.frame_set(old_frame)
        arms = [d for d in dups if d.type == 'ARMATURE']
        return render_objects(scene, arms, filepath, view=view, resolution=resolution, keep=keep, lens=lens)
    finally:
        scene.frame_set(old_frame)
        if not keep:
            remove_objects(dups)


__all__ = ["duplicate_character", "copy_pose", "ground_object", "remove_horizontal_root_motion", "grid_offsets",
           "contact_sheet", "filmstrip"]
