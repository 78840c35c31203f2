"""Sample / Variations: N candidate poses as ghosts in a row beside the character.

* ``dposer.sample`` / ``dposer.variations`` ask the backend for poses, then for their plausibility
  scores, and show the candidates best first (replacing earlier ones of that character). Each ghost is
  an armature (a copy of the character's armature data, hidden bones) with a solid, tinted mannequin and a
  number + score label, in the collection "DPoser Candidates". Ghosts are spaced by their own posed
  width, so they never overlap, and are never rendered.
* Clicking a ghost (its body or its label) picks it: Blender's own selection, one undo step, and the
  character is not touched. ``dposer.apply_candidate`` applies the picked ghost (or one by index) to the
  character, and with ``key`` also keys it at the current frame and removes the ghosts ("Apply & Key").
* ``dposer.clear_candidates`` removes the ghosts (objects, their data, the empty collection).
"""

import math
from typing import Any

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty

from .. import action_io as aio
from .. import pose_convert as pc
from ._base import (BackendOperator, StatePoll, active_object, body_bone_names, current_body_pose, fk_joints,
                    ghost_of, object_after_call, smpl_object)

GHOST_COLLECTION = "DPoser Candidates"
GHOST_MATERIAL = "DPoser Ghost"
GHOST_COLOR = (0.32, 0.62, 0.95, 1.0)  # a clear blue against Blender's grey grid and the skin-toned mannequin
LABEL_COLOR = (1.0, 0.85, 0.35, 1.0)
GHOST_GAP = 0.35  # metres between the posed extents of neighbouring ghosts
SAMPLERS = [("ddim", "DDIM (fast)", "Few-step sampler with fresh noise at each step (eta = 1): fast, varied"),
            ("em", "Euler-Maruyama", "Reverse SDE, the paper's sampler (slow: many steps)"),
            ("ode", "ODE (deterministic)", "Probability-flow ODE (Heun): the same seed gives the same poses")]


# ----------------------------------------------------------------------------------------- ghosts

def ghosts_of(owner: Any) -> list[Any]:
    """The candidate ghosts of ``owner`` sorted by index."""
    name = owner.name
    g = [o for o in bpy.data.objects if o.get("dposer_ghost_of") == name]
    return sorted(g, key=lambda o: int(o.get("dposer_ghost_index", 0)))


def clear_ghosts(owner: Any | None = None) -> int:
    """Remove the ghosts of ``owner`` (all ghosts when None) with their bodies, labels and data; returns the count."""
    objs = [o for o in bpy.data.objects if o.get("dposer_ghost_of") is not None
            and (owner is None or o.get("dposer_ghost_of") == owner.name)]
    names = {o.name for o in objs}
    parts = [o for o in bpy.data.objects if o.get("dposer_ghost_part") in names]
    datas = [o.data for o in objs + parts]
    for o in parts + objs:
        bpy.data.objects.remove(o, do_unlink=True)
    for d in dict.fromkeys(datas):  # unique, in order (ghost bodies share one mesh)
        if d is not None and d.users == 0:
            if isinstance(d, bpy.types.Armature):
                bpy.data.armatures.remove(d)
            elif isinstance(d, bpy.types.Mesh):
                bpy.data.meshes.remove(d)
            elif isinstance(d, bpy.types.Curve):
                bpy.data.curves.remove(d)
    coll = bpy.data.collections.get(GHOST_COLLECTION)
    if coll is not None and len(coll.objects) == 0:
        bpy.data.collections.remove(coll)
    if owner is not None and "dposer_candidates" in owner:
        del owner["dposer_candidates"]
    return len(objs)


def _ghost_material() -> Any:
    mat = bpy.data.materials.get(GHOST_MATERIAL) or bpy.data.materials.new(GHOST_MATERIAL)
    mat.diffuse_color = GHOST_COLOR
    mat.roughness = 0.5
    return mat


def _label_material() -> Any:
    mat = bpy.data.materials.get(GHOST_MATERIAL + " Label") or bpy.data.materials.new(GHOST_MATERIAL + " Label")
    mat.diffuse_color = LABEL_COLOR
    return mat


def ghost_layout(poses: np.ndarray, gap: float = GHOST_GAP) -> tuple[np.ndarray, float]:
    """x offsets (N,) of ghosts in a row, spaced by each posed body's own width (SMPL x extent of FK of the
    22 joints plus a body margin) so neighbours never overlap, and the first ghost's left half-width."""
    joints = fk_joints(np.asarray(poses, np.float64).reshape(-1, 21, 3))  # (N,22,3) SMPL frame, root at origin
    margin = 0.12  # flesh around the joints
    lo = joints[..., 0].min(axis=1) - margin
    hi = joints[..., 0].max(axis=1) + margin
    # Blender x = SMPL x (pose_convert: the SMPL->Blender map keeps x); place ghost i so its lo touches the
    # previous ghost's hi + gap
    xs = np.zeros(len(poses))
    for i in range(1, len(poses)):
        xs[i] = xs[i - 1] + hi[i - 1] + gap - lo[i]
    return xs, float(-lo[0]) if len(poses) else 0.0


def make_ghosts(context: Any, owner: Any, poses: np.ndarray, label: str, scores: np.ndarray | None = None) -> list[Any]:
    """Replace ``owner``'s ghosts by one per pose in ``poses`` (N,63), in a row to its right, best first."""
    from .. import mannequin as _mannequin

    clear_ghosts(owner)
    scene = context.scene
    coll = bpy.data.collections.get(GHOST_COLLECTION)
    if coll is None:
        coll = bpy.data.collections.new(GHOST_COLLECTION)
    if coll.name not in scene.collection.children:
        scene.collection.children.link(coll)
    rig = pc.SMPLRig.from_armature(owner)
    poses = np.asarray(poses, np.float64).reshape(-1, 63)
    xs, first_half = ghost_layout(poses)
    mw = owner.matrix_world
    right = mw.to_3x3().col[0].normalized()
    start = mw.translation + right * (0.45 + GHOST_GAP + first_half)
    mat, label_mat = _ghost_material(), _label_material()
    body_mesh, groups = None, []
    out = []
    for i, pose in enumerate(poses):
        data = owner.data.copy()
        data.name = f"{owner.name}_candidate"
        ob = bpy.data.objects.new(f"{owner.name} {label} {i + 1}", data)
        coll.objects.link(ob)
        ob.matrix_world = mw.copy()
        ob.location = start + right * float(xs[i])
        ob.hide_render = True  # a UI helper, never rendered
        ob.show_in_front = False
        ob["dposer_ghost_of"] = owner.name
        ob["dposer_ghost_index"] = i
        ob["dposer_pose"] = [float(v) for v in pose]
        if scores is not None:
            ob["dposer_score"] = float(scores[i])
        data.display_type = 'STICK'
        # the solid body: one mannequin mesh shared by every ghost, coloured per object
        if body_mesh is None:
            body = _mannequin.create_mannequin(ob, context=context, name=f"{ob.name} body")
            body_mesh, groups = body.data, [vg.name for vg in body.vertex_groups]
        else:
            body = bpy.data.objects.new(f"{ob.name} body", body_mesh)
            for name in groups:
                body.vertex_groups.new(name=name)
            mod = body.modifiers.new("Armature", 'ARMATURE')
            mod.object = ob
        for c in list(body.users_collection):
            c.objects.unlink(body)
        coll.objects.link(body)
        body.parent = ob
        body.matrix_parent_inverse.identity()
        body.hide_render = True
        body["dposer_ghost_part"] = ob.name
        if body.material_slots:
            body.material_slots[0].link = 'OBJECT'
            body.material_slots[0].material = mat
        body.color = GHOST_COLOR
        # the label: number and score, upright above the head, facing the front (-Y)
        text = f"{i + 1}" + (f"  {scores[i]:.2f}" if scores is not None else "")
        cu = bpy.data.curves.new(f"{ob.name} label", 'FONT')
        cu.body = text
        cu.size = 0.24
        cu.align_x = 'CENTER'
        lab = bpy.data.objects.new(f"{ob.name} label", cu)
        coll.objects.link(lab)
        lab.parent = ob
        lab.location = (0.0, 0.0, 0.66)  # armature space (origin at the pelvis): just above a standing head
        lab.rotation_euler = (math.pi / 2, 0.0, 0.0)
        lab.hide_render = True
        lab["dposer_ghost_part"] = ob.name
        cu.materials.append(label_mat)
        out.append(ob)
    context.view_layer.update()  # new armature objects get their pose on the first update
    for ob, pose in zip(out, poses):
        pc.apply_smpl_pose(ob, pose.reshape(21, 3), None, None, rig)
        ob.hide_set(True)  # the body and the label are what you see and click; the bones stay out of the way
    owner["dposer_candidates"] = len(out)
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

    sampler: EnumProperty(name="Sampler", items=SAMPLERS, default="ddim")

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
