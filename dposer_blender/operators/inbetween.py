"""In-between: fill every frame strictly between keys A and B with poses from the prior.

Frames A and B default to the previous and next keyframe around the current frame. The keys at A and
B are never written (their F-curve points stay bit-exact); the generated keys get keyframe type
'GENERATED'. The root is either in-betweened too (the backend interpolates the pelvis rotation and, when
it is keyed, the pelvis translation, with the same ease as the body) or left to Blender's own interpolation.
"""

from typing import Any

import bpy
import numpy as np
from bpy.props import EnumProperty, IntProperty

from ..blender import fcurves
from ..blender.rig import SMPLRig, bone_data_to_pose
from ..core.keys import hemisphere_align, keys_around
from ..core.pose_convert import pelvis_location_to_trans, smpl_to_pose_quats, trans_to_pelvis_location
from ..properties import EASE_ITEMS, ROOT_ITEMS, frame_values
from ._base import BackendOperator
from ._context import OpError, active_action, object_and_action_after_call, pose_quats_at, smpl_object


def default_range(obj: Any, frame: int) -> tuple[int | None, int | None]:
    """(previous key <= frame, next key > frame) of ``obj``'s active action (None where there is none)."""
    ad = obj.animation_data
    if ad is None or ad.action is None:
        return None, None
    return keys_around(fcurves.keyed_frames(ad.action, obj, prefix="pose.bones"), frame)


class DPOSER_OT_inbetween(BackendOperator, bpy.types.Operator):
    """Fill every frame between two keys with in-between poses from the pose prior"""

    bl_idname = "dposer.inbetween"
    bl_label = "In-between"
    bl_options = {'REGISTER', 'UNDO'}
    progress_label = "In-between"

    frame_a: IntProperty(name="Frame A", description="First key (-1: the key at or before the current frame)",
                         default=-1)
    frame_b: IntProperty(name="Frame B", description="Second key (-1: the key after the current frame)",
                         default=-1)
    ease: EnumProperty(name="Ease", items=EASE_ITEMS, default="linear")
    root: EnumProperty(name="Root", items=ROOT_ITEMS, default="INTERPOLATE")
    steps: IntProperty(name="Steps", description="ODE steps (0: the backend's default)", default=0, min=0, max=1000)
    seed: IntProperty(name="Seed", default=-1, min=-1)

    def scene_defaults(self, settings: Any) -> dict[str, Any]:
        a, b = frame_values(settings)
        return {"frame_a": a, "frame_b": b, "ease": settings.ease, "root": settings.root}

    def build_request(self, context: Any) -> tuple[str, dict]:
        obj = smpl_object(context)
        action = active_action(obj)
        da, db = default_range(obj, context.scene.frame_current)
        a = self.frame_a if self.frame_a >= 0 else da
        b = self.frame_b if self.frame_b >= 0 else db
        if a is None or b is None:
            raise OpError("In-between needs a key before and a key after the current frame (or set frames A and B)")
        if b - a < 2:
            raise OpError(f"Frames A={a} and B={b} have no frame between them to fill")
        rig = SMPLRig.from_armature(obj)
        qa, la = pose_quats_at(obj, action, a, rig)
        qb, lb = pose_quats_at(obj, action, b, rig)
        body, root, _ = bone_data_to_pose(np.stack([qa, qb]), None, rig)
        self._job = dict(obj=obj.name, action=action.name, a=int(a), b=int(b), qa=qa)
        params = {"keys": body.reshape(2, 63).astype(np.float32), "n_frames": int(b - a - 1), "ease": self.ease,
                  "steps": self.steps or None, "seed": None if self.seed < 0 else self.seed}
        if self.root == "INTERPOLATE":
            params["root_orient"] = root.astype(np.float32)
            if la is not None and lb is not None:  # the pelvis location is keyed: in-between it too
                params["trans"] = pelvis_location_to_trans(np.stack([la, lb]), rig.rest_rots[0]).astype(np.float32)
        return "inbetween", params

    def apply_result(self, context: Any, result: Any) -> set[str]:
        job = self._job
        obj, action = object_and_action_after_call(job, "in-betweening")
        a, b = job["a"], job["b"]
        k = b - a - 1
        poses = np.asarray(result.poses, np.float64)
        if poses.shape[0] != k + 2 or not np.all(np.isfinite(poses)):
            raise OpError(f"the backend returned {poses.shape[0]} frames, expected {k + 2}")
        rig = SMPLRig.from_armature(obj)
        mid = poses[1:-1]
        interp_root = self.root == "INTERPOLATE" and result.root_orient is not None
        root = np.asarray(result.root_orient, np.float64)[1:-1] if interp_root else None
        quats = smpl_to_pose_quats(mid, root, rig.rest_rots)  # (k,24,4)
        joints = list(range(1, 22)) + ([0] if interp_root else [])
        quats = hemisphere_align(quats[:, joints], job["qa"][joints])
        frames = np.arange(a + 1, b, dtype=np.float64)
        kt = fcurves.generated_key_type()
        cont = fcurves.container_of(obj, action, create=True)
        for col, j in enumerate(joints):
            bone = rig.bone_names[j]
            if bone is None:
                continue
            obj.pose.bones[bone].rotation_mode = 'QUATERNION'
            path = fcurves.ROT_PATH.format(bone)
            for i in range(4):
                fcurves.write_keys(fcurves.fcurve(cont, path, i, bone), frames, quats[:, col, i], "LINEAR", kt,
                                   between=(a, b))
        if interp_root and result.trans is not None:
            loc = trans_to_pelvis_location(np.asarray(result.trans, np.float64)[1:-1], rig.rest_rots[0])
            pelvis = rig.bone_names[0]
            path = fcurves.LOC_PATH.format(pelvis)
            for i in range(3):
                fcurves.write_keys(fcurves.fcurve(cont, path, i, pelvis), frames, loc[:, i], "LINEAR", kt,
                                   between=(a, b))
        context.scene.frame_set(context.scene.frame_current)
        self.report({'INFO'}, f"In-betweened {k} frames between {a} and {b}")
        return {'FINISHED'}


CLASSES = [DPOSER_OT_inbetween]
HOOKS: list = []
