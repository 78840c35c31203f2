"""Plausibility: per-frame score of the active action, as an F-curve of the custom property
``armature["dposer_plausibility"]`` (Graph Editor / Dope Sheet / timeline); higher = less plausible.

``dposer.select_worst_frames`` marks the worst frames with timeline markers "DPoser worst N" (selected)
and moves the playhead to the worst one.
"""

from typing import Any

import bpy
import numpy as np
from bpy.props import IntProperty

from ..blender import fcurves
from ._base import BackendOperator, SceneDefaults
from ._context import (OpError, StatePoll, active_action, object_and_action_after_call, read_motion,
                       smpl_object)

PROP = "dposer_plausibility"
DATA_PATH = f'["{PROP}"]'
MARKER_PREFIX = "DPoser worst"


def plausibility_fcurve(obj: Any) -> Any:
    ad = obj.animation_data
    if ad is None or ad.action is None:
        return None
    for fc in fcurves.action_fcurves(ad.action, obj):
        if fc.data_path == DATA_PATH:
            return fc
    return None


def read_curve(fc: Any) -> tuple[np.ndarray, np.ndarray]:
    frames, values = fcurves.read_keys(fc)
    return frames.astype(np.float64), values.astype(np.float64)


class DPOSER_OT_plausibility(BackendOperator, bpy.types.Operator):
    """Score every frame of the active action with the pose prior (drawn as the dposer_plausibility F-curve)"""

    bl_idname = "dposer.plausibility"
    bl_label = "Plausibility"
    bl_options = {'REGISTER', 'UNDO'}
    progress_label = "Scoring"

    def build_request(self, context: Any) -> tuple[str, dict]:
        obj = smpl_object(context)
        action = active_action(obj)
        m = read_motion(obj, action)
        if len(m["frames"]) == 0:
            raise OpError(f"action '{action.name}' has no pose keys to score")
        self._job = dict(obj=obj.name, action=action.name, frames=m["frames"])
        return "score", {"poses": m["body_pose"].astype(np.float32), "seed": 0}

    def apply_result(self, context: Any, result: Any) -> set[str]:
        job = self._job
        obj, action = object_and_action_after_call(job, "scoring")
        scores = np.asarray(result.pose, np.float64).reshape(-1)
        frames = job["frames"]
        if len(scores) != len(frames):
            raise OpError(f"the backend returned {len(scores)} scores for {len(frames)} frames")
        obj[PROP] = float(scores[0])
        ui = obj.id_properties_ui(PROP)
        ui.update(description="DPoser per-frame plausibility score (higher = less plausible)")
        fc = fcurves.fcurve(fcurves.container_of(obj, action, create=True), DATA_PATH, 0, "DPoser")
        fc.keyframe_points.clear()
        fcurves.write_keys(fc, frames, scores, "LINEAR")
        fc.lock = True
        worst = int(np.argmax(scores))
        self.report({'INFO'}, f"Scored {len(frames)} frames: mean {scores.mean():.3f}, worst {scores[worst]:.3f} "
                              f"at frame {frames[worst]:g} (F-curve {obj.name}{DATA_PATH})")
        return {'FINISHED'}


class DPOSER_OT_select_worst_frames(StatePoll, SceneDefaults, bpy.types.Operator):
    """Mark the least plausible frames with timeline markers (and go to the worst)"""

    bl_idname = "dposer.select_worst_frames"
    bl_label = "Select Worst Frames"
    bl_options = {'REGISTER', 'UNDO'}

    count: IntProperty(name="Count", description="How many frames to mark", default=5, min=1, max=1000)

    missing_state = "No plausibility curve yet: run Plausibility first"

    def scene_defaults(self, settings: Any) -> dict[str, Any]:
        return {"count": settings.worst_count}

    @classmethod
    def has_state(cls, context: Any) -> bool:
        return plausibility_fcurve(smpl_object(context)) is not None

    def execute(self, context: Any) -> set[str]:
        obj = smpl_object(context)
        fc = plausibility_fcurve(obj)
        if fc is None:
            self.report({'ERROR'}, "No plausibility curve: run Plausibility first")
            return {'CANCELLED'}
        frames, scores = read_curve(fc)
        order = np.argsort(-scores, kind="stable")[:self.count]
        markers = context.scene.timeline_markers
        for mk in [m for m in markers if m.name.startswith(MARKER_PREFIX)]:
            markers.remove(mk)
        for mk in markers:
            mk.select = False
        for rank, i in enumerate(order):
            mk = markers.new(f"{MARKER_PREFIX} {rank + 1} ({scores[i]:.2f})", frame=int(round(frames[i])))
            mk.select = True
        if len(order):
            context.scene.frame_set(int(round(frames[order[0]])))
        self.report({'INFO'}, "Worst frames: " + ", ".join(f"{frames[i]:g}" for i in order))
        return {'FINISHED'}


CLASSES = [DPOSER_OT_plausibility, DPOSER_OT_select_worst_frames]
HOOKS: list = []
