"""Candidate ghosts: N poses shown as armatures in a row beside a character, best first.

Each ghost is an armature (a copy of the character's armature data, hidden bones) with a solid, tinted
mannequin and a number + score label, in the collection "DPoser Candidates". Ghosts are spaced by their own
posed width, so they never overlap, and are never rendered. A ghost's body and label point back to it
(``dposer_ghost_part``), the ghost to its character (``dposer_ghost_of``).
"""

from __future__ import annotations

import math
from typing import Any

import bpy
import numpy as np

from ..dposer_core.kinematics_np import forward_kinematics
from . import mannequin
from .actions import key_pose
from .datablocks import remove_if_unused
from .rig import SMPLRig, apply_smpl_pose

GHOST_COLLECTION = "DPoser Candidates"
GHOST_MATERIAL = "DPoser Ghost"
GHOST_COLOR = (0.32, 0.62, 0.95, 1.0)  # a clear blue against Blender's grey grid and the skin-toned mannequin
LABEL_COLOR = (1.0, 0.85, 0.35, 1.0)
GHOST_GAP = 0.35  # metres between the posed extents of neighbouring ghosts


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
        remove_if_unused(d)
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
    joints = forward_kinematics(np.asarray(poses, np.float64).reshape(-1, 21, 3))  # (N,22,3) SMPL frame, root at origin
    margin = 0.12  # flesh around the joints
    lo = joints[..., 0].min(axis=1) - margin
    hi = joints[..., 0].max(axis=1) + margin
    # Blender x = SMPL x (core.pose_convert: the SMPL->Blender map keeps x); place ghost i so its lo touches the
    # previous ghost's hi + gap
    xs = np.zeros(len(poses))
    for i in range(1, len(poses)):
        xs[i] = xs[i - 1] + hi[i - 1] + gap - lo[i]
    return xs, float(-lo[0]) if len(poses) else 0.0


def make_ghosts(context: Any, owner: Any, poses: np.ndarray, label: str, scores: np.ndarray | None = None) -> list[Any]:
    """Replace ``owner``'s ghosts by one per pose in ``poses`` (N,63), in a row to its right, best first."""
    clear_ghosts(owner)
    scene = context.scene
    coll = bpy.data.collections.get(GHOST_COLLECTION)
    if coll is None:
        coll = bpy.data.collections.new(GHOST_COLLECTION)
    if coll.name not in scene.collection.children:
        scene.collection.children.link(coll)
    rig = SMPLRig.from_armature(owner)
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
            body = mannequin.create_mannequin(ob, context=context, name=f"{ob.name} body")
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
        apply_smpl_pose(ob, pose.reshape(21, 3), None, None, rig)
        ob.hide_set(True)  # the body and the label are what you see and click; the bones stay out of the way
    owner["dposer_candidates"] = len(out)
    return out


def apply_ghost(owner: Any, ghost: Any, key_frame: float | None = None) -> None:
    """Pose ``owner``'s 21 body bones like ``ghost`` (root orientation/location untouched); optionally key."""
    rig = SMPLRig.from_armature(owner)
    pose = np.array(ghost["dposer_pose"], dtype=np.float64, copy=True).reshape(21, 3)
    apply_smpl_pose(owner, pose, None, None, rig, joints=list(range(1, 22)))
    if key_frame is not None:
        key_pose(owner, key_frame, rig.body_bone_names())


# ----------------------------------------------------------------------------------------- operators


def ghost_of(obj: Any) -> Any:
    """The candidate ghost armature ``obj`` belongs to (itself, or the ghost whose body or label it is), else None."""
    if obj is None:
        return None
    if obj.get("dposer_ghost_of") is not None:
        return obj
    part = obj.get("dposer_ghost_part")
    return bpy.data.objects.get(part) if part is not None else None


def resolve_ghost(obj: Any) -> Any:
    """``obj``, or the character it is a candidate ghost (or a ghost's body or label) of, when that exists."""
    ghost = ghost_of(obj)
    owner = bpy.data.objects.get(ghost["dposer_ghost_of"]) if ghost is not None else None
    return owner if owner is not None else obj


__all__ = ["GHOST_COLLECTION", "ghosts_of", "clear_ghosts", "ghost_layout", "make_ghosts", "apply_ghost", "ghost_of",
           "resolve_ghost"]
