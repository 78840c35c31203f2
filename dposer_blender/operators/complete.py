"""Complete: keep the selected bones and the bones whose rotation is locked, fill the rest.

``dposer.complete`` asks for H hypotheses (best first by the prior's score), stores them on the
armature (custom properties, so they survive undo / save) and shows the first one on the free bones.
``dposer.complete_flip`` steps through them (◀ ▶), ``dposer.complete_apply`` keys the shown one at the
current frame, ``dposer.complete_discard`` puts the free bones back. Kept bones are never written, so
they stay bit-exact.
"""

from typing import Any

import bpy
import numpy as np
from bpy.props import IntProperty

from .. import action_io as aio
from .. import pose_convert as pc
from ._base import (BackendOperator, OpError, StatePoll, active_object, body_bone_names, current_body_pose,
                    object_after_call, smpl_object)

PROP = "dposer_complete"


def bone_selected(obj: Any, bone_name: str) -> bool:
    """Selection state of a bone (PoseBone.select on 5.x, Bone.select on 4.x)."""
    pb = obj.pose.bones[bone_name]
    if hasattr(pb, "select"):
        return bool(pb.select)
    return bool(obj.data.bones[bone_name].select)


def kept_joints(obj: Any, rig: pc.SMPLRig) -> list[int]:
    """SMPL body joints (1..21) that are kept: the bone is selected or its X, Y and Z rotation locks are on."""
    out = []
    for j in range(1, 22):
        name = rig.bone_names[j]
        pb = obj.pose.bones[name]
        locked = all(pb.lock_rotation)  # X, Y and Z locked (W alone does not pin a rotation)
        if bone_selected(obj, name) or locked:
            out.append(j)
    return out


def hypotheses(obj: Any) -> dict | None:
    d = obj.get(PROP)
    if d is None:
        return None
    H = int(d["count"])
    return {"poses": np.array(d["poses"], dtype=np.float64, copy=True).reshape(H, 21, 3),
            "scores": np.array(d["scores"], dtype=np.float64, copy=True).reshape(H),
            "index": int(d["index"]), "free": [int(j) for j in d["free"]],
            "orig": np.array(d["orig"], dtype=np.float64, copy=True).reshape(24, 4), "count": H}


def show_hypothesis(obj: Any, index: int) -> None:
    h = hypotheses(obj)
    if h is None:
        return
    index %= h["count"]
    obj[PROP]["index"] = index
    rig = pc.SMPLRig.from_armature(obj)
    pc.apply_smpl_pose(obj, h["poses"][index], None, None, rig, joints=h["free"])


class DPOSER_OT_complete(BackendOperator, bpy.types.Operator):
    """Fill the unselected, unlocked body bones with plausible rotations (selected and locked bones are kept)"""

    bl_idname = "dposer.complete"
    bl_label = "Complete Pose"
    bl_options = {'REGISTER', 'UNDO'}
    progress_label = "Completing"

    hypotheses: IntProperty(name="Hypotheses", description="How many completions to offer", default=5, min=1,
                            max=50)
    steps: IntProperty(name="Steps", description="Optimisation steps", default=200, min=1, max=5000)
    seed: IntProperty(name="Seed", default=-1, min=-1)

    def build_request(self, context: Any) -> tuple[str, dict]:
        obj = smpl_object(context)
        rig = pc.SMPLRig.from_armature(obj)
        keep = kept_joints(obj, rig)
        if len(keep) == 21:
            raise OpError("Every body bone is selected or locked: nothing to complete. Deselect the bones to fill")
        body, root = current_body_pose(obj, rig)
        quats, _ = pc.read_pose_quats(obj, rig)
        self._job = dict(obj=obj.name, keep=keep, orig=quats)
        keep_mask = [j in keep for j in range(1, 22)]  # the 21 body joints, in pose order
        return "complete", {"pose": body.reshape(63).astype(np.float32), "keep": keep_mask,
                            "n_hypotheses": int(self.hypotheses), "steps": int(self.steps),
                            "seed": None if self.seed < 0 else int(self.seed)}

    def apply_result(self, context: Any, result: Any) -> set[str]:
        job = self._job
        obj = object_after_call(job["obj"], "completing")
        poses = np.asarray(result.poses, np.float64).reshape(-1, 63)
        scores = np.asarray(result.scores, np.float64).reshape(-1)
        if not np.all(np.isfinite(poses)):
            raise OpError("the backend returned NaN poses")
        free = [j for j in range(1, 22) if j not in job["keep"]]
        obj[PROP] = {"count": len(poses), "poses": poses.reshape(-1).tolist(), "scores": scores.tolist(),
                     "index": 0, "free": free, "orig": np.asarray(job["orig"]).reshape(-1).tolist()}
        show_hypothesis(obj, 0)
        self.report({'INFO'}, f"{len(poses)} completions (score {scores[0]:.3f} is the best); "
                              "flip with ◀ ▶, then Apply to key")
        return {'FINISHED'}


class _HypothesisOperator(StatePoll):
    """Poll of the operators that browse / apply / discard the stored completions."""

    missing_state = "No completions yet: run Complete first"

    @classmethod
    def has_state(cls, context: Any) -> bool:
        return active_object(context).get(PROP) is not None


class DPOSER_OT_complete_flip(_HypothesisOperator, bpy.types.Operator):
    """Show the previous / next completion"""

    bl_idname = "dposer.complete_flip"
    bl_label = "Flip Completion"
    bl_options = {'REGISTER', 'UNDO'}

    direction: IntProperty(name="Direction", default=1, min=-1, max=1)

    def execute(self, context: Any) -> set[str]:
        obj = smpl_object(context)
        h = hypotheses(obj)
        i = (h["index"] + (self.direction or 1)) % h["count"]
        show_hypothesis(obj, i)
        self.report({'INFO'}, f"Completion {i + 1}/{h['count']}, score {h['scores'][i]:.3f}")
        return {'FINISHED'}


class DPOSER_OT_complete_apply(_HypothesisOperator, bpy.types.Operator):
    """Key the shown completion at the current frame"""

    bl_idname = "dposer.complete_apply"
    bl_label = "Apply Completion"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context: Any) -> set[str]:
        obj = smpl_object(context)
        h = hypotheses(obj)
        show_hypothesis(obj, h["index"])
        rig = pc.SMPLRig.from_armature(obj)
        frame = context.scene.frame_current
        aio.key_pose(obj, frame, body_bone_names(rig))
        del obj[PROP]
        self.report({'INFO'}, f"Completion {h['index'] + 1} keyed at frame {frame}")
        return {'FINISHED'}


class DPOSER_OT_complete_discard(_HypothesisOperator, bpy.types.Operator):
    """Forget the completions and put the filled bones back as they were"""

    bl_idname = "dposer.complete_discard"
    bl_label = "Discard Completions"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context: Any) -> set[str]:
        obj = smpl_object(context)
        h = hypotheses(obj)
        rig = pc.SMPLRig.from_armature(obj)
        for j in h["free"]:
            pb = obj.pose.bones[rig.bone_names[j]]
            pb.rotation_mode = 'QUATERNION'
            pb.rotation_quaternion = tuple(h["orig"][j])
        del obj[PROP]
        return {'FINISHED'}


CLASSES = [DPOSER_OT_complete, DPOSER_OT_complete_flip, DPOSER_OT_complete_apply, DPOSER_OT_complete_discard]
HOOKS: list = []
