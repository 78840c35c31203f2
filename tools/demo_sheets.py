"""The demo's figure sheets: posed duplicates of a character with captions, rendered with one camera
(:mod:`tools.render`), a caption bar on top, stacked into one PNG."""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import bpy
import numpy as np

from dposer_blender.blender.rig import apply_smpl_pose
from tools import figures as F
from tools import render as R

# Render look (linear RGBA): the mannequin's own colour for ordinary figures, accents for highlights.
KEY_COLOR = (0.85, 0.36, 0.08, 1.0)      # in-between keys A / B
FREE_COLOR = (0.10, 0.42, 0.80, 1.0)     # completed (free) leg segments
FLOOR_COLOR = (1.0, 1.0, 1.0, 1.0)
TITLE_BG = (0.045, 0.047, 0.052)
TEXT_COLOR = (0.92, 0.92, 0.92, 1.0)
VIEW = (0.0, 14.0)  # one camera for every sheet: in front, looking down 14 deg (the floor hides the horizon)
LENS = 85.0


def material(name: str, color: tuple[float, float, float, float], roughness: float = 0.6) -> Any:
    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    mat.diffuse_color = color
    mat.roughness = roughness
    mat.metallic = 0.0
    return mat


def tint(objs: Sequence[Any], mat: Any) -> None:
    """Give mesh objects their own material (object-linked slots; the shared mesh data is untouched)."""
    for o in objs:
        for slot in o.material_slots:
            slot.link = 'OBJECT'
            slot.material = mat


@contextmanager
def legs_coloured(arm: Any, bones: Sequence[str], mat: Any) -> Iterator[None]:
    """Temporarily give ``arm``'s body a mesh copy whose faces on ``bones`` use ``mat`` (2nd material)."""
    saved = []
    try:
        for body in arm.children:
            if body.type != 'MESH':
                continue
            me = body.data.copy()
            me.name = "DPoser legs-coloured mesh"
            me.materials.append(mat)
            gi = {g.index for g in body.vertex_groups if g.name in bones}
            best = np.empty(len(me.vertices), dtype=np.int64)
            for v in me.vertices:
                gs = [(g.weight, g.group) for g in v.groups]
                best[v.index] = max(gs)[1] if gs else -1
            on = np.isin(best, list(gi))
            n = len(me.polygons)
            loop_start = np.empty(n, np.int32)
            loop_total = np.empty(n, np.int32)
            me.polygons.foreach_get("loop_start", loop_start)
            me.polygons.foreach_get("loop_total", loop_total)
            vi = np.empty(len(me.loops), np.int32)
            me.loops.foreach_get("vertex_index", vi)
            frac = np.add.reduceat(on[vi].astype(np.float64), loop_start) / loop_total
            mi = (frac > 0.5).astype(np.int32)
            me.polygons.foreach_set("material_index", mi)
            saved.append((body, body.data))
            body.data = me
        yield
    finally:
        for body, data in saved:
            tmp = body.data
            body.data = data
            bpy.data.meshes.remove(tmp)


def _floor(scene: Any) -> Any:
    """A large floor at z = 0: with the camera looking down more than half its field of view, the floor
    fills the whole background, so there is no horizon line behind the figures."""
    size = 200.0
    me = bpy.data.meshes.new("DPoser Demo Floor")
    me.from_pydata([(-size, -size, 0.0), (size, -size, 0.0), (size, size, 0.0), (-size, size, 0.0)], [], [(0, 1, 2, 3)])
    me.materials.append(material("DPoser Demo Floor", FLOOR_COLOR, roughness=1.0))
    obj = bpy.data.objects.new("DPoser Demo Floor", me)
    scene.collection.objects.link(obj)
    return obj


def _show_only(scene: Any, visible: set[Any]) -> list[tuple[Any, bool]]:
    saved = []
    for o in scene.objects:
        if o.type in {'MESH', 'CURVE', 'SURFACE', 'META', 'FONT'}:
            saved.append((o, o.hide_render))
            o.hide_render = o not in visible
    return saved


def _restore(saved: list[tuple[Any, bool]]) -> None:
    for o, h in saved:
        o.hide_render = h


def render_cells(cells: Sequence[Sequence[Any]], filepath: str, resolution: tuple[int, int],
                 columns: int | None = None) -> str:
    """Render figures (each a list of objects: body meshes, caption) with one camera (``VIEW``, ``LENS``)
    framed on all of them. ``columns`` None: one render with every figure in place; else every figure is
    rendered alone in a cell of ``resolution / grid`` and the cells are tiled (figures at the same spot)."""
    scene = bpy.context.scene
    made: list[Any] = []
    everything = [o for c in cells for o in c]
    with R.preserved_render_settings(scene):
        rows = 1 if columns is None else math.ceil(len(cells) / columns)
        cell_res = resolution if columns is None else (resolution[0] // columns, resolution[1] // rows)
        R.setup_scene(scene, cell_res)
        dither, scene.render.dither_intensity = scene.render.dither_intensity, 0.0  # no noise: small PNGs
        bpy.context.view_layer.update()
        pts = R.world_points(everything, bpy.context.evaluated_depsgraph_get())
        made.append(R.frame_camera(scene, pts, VIEW, lens=LENS, margin=0.06))
        floor = _floor(scene)
        made.append(floor)
        try:
            if columns is None:
                saved = _show_only(scene, set(everything) | {floor})
                try:
                    R.render_png(scene, filepath)
                finally:
                    _restore(saved)
            else:
                paths = []
                try:
                    for i, c in enumerate(cells):
                        saved = _show_only(scene, set(c) | {floor})
                        try:
                            paths.append(R.render_png(scene, f"{filepath}.cell{i}.png"))
                        finally:
                            _restore(saved)
                    R.tile_pngs(paths, columns, filepath)
                finally:
                    for p in paths:
                        if os.path.exists(p):
                            os.remove(p)
        finally:
            scene.render.dither_intensity = dither
            R.remove_objects(made)
    return filepath


def figures(src: Any, poses: Sequence[np.ndarray] | None, offsets: np.ndarray, captions: Sequence[str],
            caption_size: float, frames: Sequence[int] | None = None) -> tuple[list[list[Any]], list[Any], list[Any]]:
    """Duplicates of ``src`` posed with ``poses`` (SMPL body poses, root facing the camera) or with ``src``'s
    own animation at ``frames`` (horizontal root motion removed), feet on the floor, one caption each, all
    captions on one line above the tallest figure. Returns (cells, armatures, everything made)."""
    scene = bpy.context.scene
    coll = scene.collection
    old = scene.frame_current
    made: list[Any] = []
    arms, bodies_of = [], []
    n = len(poses) if poses is not None else len(frames or [])
    for i in range(n):
        arm, bodies = F.duplicate_character(src, tuple(offsets[i]), coll, suffix=f"fig{i}")
        made += [arm, *bodies]
        if poses is not None:
            apply_smpl_pose(arm, np.asarray(poses[i]).reshape(21, 3), None, None)
        else:
            scene.frame_set(int(frames[i]))
            F.copy_pose(src, arm)
            F.remove_horizontal_root_motion(arm)
        arms.append(arm)
        bodies_of.append(bodies)
    scene.frame_set(old)
    for arm in arms:
        F.ground_object(arm)
    bpy.context.view_layer.update()
    dg = bpy.context.evaluated_depsgraph_get()
    boxes = [R.world_points(b, dg) for b in bodies_of]
    top = max(float(p[:, 2].max()) for p in boxes)
    depth = float(np.mean([0.5 * (p[:, 1].min() + p[:, 1].max()) for p in boxes]))
    cells = []
    for bodies, pts, text in zip(bodies_of, boxes, captions):
        c = 0.5 * (pts.min(0) + pts.max(0))
        label = R.add_label(coll, text, (float(c[0]), depth, top + 0.10), size=caption_size)
        made.append(label)
        cells.append([*bodies, label])
    return cells, arms, made


def title_png(text: str, width: int, filepath: str, height: int = 46) -> str:
    """A one-line caption bar (light text on dark grey), rendered flat with an orthographic camera."""
    scene = bpy.context.scene
    made: list[Any] = []
    with R.preserved_render_settings(scene):
        R.setup_scene(scene, (width, height), background=TITLE_BG)
        dither, scene.render.dither_intensity = scene.render.dither_intensity, 0.0
        sh = scene.display.shading
        sh.light, sh.show_shadows, sh.show_cavity, sh.show_specular_highlight = 'FLAT', False, False, False
        z = -500.0  # far below the floor, out of every other camera's way
        cu = bpy.data.curves.new("DPoser Title", 'FONT')
        cu.body = text
        cu.size = 0.24
        cu.align_x, cu.align_y = 'LEFT', 'CENTER'
        cu.materials.append(material("DPoser Title", TEXT_COLOR))
        txt = bpy.data.objects.new("DPoser Title", cu)
        txt.location = (-width / 200.0 + 0.16, 0.0, z)
        scene.collection.objects.link(txt)
        cam = bpy.data.objects.new("DPoser Title Camera", bpy.data.cameras.new("DPoser Title Camera"))
        cam.data.type = 'ORTHO'
        cam.data.ortho_scale = width / 100.0
        cam.location = (0.0, 0.0, z + 10.0)
        scene.collection.objects.link(cam)
        scene.camera = cam
        made += [txt, cam]
        saved = _show_only(scene, {txt})
        try:
            R.render_png(scene, filepath)
        finally:
            _restore(saved)
            scene.render.dither_intensity = dither
            R.remove_objects(made)
    return filepath


def stack_pngs(paths: Sequence[str], filepath: str) -> str:
    """Stack equally wide PNGs top to bottom into ``filepath`` (the inputs are deleted)."""
    canvas = np.concatenate([R.read_png_pixels(p) for p in paths][::-1], axis=0)  # pixel rows run bottom-up
    R.write_png_pixels(canvas, filepath)
    for p in paths:
        if os.path.abspath(p) != os.path.abspath(filepath):
            os.remove(p)
    return filepath


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Blender's own render chatter ("Saved: ...", EGL notes) on fds 1 and 2 for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def sheet(title: str, cells: Sequence[Sequence[Any]], filepath: str, resolution: tuple[int, int],
          columns: int | None = None) -> str:
    """``render_cells`` with a caption bar on top."""
    with quiet():
        body = render_cells(cells, filepath + ".body.png", resolution, columns)
        head = title_png(title, resolution[0], filepath + ".title.png")
        return stack_pngs([head, body], filepath)
