"""Headless rendering helpers for the demo, the docs and the photo benchmark (bpy module / ``blender -b``).

Tooling of the checkout, not part of the extension (``scripts/build_extension.py`` does not ship ``tools/``).

Workbench is used by default: it renders headless in the bpy module on both 4.2 and 5.0 in well under a
second at 640x480 (EEVEE needs minutes of shader compilation on a software GL; Cycles works but is slower
for the same look). The look: studio lighting, soft shadows, a neutral light background and a floor
plane; a camera framed automatically on the subjects (3/4 front by default).

:func:`render_objects` renders one PNG of some objects with an auto-framed camera; the figure layouts
(contact sheets, filmstrips) are in :mod:`tools.figures`.

Everything created for a render (duplicates, camera, floor, lights) is removed afterwards unless
``keep=True``; the scene's render settings are changed (engine, resolution, shading).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np

from dposer_blender.blender.datablocks import remove_if_unused

#: Background colour (linear RGB): a light neutral grey.
BACKGROUND = (0.78, 0.79, 0.81)
#: Floor colour (linear RGBA).
FLOOR_COLOR = (0.85, 0.86, 0.88, 1.0)
#: Caption colour (linear RGBA).
LABEL_COLOR = (0.05, 0.05, 0.06, 1.0)

VIEWS = {  # azimuth (deg, 0 = camera in front of a character facing -Y, + = towards its left), elevation (deg)
    "front": (0.0, 4.0),
    "three_quarter": (35.0, 10.0),
    "side": (90.0, 4.0),
    "high_front": (15.0, 22.0),
    "sheet": (0.0, 8.0),
}


def setup_scene(scene: Any, resolution: tuple[int, int] = (640, 480), engine: str = "BLENDER_WORKBENCH",
                samples: int = 8, background: tuple[float, float, float] = BACKGROUND, shadows: bool = True) -> None:
    """Render settings: engine, resolution, PNG output, Standard view transform, studio-lit Workbench
    with shadows and cavity (or few-sample Cycles), world colour ``background``."""
    import bpy

    r = scene.render
    r.engine = engine
    r.resolution_x, r.resolution_y = int(resolution[0]), int(resolution[1])
    r.resolution_percentage = 100
    r.film_transparent = False
    r.image_settings.file_format = 'PNG'
    r.image_settings.color_mode = 'RGB'
    scene.view_settings.view_transform = 'Standard'
    scene.view_settings.look = 'None'
    if scene.world is None:
        scene.world = bpy.data.worlds.new("DPoser World")
    scene.world.color = background
    if engine == "BLENDER_WORKBENCH":
        d = scene.display
        d.render_aa = '8'
        sh = d.shading
        sh.light = 'STUDIO'
        sh.studio_light = 'paint.sl'
        sh.color_type = 'MATERIAL'
        sh.use_world_space_lighting = True
        sh.studiolight_rotate_z = math.radians(-25.0)
        sh.show_shadows = shadows
        sh.shadow_intensity = 0.35
        sh.show_cavity = True
        sh.cavity_type = 'WORLD'
        sh.curvature_ridge_factor = 0.5
        sh.curvature_valley_factor = 0.8
        sh.show_specular_highlight = True
        d.shadow_focus = 1.0
        d.shadow_shift = 0.15  # hides the shadow terminator on smooth-shaded curved surfaces
        d.light_direction = (0.3, -0.6, 0.75)
    elif engine == "CYCLES":
        scene.cycles.samples = samples
        scene.cycles.device = 'CPU'
        if scene.world.use_nodes and scene.world.node_tree.nodes.get("Background"):
            scene.world.node_tree.nodes["Background"].inputs[0].default_value = (*background, 1.0)


@contextmanager
def preserved_render_settings(scene: Any) -> Iterator[None]:
    """Restore the scene's engine, resolution, output path, colour management, world colour and camera
    after the block (the Workbench display settings of ``scene.display`` are left as set)."""
    r = scene.render
    saved = (r.engine, r.resolution_x, r.resolution_y, r.resolution_percentage, r.filepath, r.film_transparent,
             scene.view_settings.view_transform, scene.view_settings.look, scene.camera, scene.world,
             tuple(scene.world.color) if scene.world is not None else None)
    try:
        yield
    finally:
        (r.engine, r.resolution_x, r.resolution_y, r.resolution_percentage, r.filepath, r.film_transparent,
         scene.view_settings.view_transform, scene.view_settings.look) = saved[:8]
        try:
            scene.camera = saved[8]
        except ReferenceError:
            scene.camera = None
        scene.world = saved[9]
        if saved[9] is not None and saved[10] is not None:
            saved[9].color = saved[10]


def world_points(objects: Sequence[Any], depsgraph: Any) -> np.ndarray:
    """(N,3) world-space vertices of the evaluated (deformed) mesh objects, or bone heads/tails for
    armatures without a mesh child."""
    pts: list[np.ndarray] = []
    for obj in objects:
        ev = obj.evaluated_get(depsgraph)
        mw = np.array(ev.matrix_world)
        if obj.type == 'MESH':
            me = ev.to_mesh()
            co = np.empty(len(me.vertices) * 3, dtype=np.float64)
            me.vertices.foreach_get("co", co)
            ev.to_mesh_clear()
            co = co.reshape(-1, 3)
        elif obj.type == 'ARMATURE':
            co = np.array([tuple(pb.head) for pb in ev.pose.bones] + [tuple(pb.tail) for pb in ev.pose.bones])
        else:
            co = np.array([tuple(c) for c in ev.bound_box])
        if len(co):
            pts.append(co @ mw[:3, :3].T + mw[:3, 3])
    return np.concatenate(pts, axis=0) if pts else np.zeros((1, 3))


def frame_camera(scene: Any, points: np.ndarray, view: str | tuple[float, float] = "three_quarter",
                 lens: float = 50.0, margin: float = 0.06, camera: Any = None) -> Any:
    """Create (or reuse) the scene camera looking at ``points`` from ``view`` (a name in ``VIEWS`` or
    (azimuth, elevation) degrees) and back it off until every point is inside the frame with ``margin``."""
    import bpy
    from mathutils import Matrix

    az, el = VIEWS[view] if isinstance(view, str) else view
    az, el = math.radians(az), math.radians(el)
    d = np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])  # target -> camera
    f = -d
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    if camera is None:
        cam_data = bpy.data.cameras.new("DPoser Camera")
        camera = bpy.data.objects.new("DPoser Camera", cam_data)
        scene.collection.objects.link(camera)
    camera.data.type = 'PERSP'
    camera.data.lens = lens
    camera.data.sensor_fit = 'AUTO'
    camera.data.sensor_width = 36.0
    w, h = scene.render.resolution_x, scene.render.resolution_y
    tan_w = 18.0 / lens * (1.0 if w >= h else w / h)
    tan_h = 18.0 / lens * (h / w if w >= h else 1.0)
    tan_w *= 1.0 - 2 * margin
    tan_h *= 1.0 - 2 * margin
    target = 0.5 * (points.min(0) + points.max(0))
    dist = 1.0
    for _ in range(6):
        q = points - target
        qx, qy, qd = q @ r, q @ u, q @ d
        dist = float(max(np.max(qd + np.abs(qx) / tan_w), np.max(qd + np.abs(qy) / tan_h)))
        depth = dist - qd
        sx, sy = qx / depth, qy / depth
        cx, cy = 0.5 * (sx.min() + sx.max()), 0.5 * (sy.min() + sy.max())
        if abs(cx) < 1e-4 and abs(cy) < 1e-4:
            break
        target = target + (cx * r + cy * u) * float(np.median(depth))
    loc = target + dist * d
    rot = np.stack([r, u, d], axis=1)  # camera looks down its -Z, +Y up
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, loc
    camera.matrix_world = Matrix(m.tolist())
    camera.data.clip_start = 0.05
    camera.data.clip_end = max(100.0, 4 * dist)
    scene.camera = camera
    return camera


def add_floor(scene: Any, points: np.ndarray, z: float = 0.0, pad: float = 3.0) -> Any:
    """A floor plane at height ``z`` under ``points`` (padded so the horizon stays out of view)."""
    import bpy

    lo, hi = points.min(0), points.max(0)
    cx, cy = 0.5 * (lo[:2] + hi[:2])
    sx, sy = (hi[:2] - lo[:2]) * 0.5 + pad
    me = bpy.data.meshes.new("DPoser Floor")
    me.from_pydata([(cx - sx, cy - sy, z), (cx + sx, cy - sy, z), (cx + sx, cy + sy, z), (cx - sx, cy + sy, z)],
                   [], [(0, 1, 2, 3)])
    mat = bpy.data.materials.get("DPoser Floor") or bpy.data.materials.new("DPoser Floor")
    mat.diffuse_color = FLOOR_COLOR
    mat.roughness = 1.0
    me.materials.append(mat)
    obj = bpy.data.objects.new("DPoser Floor", me)
    scene.collection.objects.link(obj)
    return obj


def render_png(scene: Any, filepath: str) -> str:
    """Render the scene's camera view to ``filepath`` (PNG); returns the path."""
    import bpy

    scene.render.filepath = filepath
    with _scene_context(scene):
        bpy.ops.render.render(write_still=True, scene=scene.name)
    return filepath


@contextmanager
def _scene_context(scene: Any) -> Iterator[None]:
    import bpy

    win = bpy.context.window
    if win is not None and win.scene != scene:
        old = win.scene
        win.scene = scene
        try:
            yield
        finally:
            win.scene = old
    else:
        yield


def body_objects(armature_obj: Any) -> list[Any]:
    """Mesh children of an armature that are deformed by it."""
    return [c for c in armature_obj.children if c.type == 'MESH']


def remove_objects(objs: Sequence[Any]) -> None:
    """Remove objects (already removed ones are skipped) and their DPoser-made data once unused."""
    import bpy

    for o in objs:
        try:
            if o is None or o.name not in bpy.data.objects:
                continue
        except ReferenceError:  # already removed
            continue
        data = o.data
        bpy.data.objects.remove(o, do_unlink=True)
        if data is not None and data.name.startswith("DPoser"):
            remove_if_unused(data)


def _hidden(objs: Sequence[Any]) -> list[tuple[Any, bool]]:
    saved = [(o, o.hide_render) for o in objs]
    for o in objs:
        o.hide_render = True
    return saved


def render_objects(scene: Any, objects: Sequence[Any], filepath: str, view: str | tuple[float, float] = "three_quarter",
                   resolution: tuple[int, int] = (640, 480), floor: bool = True, lens: float = 50.0,
                   hide_others: bool = True, keep: bool = False, engine: str = "BLENDER_WORKBENCH",
                   extra_visible: Sequence[Any] = ()) -> str:
    """Render ``objects`` (armatures expand to their body meshes) framed by an auto camera to a PNG.

    Armature objects themselves are hidden in the render (bones are not rendered anyway); other objects
    in the scene are hidden while rendering when ``hide_others``. The scene's render settings (engine,
    resolution, output path, colour management, camera) are restored afterwards.
    """
    with preserved_render_settings(scene):
        return _render_objects(scene, objects, filepath, view, resolution, floor, lens, hide_others, keep, engine,
                               extra_visible)


def _render_objects(scene: Any, objects: Sequence[Any], filepath: str, view: str | tuple[float, float],
                    resolution: tuple[int, int], floor: bool, lens: float, hide_others: bool, keep: bool,
                    engine: str, extra_visible: Sequence[Any]) -> str:
    import bpy

    setup_scene(scene, resolution, engine=engine)
    subjects: list[Any] = []
    for o in objects:
        subjects.extend(body_objects(o) if o.type == 'ARMATURE' else [o])
    bpy.context.view_layer.update()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    pts = world_points((subjects or list(objects)) + list(extra_visible), depsgraph)
    created: list[Any] = []
    keep_visible = set(subjects) | set(extra_visible)
    saved = _hidden([o for o in scene.objects if o not in keep_visible and o.type in {'MESH', 'CURVE', 'SURFACE', 'META', 'FONT'}]) \
        if hide_others else []
    try:
        old_cam = scene.camera
        cam = frame_camera(scene, pts, view, lens=lens)
        created.append(cam)
        if floor:
            created.append(add_floor(scene, pts, z=0.0 if pts[:, 2].min() > -0.05 else float(pts[:, 2].min())))
        render_png(scene, filepath)
    finally:
        for o, h in saved:
            o.hide_render = h
        if not keep:
            scene.camera = old_cam
            remove_objects(created)
    return filepath


def add_label(collection: Any, text: str, location: tuple[float, float, float], size: float = 0.09) -> Any:
    """A text object standing upright and facing -Y (the camera side) at ``location``, centred."""
    import bpy

    cu = bpy.data.curves.new("DPoser Label", 'FONT')
    cu.body = text
    cu.size = size
    cu.align_x = 'CENTER'
    cu.align_y = 'BOTTOM'
    mat = bpy.data.materials.get("DPoser Label") or bpy.data.materials.new("DPoser Label")
    mat.diffuse_color = LABEL_COLOR
    cu.materials.append(mat)
    obj = bpy.data.objects.new("DPoser Label", cu)
    obj.location = location
    obj.rotation_euler = (math.radians(90.0), 0.0, 0.0)
    collection.objects.link(obj)
    return obj


def read_png_pixels(path: str) -> np.ndarray:
    """A PNG's pixels as (H, W, 4) float32 RGBA, rows bottom-up (Blender's order)."""
    import bpy

    img = bpy.data.images.load(path)
    try:
        w, h = img.size
        px = np.empty(w * h * 4, dtype=np.float32)
        img.pixels.foreach_get(px)
        return px.reshape(h, w, 4)
    finally:
        bpy.data.images.remove(img)


def write_png_pixels(canvas: np.ndarray, filepath: str) -> str:
    """Save (H, W, 4) float RGBA pixels (rows bottom-up) as a PNG; returns ``filepath``."""
    import bpy

    out = bpy.data.images.new("DPoser Sheet", canvas.shape[1], canvas.shape[0], alpha=False)
    try:
        out.pixels.foreach_set(np.ascontiguousarray(canvas, dtype=np.float32).ravel())
        out.filepath_raw = filepath
        out.file_format = 'PNG'
        out.save()
    finally:
        bpy.data.images.remove(out)
    return filepath


def tile_pngs(paths: Sequence[str], columns: int, filepath: str) -> str:
    """Tile equally sized PNGs into one PNG, row-major from the top-left; returns ``filepath``."""
    imgs = [read_png_pixels(p) for p in paths]
    h, w = imgs[0].shape[:2]
    rows = (len(imgs) + columns - 1) // columns
    canvas = np.ones((rows * h, columns * w, 4), dtype=np.float32)
    canvas[..., :3] = imgs[0][-1, 0, :3]  # background colour of the renders (top-left pixel; rows bottom-up)
    for i, im in enumerate(imgs):
        r, c = divmod(i, columns)
        y0 = (rows - 1 - r) * h  # pixel rows go bottom-up
        canvas[y0:y0 + h, c * w:(c + 1) * w] = im
    return write_png_pixels(canvas, filepath)


__all__ = ["setup_scene", "preserved_render_settings", "world_points", "frame_camera", "add_floor", "render_png",
           "body_objects", "remove_objects", "render_objects", "add_label", "read_png_pixels", "write_png_pixels",
           "tile_pngs", "VIEWS", "BACKGROUND"]
