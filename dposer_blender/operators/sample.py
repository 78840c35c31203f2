"""Sample / Variations: N candidate poses as ghosts in a row beside the character (``blender/ghosts.py``).

* ``dposer.sample`` / ``dposer.variations`` ask the backend for poses, then for their plausibility
  scores, and show the candidates best first (replacing earlier ones of that character).
* Clicking a ghost (its body or its label) picks it: Blender's own selection, one undo step, and the
  character is not touched. ``dposer.apply_candidate`` applies the picked ghost (or one by index) to the
  character, and with ``key`` also keys it at the current frame and removes the ghosts ("Apply & Key").
* ``dposer.clear_candidates`` removes the ghosts (objects, their data, the empty collection).
"""

from typing import Any

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty

from ..blender.ghosts import apply_ghost, clear_ghosts, ghost_of, ghosts_of, make_ghosts
from ..properties import SAMPLER_ITEMS, seed_value, steps_value
from ._base import BackendOperator
from ._context import StatePoll, active_object, current_body_pose, object_after_call, smpl_object


class _CandidateSampler:
    """What Sample and Variations share: count / seed / steps, and showing the answer as ghosts."""

    n: IntProperty(name="Count", description="How many candidate poses", default=6, min=1, max=64)
    seed: IntProperty(name="Seed", description="Random seed (-1: a new one each time)", default=-1, min=-1)
    steps: IntProperty(name="Steps", description="Sampler steps (0: the sampler's default)", default=0, min=0,
                       max=5000)

    def scene_defaults(self, settings: Any) -> dict[str, Any]:
        return {"n": settings.n, "seed": seed_value(settings), "steps": steps_value(settings)}

    def _seed(self) -> int | None:
        return None if self.seed < 0 else int(self.seed)

    def _steps(self) -> int | None:
        return None if self.steps <= 0 else int(self.steps)

    def follow_up(self, context: Any, result: Any) -> tuple[str, dict] | None:
        """After the poses: their scores, so the ghosts can be labelled and ordered best first."""
        if getattr(self, "_poses", None) is not None:
            return None
        self._poses = np.asarray(result.poses, np.float64).reshape(-1, 63)
        return "score", {"poses": self._poses.astype(np.float32)}

    def _show_ghosts(self, context: Any, result: Any, label: str, noun: str) -> set[str]:
        """``apply_result`` (of the score request): the poses as ghosts of the character, best score first."""
        owner = object_after_call(self._owner, "sampling")
        poses = self._poses
        scores = np.asarray(result.pose, np.float64).reshape(-1)
        if np.all(np.isfinite(scores)):
            order = np.argsort(scores, kind="stable")
            make_ghosts(context, owner, poses[order], label, scores[order])
        else:
            make_ghosts(context, owner, poses, label)
        self.report({'INFO'}, f"{len(poses)} {noun}, best score first: click one, then Apply or Apply & Key")
        return {'FINISHED'}


class DPOSER_OT_sample(_CandidateSampler, BackendOperator, bpy.types.Operator):
    """Sample candidate poses from the pose prior and show them as ghosts beside the character"""

    bl_idname = "dposer.sample"
    bl_label = "Sample Poses"
    bl_options = {'REGISTER', 'UNDO'}
    progress_label = "Sampling"

    sampler: EnumProperty(name="Sampler", items=SAMPLER_ITEMS, default="ddim")

    def scene_defaults(self, settings: Any) -> dict[str, Any]:
        return {**_CandidateSampler.scene_defaults(self, settings), "sampler": settings.sampler}

    def build_request(self, context: Any) -> tuple[str, dict]:
        obj = smpl_object(context)
        self._owner, self._poses = obj.name, None  # (a redo reuses the operator: start afresh)
        return "sample", {"n": self.n, "sampler": self.sampler, "steps": self._steps(), "seed": self._seed()}

    def apply_result(self, context: Any, result: Any) -> set[str]:
        return self._show_ghosts(context, result, "candidate", "candidate poses")


class DPOSER_OT_variations(_CandidateSampler, BackendOperator, bpy.types.Operator):
    """Variations of the character's current pose, shown as ghosts beside it"""

    bl_idname = "dposer.variations"
    bl_label = "Pose Variations"
    bl_options = {'REGISTER', 'UNDO'}
    progress_label = "Variations"

    strength: FloatProperty(name="Strength", description="How far the variations may move from the current pose",
                            default=0.3, min=0.01, max=1.0, subtype='FACTOR')

    def scene_defaults(self, settings: Any) -> dict[str, Any]:
        return {**_CandidateSampler.scene_defaults(self, settings), "strength": settings.strength}

    def build_request(self, context: Any) -> tuple[str, dict]:
        obj = smpl_object(context)
        self._owner, self._poses = obj.name, None  # (a redo reuses the operator: start afresh)
        body, _ = current_body_pose(obj)
        return "variations", {"pose": body.reshape(63).astype(np.float32), "strength": float(self.strength),
                              "n": self.n, "steps": self._steps(), "seed": self._seed()}

    def apply_result(self, context: Any, result: Any) -> set[str]:
        return self._show_ghosts(context, result, "variation", "variations")


class _CandidatesOperator(StatePoll):
    """Poll of the operators that apply / clear the candidate ghosts."""

    missing_state = "No candidate poses: run Sample or Variations first"

    @classmethod
    def has_state(cls, context: Any) -> bool:
        obj = active_object(context)
        return ghost_of(obj) is not None or bool(ghosts_of(obj))


class DPOSER_OT_apply_candidate(_CandidatesOperator, bpy.types.Operator):
    """Apply a candidate pose to the character (Apply & Key also keys it at the current frame)"""

    bl_idname = "dposer.apply_candidate"
    bl_label = "Apply Candidate"
    bl_options = {'REGISTER', 'UNDO'}

    index: IntProperty(name="Index", description="Candidate index (-1: the active ghost)", default=-1, min=-1)
    key: BoolProperty(name="Key", description="Key the pose at the current frame and remove the candidates",
                      default=False)

    def execute(self, context: Any) -> set[str]:
        act = active_object(context)
        owner = smpl_object(context) if act is not None else None
        ghosts = ghosts_of(owner)
        ghost = None
        if self.index >= 0:
            ghost = next((g for g in ghosts if int(g["dposer_ghost_index"]) == self.index), None)
            if ghost is None:
                self.report({'ERROR'}, f"There is no candidate {self.index + 1} (there are {len(ghosts)})")
                return {'CANCELLED'}
        elif ghost_of(act) is not None:
            ghost = ghost_of(act)
        else:
            self.report({'ERROR'}, "Click a candidate first, or give its index")
            return {'CANCELLED'}
        frame = context.scene.frame_current if self.key else None
        apply_ghost(owner, ghost, frame)
        idx = int(ghost["dposer_ghost_index"])
        if self.key:
            clear_ghosts(owner)
            vl = context.view_layer
            vl.objects.active = owner
            owner.select_set(True)
            self.report({'INFO'}, f"Candidate {idx + 1} keyed at frame {frame}")
        else:
            self.report({'INFO'}, f"Candidate {idx + 1} applied")
        return {'FINISHED'}


class DPOSER_OT_clear_candidates(_CandidatesOperator, bpy.types.Operator):
    """Remove the candidate ghosts"""

    bl_idname = "dposer.clear_candidates"
    bl_label = "Clear Candidates"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context: Any) -> set[str]:
        owner = smpl_object(context)
        n = clear_ghosts(owner)
        context.view_layer.objects.active = owner
        self.report({'INFO'}, f"Removed {n} candidates")
        return {'FINISHED'}


CLASSES = [DPOSER_OT_sample, DPOSER_OT_variations, DPOSER_OT_apply_candidate, DPOSER_OT_clear_candidates]
HOOKS: list = []
