"""In-between: fill every frame strictly between keys A and B with poses from the prior.

Frames A and B default to the previous and next keyframe around the current frame. The keys at A and
B are never written (their F-curve points stay bit-exact); the generated keys get keyframe type
'GENERATED'. The root (pelvis rotation and location) is either in-betweened too (rotation slerped by
the backend with the same ease, location interpolated) or left to Blender's own interpolation.
"""

from typing import Any

import bpy
import numpy as np
from bpy.props import EnumProperty, IntProperty

from .. import action_io as aio
from .. import pose_convert as pc
from ._base import (BackendOperator, OpError, active_action, fcurve_container, get_fcurve, hemisphere_align,
                    object_and_action_after_call, pose_quats_at, replace_keys_in_range, smpl_object)

EASES = [("linear", "Linear", "Constant speed"),
         ("ease_in_out", "Ease In/Out", "Slow at both keys"),
         ("ease_in", "Ease In", "Slow at A"),
         ("ease_out", "Ease Out", "Slow at B")]
ROOT_MODES = [("INTERPOLATE", "Fill Root", "Also fill the pelvis rotation (and location, if keyed)"),
              ("KEEP", "Keep Root", "Leave the pelvis channels to Blender's interpolation")]


def default_range(obj: Any, frame: int) -> tuple[int | None, int | None]:
    """(previous key <= frame, next key > frame) of ``obj``'s active action (None where there is none)."""
    ad = obj.animation_data
    if ad is None or ad.action is None:
        return None, None
    fr = []
    for fc in aio.action_fcurves(ad.action, obj):
        if fc.data_path.startswith("pose.bones"):
            co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
            fc.keyframe_points.foreach_get("co", co)
            fr.append(co[0::2])
    keys = np.unique(np.concatenate(fr)).astype(np.float64) if fr else np.zeros(0)
    prev = keys[keys <= frame + 1e-6]
    nxt = keys[keys > frame + 1e-6]
    a = int(round(prev[-1])) if len(prev) else None
    b = int(round(nxt[0])) if len(nxt) else None
    if a is not None and b is None and len(prev) >= 2 and abs(prev[-1] - frame) < 1e-6:
        a, b = int(round(prev[-2])), a  # on the last key: fill up to it
    return a, b


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
    ease: EnumProperty(name="Ease", items=EASES, default="linear")
    root: EnumProperty(name="Root", items=ROOT_MODES, default="INTERPOLATE")
    steps: IntProperty(name="Steps", description="ODE steps (0: the backend's default)", default=0, min=0, max=1000)
    seed: IntProperty(name="Seed", default=-1, min=-1)

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
        rig = pc.SMPLRig.from_armature(obj)
        qa, la = pose_quats_at(obj, action, a, rig)
        qb, lb = pose_quats_at(obj, action, b, rig)
        body, root, _ = pc.bone_data_to_pose(np.stack([qa, qb]), None, rig)
        self._job = dict(obj=obj.name, action=action.name, a=int(a), b=int(b), qa=qa, loc=(la, lb))
        params = {"keys": body.reshape(2, 63).astype(np.float32), "n_frames": int(b - a - 1), "ease": self.ease,
                  "steps": self.steps or None, "seed": None if self.seed < 0 else self.seed}
        if self.root == "INTERPOLATE":
            params["root_orient"] = root.astype(np.float32)
        return "inbetween", params

    def apply_result(self, context: Any, result: Any) -> set[str]:
        job = self._job
        obj, action = object_and_action_after_call(job, "in-betweening")
        a, b = job["a"], job["b"]
        k = b - a - 1
        poses = np.asarray(result.poses, np.float64)
        if poses.shape[0] != k + 2 or not np.all(np.isfinite(poses)):
            raise OpError(f"the backend returned {poses.shape[0]} frames, expected {k + 2}")
        rig = pc.SMPLRig.from_armature(obj)
        mid = poses[1:-1]
        interp_root = self.root == "INTERPOLATE" and result.root_orient is not None
        root = np.asarray(result.root_orient, np.float64)[1:-1] if interp_root else None
        quats = pc.smpl_to_pose_quats(mid, root, rig.rest_rots)  # (k,24,4)
        joints = list(range(1, 22)) + ([0] if interp_root else [])
        ref = job["qa"][joints]
        quats = hemisphere_align(quats[:, joints], ref)
        frames = np.arange(a + 1, b, dtype=np.float64)
        kt = aio.key_type_value(aio.generated_key_type())
        lin = aio._INTERP["LINEAR"]  # noqa: SLF001
        cont = fcurve_container(obj, action)
        for col, j in enumerate(joints):
            bone = rig.bone_names[j]
            if bone is None:
                continue
            obj.pose.bones[bone].rotation_mode = 'QUATERNION'
            path = aio.ROT_PATH.format(bone)
            for i in range(4):
                replace_keys_in_range(get_fcurve(cont, path, i, bone), a, b, frames, quats[:, col, i], kt, lin)
        la, lb = job["loc"]
        if interp_root and la is not None and lb is not None:
            u = np.arange(1, k + 1, dtype=np.float64) / (k + 1)
            u = _ease(u, self.ease)
            loc = la[None] * (1.0 - u[:, None]) + lb[None] * u[:, None]
            path = aio.LOC_PATH.format(rig.bone_names[0])
            for i in range(3):
                replace_keys_in_range(get_fcurve(cont, path, i, rig.bone_names[0]), a, b, frames, loc[:, i], kt, lin)
        context.scene.frame_set(context.scene.frame_current)
        self.report({'INFO'}, f"In-betweened {k} frames between {a} and {b}")
        return {'FINISHED'}


def _ease(u: np.ndarray, ease: str) -> np.ndarray:
    if ease == "linear":
        return u
    if ease == "ease_in_out":
        return u * u * (3.0 - 2.0 * u)
    if ease == "ease_in":
        return u * u
    return 1.0 - (1.0 - u) ** 2


CLASSES = [DPOSER_OT_inbetween]
HOOKS: list = []
