"""Sample / Variations: N candidate poses as ghost armatures in a grid beside the character.

* ``dposer.sample`` / ``dposer.variations`` ask the backend and show the candidates (replacing earlier
  ones of that character). Each ghost is a separate armature object (a copy of the character's armature
  data drawn as wire) in the collection "DPoser Candidates", carrying its SMPL pose as a custom property.
* Clicking a ghost (making it the active object) applies its pose to the character (a message-bus
  subscription); ``dposer.apply_candidate`` does the same by index, and with ``key`` it also keys it at
  the current frame and removes the ghosts ("Apply & Key").
* ``dposer.clear_candidates`` removes the ghosts (objects, their armature data, the empty collection).
"""

import math
from typing import Any

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty

from .. import action_io as aio
from .. import pose_convert as pc
from ._base import (BackendOperator, StatePoll, active_object, body_bone_names, current_body_pose,
                    object_after_call, smpl_object)

GHOST_COLLECTION = "DPoser Candidates"
GHOST_SPACING = 0.85
SAMPLERS = [("ddim", "DDIM", "Deterministic few-step sampler (fast)"),
            ("em", "Euler-Maruyama", "Reverse SDE, the paper's sampler (slow: many steps)"),
            ("ode", "ODE", "Probability-flow ODE (Heun)")]


# ----------------------------------------------------------------------------------------- ghosts

def ghosts_of(owner: Any) -> list[Any]:
    """The candidate ghosts of ``owner`` sorted by index."""
    name = owner.name
    g = [o for o in bpy.data.objects if o.get("dposer_ghost_of") == name]
    return sorted(g, key=lambda o: int(o.get("dposer_ghost_index", 0)))


def clear_ghosts(owner: Any | None = None) -> int:
    """Remove the ghosts of ``owner`` (all ghosts when None) and their armature data; returns the count."""
    objs = [o for o in bpy.data.objects if o.get("dposer_ghost_of") is not None
            and (owner is None or o.get("dposer_ghost_of") == owner.name)]
    datas = [o.data for o in objs]
    for o in objs:
        bpy.data.objects.remove(o, do_unlink=True)
    for d in datas:
        if d is not None and d.users == 0:
            bpy.data.armatures.remove(d)
    coll = bpy.data.collections.get(GHOST_COLLECTION)
    if coll is not None and len(coll.objects) == 0:
        bpy.data.collections.remove(coll)
    if owner is not None and "dposer_candidates" in owner:
        del owner["dposer_candidates"]
    return len(objs)


def make_ghosts(context: Any, owner: Any, poses: np.ndarray, label: str) -> list[Any]:
    """Replace ``owner``'s ghosts by one per pose in ``poses`` (N,63), in a grid to its right."""
    clear_ghosts(owner)
    scene = context.scene
    coll = bpy.data.collections.get(GHOST_COLLECTION)
    if coll is None:
        coll = bpy.data.collections.new(GHOST_COLLECTION)
    if coll.name not in scene.collection.children:
        scene.collection.children.link(coll)
    rig = pc.SMPLRig.from_armature(owner)
    n = len(poses)
    cols = max(1, math.ceil(math.sqrt(n)))
    base = owner.matrix_world.translation
    out = []
    for i, pose in enumerate(poses):
        data = owner.data.copy()
        data.name = f"{owner.name}_candidate"
        data.display_type = 'WIRE'
        ob = bpy.data.objects.new(f"{owner.name} {label} {i + 1}", data)
        coll.objects.link(ob)
        r, c = divmod(i, cols)
        ob.location = (base.x + 1.0 + c * GHOST_SPACING, base.y + r * GHOST_SPACING, base.z)
        ob.rotation_euler = owner.matrix_world.to_euler()
        ob.show_in_front = True
        ob.show_name = True
        ob.hide_render = True  # a UI helper, never rendered
        ob.color = (0.35, 0.75, 1.0, 0.5)
        ob["dposer_ghost_of"] = owner.name
        ob["dposer_ghost_index"] = i
        ob["dposer_pose"] = [float(v) for v in np.asarray(pose, np.float64).reshape(63)]
        out.append(ob)
    context.view_layer.update()  # new armature objects get their pose on the first update
    for ob, pose in zip(out, poses):
        pc.apply_smpl_pose(ob, np.asarray(pose).reshape(21, 3), None, None, rig)
    owner["dposer_candidates"] = n
    return out


def apply_ghost(owner: Any, ghost: Any, key_frame: float | None = None) -> None:
    """Pose ``owner``'s 21 body bones like ``ghost`` (root orientation/location untouched); optionally key."""
    rig = pc.SMPLRig.from_armature(owner)
    pose = np.array(ghost["dposer_pose"], dtype=np.float64, copy=True).reshape(21, 3)
    pc.apply_smpl_pose(owner, pose, None, None, rig, joints=list(range(1, 22)))
    if key_frame is not None:
        aio.key_pose(owner, key_frame, body_bone_names(rig))


# ----------------------------------------------------------------------------------------- operators

class _CandidateSampler:
    """What Sample and Variations share: count / seed / steps, and showing the answer as ghosts."""

    n: IntProperty(name="Count", description="How many candidate poses", default=6, min=1, max=64)
    seed: IntProperty(name="Seed", description="Random seed (-1: a new one each time)", default=-1, min=-1)
    steps: IntProperty(name="Steps", description="Sampler steps (0: the sampler's default)", default=0, min=0,
                       max=5000)

    def _seed(self) -> int | None:
        return None if self.seed < 0 else int(self.seed)

    def _steps(self) -> int | None:
        return None if self.steps <= 0 else int(self.steps)

    def _show_ghosts(self, context: Any, result: Any, label: str, noun: str) -> set[str]:
        """``apply_result``: the poses as ghosts of the character (named with ``label``), reported as ``noun``."""
        owner = object_after_call(self._owner, "sampling")
        make_ghosts(context, owner, result.poses, label)
        self.report({'INFO'}, f"{len(result.poses)} {noun}: click one (or Apply) to use it")
        return {'FINISHED'}


class DPOSER_OT_sample(_CandidateSampler, BackendOperator, bpy.types.Operator):
    """Sample candidate poses from the pose prior and show them as ghosts beside the character"""

    bl_idname = "dposer.sample"
    bl_label = "Sample Poses"
    bl_options = {'REGISTER', 'UNDO'}
    progress_label = "Sampling"

    sampler: EnumProperty(name="Sampler", items=SAMPLERS, default="ddim")

    def build_request(self, context: Any) -> tuple[str, dict]:
        obj = smpl_object(context)
        self._owner = obj.name
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

    def build_request(self, context: Any) -> tuple[str, dict]:
        obj = smpl_object(context)
        self._owner = obj.name
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
        return obj.get("dposer_ghost_of") is not None or bool(ghosts_of(obj))


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
        elif act is not None and act.get("dposer_ghost_of") is not None:
            ghost = act
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


# ----------------------------------------------------------------------------------------- click to apply

_MSGBUS_OWNER = object()


def _on_active_changed(*_args: Any) -> None:
    try:
        obj = bpy.context.view_layer.objects.active
    except AttributeError:
        return
    if obj is None or obj.get("dposer_ghost_of") is None:
        return
    owner = bpy.data.objects.get(obj["dposer_ghost_of"])
    if owner is None or not pc.check_smpl_armature(owner)[0]:
        return
    try:
        apply_ghost(owner, obj)
        bpy.ops.ed.undo_push(message="DPoser: apply candidate")
    except Exception as ex:  # noqa: BLE001 - never raise from a message-bus callback
        print(f"[dposer] applying candidate failed: {ex}")


def _subscribe(*_args: Any) -> None:
    bpy.msgbus.clear_by_owner(_MSGBUS_OWNER)
    bpy.msgbus.subscribe_rna(key=(bpy.types.LayerObjects, "active"), owner=_MSGBUS_OWNER, args=(),
                             notify=_on_active_changed)


@bpy.app.handlers.persistent
def _load_post(*_args: Any) -> None:
    _subscribe()


def _register_hooks() -> None:
    _subscribe()
    if _load_post not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_load_post)


def _unregister_hooks() -> None:
    bpy.msgbus.clear_by_owner(_MSGBUS_OWNER)
    while _load_post in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_load_post)


CLASSES = [DPOSER_OT_sample, DPOSER_OT_variations, DPOSER_OT_apply_candidate, DPOSER_OT_clear_candidates]
HOOKS = [(_register_hooks, _unregister_hooks)]
