"""Ranked pose hypotheses stored on an armature, and the ◀ ▶ / Apply / Discard operators that browse them.

Complete and Pose from Image both end with H poses, best first. They store them as one custom property
(``prop``: count, poses (H,63), scores, index, the joints they write, optional root rotations (H,3) and
the rotations those joints had before), so the hypotheses survive undo and save. Only the stored joints
are ever written: every other bone stays bit-exact.
"""

from typing import Any

import numpy as np
from bpy.props import IntProperty

from ..blender.actions import key_pose
from ..blender.rig import SMPLRig, apply_smpl_pose
from ._context import StatePoll, smpl_object


def store(obj: Any, prop: str, poses: np.ndarray, scores: np.ndarray, joints: list[int], orig_quats: np.ndarray,
          root: np.ndarray | None = None, **extra: Any) -> None:
    """Store the hypotheses (best first) on ``obj`` and show the first one."""
    poses = np.asarray(poses, np.float64).reshape(-1, 63)
    d = {"count": len(poses), "poses": poses.reshape(-1).tolist(),
         "scores": np.asarray(scores, np.float64).reshape(-1).tolist(), "index": 0,
         "joints": [int(j) for j in joints], "orig": np.asarray(orig_quats, np.float64).reshape(-1).tolist(), **extra}
    if root is not None:
        d["root"] = np.asarray(root, np.float64).reshape(-1).tolist()
    obj[prop] = d
    show(obj, prop, 0)


def load(obj: Any, prop: str) -> dict | None:
    """The stored hypotheses as arrays: poses (H,21,3), scores (H,), root (H,3) or None, orig (24,4), ..."""
    d = obj.get(prop) if obj is not None else None
    if d is None:
        return None
    n = int(d["count"])
    return {"count": n, "index": int(d["index"]), "joints": [int(j) for j in d["joints"]],
            "poses": np.array(d["poses"], np.float64).reshape(n, 21, 3),
            "scores": np.array(d["scores"], np.float64).reshape(n),
            "root": np.array(d["root"], np.float64).reshape(n, 3) if "root" in d else None,
            "orig": np.array(d["orig"], np.float64).reshape(-1, 4),
            **{k: d[k] for k in d.keys() if k not in ("count", "index", "joints", "poses", "scores", "root", "orig")}}


def show(obj: Any, prop: str, index: int) -> None:
    """Pose the stored joints (and the root, when stored) like hypothesis ``index``."""
    h = load(obj, prop)
    if h is None:
        return
    index %= h["count"]
    obj[prop]["index"] = index
    rig = SMPLRig.from_armature(obj)
    root = h["root"][index] if h["root"] is not None else None
    apply_smpl_pose(obj, h["poses"][index], root, None, rig, joints=h["joints"])


def restore(obj: Any, prop: str) -> None:
    """Put the stored joints back as they were, and forget the hypotheses."""
    h = load(obj, prop)
    rig = SMPLRig.from_armature(obj)
    for j in h["joints"]:
        pb = obj.pose.bones[rig.bone_names[j]]
        pb.rotation_mode = 'QUATERNION'
        pb.rotation_quaternion = tuple(h["orig"][j])
    del obj[prop]


class HypothesisOperator(StatePoll):
    """Base of the browse / apply / discard operators: subclasses set ``PROP`` and ``missing_state``."""

    PROP = ""
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def has_state(cls, context: Any) -> bool:
        obj = context.active_object
        return obj is not None and obj.get(cls.PROP) is not None


class FlipBase(HypothesisOperator):
    direction: IntProperty(name="Direction", default=1, min=-1, max=1)

    def execute(self, context: Any) -> set[str]:
        obj = smpl_object(context)
        h = load(obj, self.PROP)
        i = (h["index"] + (self.direction or 1)) % h["count"]
        show(obj, self.PROP, i)
        self.report({'INFO'}, f"{i + 1}/{h['count']}, score {h['scores'][i]:.2f}")
        return {'FINISHED'}


class ApplyBase(HypothesisOperator):
    def execute(self, context: Any) -> set[str]:
        obj = smpl_object(context)
        h = load(obj, self.PROP)
        show(obj, self.PROP, h["index"])
        rig = SMPLRig.from_armature(obj)
        frame = context.scene.frame_current
        joints = sorted(set(range(1, 22)) | ({0} if h["root"] is not None else set()))
        key_pose(obj, frame, [rig.bone_names[j] for j in joints])
        del obj[self.PROP]
        self.report({'INFO'}, f"{h['index'] + 1}/{h['count']} keyed at frame {frame}")
        return {'FINISHED'}


class DiscardBase(HypothesisOperator):
    def execute(self, context: Any) -> set[str]:
        restore(smpl_object(context), self.PROP)
        return {'FINISHED'}


def draw_browser(layout: Any, h: dict, flip: str, apply: str, discard: str) -> None:
    """◀ i/H score ▶ and Apply / Discard (the panel's rows for stored hypotheses)."""
    row = layout.row(align=True)
    row.operator(flip, text="", icon='TRIA_LEFT').direction = -1
    i = h["index"]
    row.label(text=f"{i + 1}/{h['count']}  score {h['scores'][i]:.2f}")
    row.operator(flip, text="", icon='TRIA_RIGHT').direction = 1
    row = layout.row(align=True)
    row.operator(apply, text="Apply", icon='KEY_HLT')
    row.operator(discard, text="Discard", icon='X')

