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

from ..blender.rig import SMPLRig, kept_joints, read_pose_quats
from ..core.keep import free_joints, keep_mask
from . import _hypotheses as _hyp
from ._base import BackendOperator
from ._context import OpError, current_body_pose, object_after_call, smpl_object

PROP = "dposer_complete"


def hypotheses(obj: Any) -> dict | None:
    """The stored completions (see ``_hypotheses.load``), or None."""
    return _hyp.load(obj, PROP)


class DPOSER_OT_complete(BackendOperator, bpy.types.Operator):
    """Fill the unselected, unlocked body bones with plausible rotations (selected and locked bones are kept)"""

    bl_idname = "dposer.complete"
    bl_label = "Complete Pose"
    bl_options = {'REGISTER', 'UNDO'}
    progress_label = "Completing"

    hypotheses: IntProperty(name="Hypotheses", description="How many completions to offer", default=5, min=1,
                            max=50)
    steps: IntProperty(name="Steps", description="Optimisation steps of the backend's 'optimize' method (the default "
                       "'inpaint' method runs its own fixed schedule)", default=200, min=1, max=5000)
    seed: IntProperty(name="Seed", default=-1, min=-1)

    def scene_defaults(self, settings: Any) -> dict[str, Any]:
        return {"hypotheses": settings.hypotheses}

    def build_request(self, context: Any) -> tuple[str, dict]:
        obj = smpl_object(context)
        rig = SMPLRig.from_armature(obj)
        keep = kept_joints(obj, rig)
        if len(keep) == 21:
            raise OpError("Every body bone is selected or locked: nothing to complete. Deselect the bones to fill")
        body, root = current_body_pose(obj, rig)
        quats, _ = read_pose_quats(obj, rig)
        self._job = dict(obj=obj.name, keep=keep, orig=quats)
        return "complete", {"pose": body.reshape(63).astype(np.float32), "keep": keep_mask(keep),
                            "n_hypotheses": int(self.hypotheses), "steps": int(self.steps),
                            "seed": None if self.seed < 0 else int(self.seed)}

    def apply_result(self, context: Any, result: Any) -> set[str]:
        job = self._job
        obj = object_after_call(job["obj"], "completing")
        poses = np.asarray(result.poses, np.float64).reshape(-1, 63)
        scores = np.asarray(result.scores, np.float64).reshape(-1)
        if not np.all(np.isfinite(poses)):
            raise OpError("the backend returned NaN poses")
        _hyp.store(obj, PROP, poses, scores, free_joints(job["keep"]), job["orig"])
        self.report({'INFO'}, f"{len(poses)} completions (score {scores[0]:.3f} is the best); "
                              "flip with ◀ ▶, then Apply to key")
        return {'FINISHED'}


class _CompleteHypotheses:
    PROP = PROP
    missing_state = "No completions yet: run Complete first"


class DPOSER_OT_complete_flip(_CompleteHypotheses, _hyp.FlipBase, bpy.types.Operator):
    """Show the previous / next completion"""

    bl_idname = "dposer.complete_flip"
    bl_label = "Flip Completion"


class DPOSER_OT_complete_apply(_CompleteHypotheses, _hyp.ApplyBase, bpy.types.Operator):
    """Key the shown completion at the current frame"""

    bl_idname = "dposer.complete_apply"
    bl_label = "Apply Completion"


class DPOSER_OT_complete_discard(_CompleteHypotheses, _hyp.DiscardBase, bpy.types.Operator):
    """Forget the completions and put the filled bones back as they were"""

    bl_idname = "dposer.complete_discard"
    bl_label = "Discard Completions"


CLASSES = [DPOSER_OT_complete, DPOSER_OT_complete_flip, DPOSER_OT_complete_apply, DPOSER_OT_complete_discard]
HOOKS: list = []
