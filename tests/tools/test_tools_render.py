"""The tools' headless render helpers (Workbench): PNGs are written, show a figure, and leave the scene clean."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from dposer_blender.blender import armature
from dposer_blender.blender.actions import write_action
from dposer_blender.blender.rig import SMPLRig, pose_to_bone_data
from dposer_core.skeleton import joint_names
from tools import figures, render


def _png_pixels(path: Path) -> np.ndarray:
    return render.read_png_pixels(str(path))


def test_render_objects_and_contact_sheet(tmp_path: Path) -> None:
    obj = armature.create_smpl_armature()
    scene = bpy.context.scene
    n_obj = len(bpy.data.objects)
    out = render.render_objects(scene, [obj], str(tmp_path / "one.png"), resolution=(160, 120))
    px = _png_pixels(Path(out))
    assert px.shape == (120, 160, 4)
    assert px[..., :3].std() > 0.02  # not a blank frame
    names = joint_names()
    p = np.zeros((21, 3))
    p[names.index("left_knee") - 1] = (1.2, 0.0, 0.0)
    out2 = figures.contact_sheet(obj, [(np.zeros(63), None), (p, None)], str(tmp_path / "sheet.png"),
                                resolution=(200, 100))
    assert _png_pixels(Path(out2)).shape == (100, 200, 4)
    out3 = figures.contact_sheet(obj, [(np.zeros(63), None), (p, None), (p, np.array([0.0, 1.0, 0.0]))],
                                str(tmp_path / "grid.png"), columns=2, resolution=(160, 160), labels=["a", "b", "c"])
    px3 = _png_pixels(Path(out3))
    assert px3.shape == (160, 160, 4)
    # the empty 4th cell is plain background: bottom-right (bpy pixel rows go bottom-up)
    assert np.ptp(px3[:80, 80:, :3].reshape(-1, 3), axis=0).max() < 1e-6
    assert px3[80:, 80:, :3].std() > 0.02
    assert not list(tmp_path.glob("grid.png.cell*"))
    assert len(bpy.data.objects) == n_obj  # duplicates, camera and floor removed
    assert all(not o.hide_render for o in scene.objects)


def test_filmstrip(tmp_path: Path) -> None:
    obj = armature.create_smpl_armature()
    rig = SMPLRig.from_armature(obj)
    body = np.zeros((3, 21, 3))
    body[:, joint_names().index("left_hip") - 1, 0] = [-0.3, -0.9, -1.5]
    q, _ = pose_to_bone_data(body, None, None, rig)
    write_action(obj, q, rig.bone_names, frame_start=1)
    out = figures.filmstrip(obj, [1, 2, 3], str(tmp_path / "strip.png"), resolution=(240, 80))
    assert _png_pixels(Path(out)).shape == (80, 240, 4)
    assert bpy.context.scene.frame_current == 1


def test_render_settings_restored(tmp_path: Path) -> None:
    obj = armature.create_smpl_armature()
    scene = bpy.context.scene
    r = scene.render
    r.engine = 'CYCLES'
    r.resolution_x, r.resolution_y = 333, 222
    r.filepath = "//keep_me"
    render.render_objects(scene, [obj], str(tmp_path / "x.png"), resolution=(64, 48))
    assert (r.engine, r.resolution_x, r.resolution_y, r.filepath) == ('CYCLES', 333, 222, "//keep_me")
    assert scene.camera is None
