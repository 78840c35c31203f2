"""Pose from Image: greyed out (with the install line) without mediapipe; with it, the photo poses the armature,
shows the image beside it, and the fits flip / apply / discard."""

from __future__ import annotations

import subprocess
from pathlib import Path

import bpy
import numpy as np
import pytest

from dposer_blender import runtime
from dposer_blender.blender import armature
from dposer_blender.blender import rig as smpl_rig
from dposer_blender.dposer_core import rotations_np as rot
from dposer_blender.operators import photo

REPO = Path(__file__).resolve().parents[2]
PHOTO = REPO / "tests" / "data" / "photos" / "mannequin_front.png"

pytestmark = pytest.mark.usefixtures("dposer_addon")


def _backend_has_mediapipe() -> bool:
    from operator_helpers import backend_python

    proc = subprocess.run([backend_python(), "-c", "import mediapipe"], capture_output=True, timeout=120)
    return proc.returncode == 0


def test_the_button_follows_the_backend_feature() -> None:
    obj = armature.create_smpl_armature(mannequin=False)
    bpy.context.view_layer.objects.active = obj
    runtime.call("ping")  # the hello carries the features
    ok, msg = photo.feature_state()
    assert ok is not None, runtime.last_hello()
    poll = photo.DPOSER_OT_pose_from_image.poll(bpy.context)
    assert poll == ok
    if not ok:
        assert "install" in msg and "photo.txt" in msg, msg
        with pytest.raises(RuntimeError):
            bpy.ops.dposer.pose_from_image(filepath=str(PHOTO))


def test_a_non_image_is_refused_with_a_plain_message(tmp_path: Path) -> None:
    obj = armature.create_smpl_armature(mannequin=False)
    bpy.context.view_layer.objects.active = obj
    runtime.call("ping")
    if photo.feature_state()[0] is False:
        pytest.skip("the backend's Python has no mediapipe (pip install --no-deps -r requirements/photo.txt)")
    txt = tmp_path / "notes.txt"
    txt.write_text("not a photo")
    with pytest.raises(RuntimeError, match="notes.txt is not an image"):
        bpy.ops.dposer.pose_from_image(filepath=str(txt))
    assert obj.get(photo.PROP) is None


def test_pose_from_image_poses_the_armature_and_shows_the_photo() -> None:
    if not _backend_has_mediapipe():
        pytest.skip("the backend's Python has no mediapipe (pip install --no-deps -r requirements/photo.txt)")
    obj = armature.create_smpl_armature(mannequin=False)
    bpy.context.view_layer.objects.active = obj
    before, _, _ = smpl_rig.read_smpl_pose(obj)
    assert bpy.ops.dposer.pose_from_image(filepath=str(PHOTO), hypotheses=3) == {'FINISHED'}
    h = photo.hypotheses(obj)
    assert h is not None and h["count"] == 3 and list(h["scores"]) == sorted(h["scores"])
    body, root, _ = smpl_rig.read_smpl_pose(obj)
    assert np.abs(rot.axis_angle_to_matrix(body) - rot.axis_angle_to_matrix(h["poses"][0])).max() < 1e-4
    emp = bpy.data.objects.get(f"{obj.name} photo")
    assert emp is not None and emp.empty_display_type == 'IMAGE' and emp.data is not None and emp.hide_render
    assert Path(bpy.path.abspath(emp.data.filepath)).resolve() == PHOTO.resolve()
    assert bpy.ops.dposer.photo_flip(direction=1) == {'FINISHED'} and photo.hypotheses(obj)["index"] == 1
    assert bpy.ops.dposer.photo_discard() == {'FINISHED'}
    after, _, _ = smpl_rig.read_smpl_pose(obj)
    assert np.abs(rot.axis_angle_to_matrix(after) - rot.axis_angle_to_matrix(before)).max() < 1e-5
    assert obj.get(photo.PROP) is None
