"""Pose from a photo: fit the active SMPL armature to the person in a reference image (backend ``fit_image``).

* ``dposer.pose_from_image`` opens the file browser (images only), sends the path to the backend, and
  poses the character with the best of the ranked hypotheses (body pose and orientation: a person facing
  the camera faces Blender's front view). The photo is shown beside the character as an image empty
  ("<character> photo", never rendered). Everything is written at the end: one undo step.
* ``dposer.photo_flip`` / ``dposer.photo_apply`` / ``dposer.photo_discard`` browse the hypotheses, key the
  shown one at the current frame, or put the pose back as it was.
* When the backend's Python has no mediapipe (hello ``features.fit_image.available`` is false), the button
  is greyed out and the panel says how to install it.
"""

import os
from typing import Any

import bpy
import numpy as np
from bpy.props import IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from .. import runtime
from ..blender.rig import SMPLRig, floor_lift_of, read_pose_quats
from . import _hypotheses as _hyp
from ._base import FilePickedRequest
from ._context import OpError, object_after_call, smpl_object, smpl_poll

PROP = "dposer_photo"
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def feature_state() -> tuple[bool | None, str]:
    """(available, message) from the backend's hello; (None, "") before the backend has started."""
    hello = runtime.last_hello() or {}
    feat = (hello.get("features") or {}).get("fit_image")
    if not isinstance(feat, dict):
        return None, ""
    return bool(feat.get("available")), str(feat.get("message") or "")


def hypotheses(obj: Any) -> dict | None:
    """The stored fits (see ``_hypotheses.load``; ``image``: the photo's path), or None."""
    return _hyp.load(obj, PROP)


def show_photo(context: Any, obj: Any, path: str) -> Any:
    """The image as an upright image empty to the character's left (screen left in the front view)."""
    name = f"{obj.name} photo"
    img = bpy.data.images.load(path, check_existing=True)
    emp = bpy.data.objects.get(name)
    if emp is None or emp.type != 'EMPTY':
        emp = bpy.data.objects.new(name, None)
        for coll in obj.users_collection:
            coll.objects.link(emp)
            break
        else:
            context.scene.collection.objects.link(emp)
    emp.empty_display_type = 'IMAGE'
    emp.data = img
    emp.empty_display_size = 1.8  # the image's longer side, in metres: about a person's height
    emp.empty_image_offset = (-0.5, 0.0)  # bottom centre at the origin: stands on the floor
    emp.use_empty_image_alpha = False
    mw = obj.matrix_world
    floor = mw.translation.z - floor_lift_of(obj)
    emp.location = (mw.translation.x - 1.5, mw.translation.y, floor)
    emp.rotation_euler = (np.pi / 2, 0.0, 0.0)  # upright, facing the front view (-Y)
    emp.hide_render = True
    emp["dposer_photo_of"] = obj.name
    return emp


class DPOSER_OT_pose_from_image(FilePickedRequest, bpy.types.Operator, ImportHelper):
    """Pose the SMPL armature like the person in a photo (fitted with the pose prior); the photo is shown beside it"""

    bl_idname = "dposer.pose_from_image"
    bl_label = "Pose from Image"
    bl_options = {'REGISTER', 'UNDO'}
    progress_label = "Fitting the photo"

    filter_glob: StringProperty(default="*" + ";*".join(IMAGE_EXTS), options={'HIDDEN'})
    hypotheses: IntProperty(name="Hypotheses", description="How many fits to offer (mirrored and turned-around "
                            "starts included)", default=4, min=1, max=32)

    def scene_defaults(self, settings: Any) -> dict[str, Any]:
        return {"hypotheses": settings.photo_hypotheses}

    @classmethod
    def poll(cls, context: Any) -> bool:
        if not smpl_poll(cls, context):
            return False
        ok, msg = feature_state()
        if ok is False:
            cls.poll_message_set(msg or "Pose from a photo is not available in the backend's Python")
            return False
        return True

    def build_request(self, context: Any) -> tuple[str, dict]:
        obj = smpl_object(context)
        path = os.path.abspath(bpy.path.abspath(self.filepath))
        if not os.path.isfile(path):
            raise OpError(f"No such file: {path}")
        if os.path.splitext(path)[1].lower() not in IMAGE_EXTS:
            raise OpError(f"{os.path.basename(path)} is not an image (PNG, JPEG, WebP or BMP)")
        quats, _ = read_pose_quats(obj, SMPLRig.from_armature(obj))
        self._job = dict(obj=obj.name, path=path, orig=quats)
        return "fit_image", {"path": path, "n_hypotheses": int(self.hypotheses),
                             "smpl_model": runtime.settings().smpl_model}

    def apply_result(self, context: Any, result: Any) -> set[str]:
        job = self._job
        obj = object_after_call(job["obj"], "fitting the photo")
        poses = np.asarray(result.poses, np.float64).reshape(-1, 63)
        root = np.asarray(result.root_orient, np.float64).reshape(-1, 3)
        scores = np.asarray(result.scores, np.float64).reshape(-1)
        if not (np.all(np.isfinite(poses)) and np.all(np.isfinite(root))):
            raise OpError("the backend returned NaN poses")
        _hyp.store(obj, PROP, poses, scores, list(range(0, 22)), job["orig"], root=root, image=job["path"])
        show_photo(context, obj, job["path"])
        self.report({'INFO'}, f"{len(poses)} fits of {os.path.basename(job['path'])}, best first "
                              f"(score {scores[0]:.2f}): flip with ◀ ▶, then Apply to key")
        return {'FINISHED'}


class _PhotoHypotheses:
    PROP = PROP
    missing_state = "No photo fits yet: run Pose from Image first"


class DPOSER_OT_photo_flip(_PhotoHypotheses, _hyp.FlipBase, bpy.types.Operator):
    """Show the previous / next fit of the photo"""

    bl_idname = "dposer.photo_flip"
    bl_label = "Flip Photo Fit"


class DPOSER_OT_photo_apply(_PhotoHypotheses, _hyp.ApplyBase, bpy.types.Operator):
    """Key the shown fit (body and root rotation) at the current frame"""

    bl_idname = "dposer.photo_apply"
    bl_label = "Apply Photo Fit"


class DPOSER_OT_photo_discard(_PhotoHypotheses, _hyp.DiscardBase, bpy.types.Operator):
    """Forget the fits and put the pose back as it was"""

    bl_idname = "dposer.photo_discard"
    bl_label = "Discard Photo Fits"


CLASSES = [DPOSER_OT_pose_from_image, DPOSER_OT_photo_flip, DPOSER_OT_photo_apply, DPOSER_OT_photo_discard]
HOOKS: list = []
