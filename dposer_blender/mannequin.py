"""The default body: a procedural mannequin mesh skinned (rigidly, one vertex group per bone) to the
SMPL armature; optionally the real SMPL mesh read from a user-supplied SMPL model file.

Each body segment is a smooth, tapered "capsule" (a surface of revolution with a rounded profile and an
elliptical cross-section) built along a bone, plus ball joints at the shoulders, elbows, hips, knees and
ankles, a head with a nose (so the facing direction reads at a glance), flat hands and feet. The
geometry is generated in the SMPL frame from the built-in rest joints with numpy, then converted to
Blender armature space with ``C``. Vertex groups carry the SMPL bone names; an Armature modifier
deforms the mesh.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .pose_convert import smpl_points_to_blender
from .skeleton_data import load_skeleton

#: Default mannequin colour (linear RGBA), a light neutral clay.
MANNEQUIN_COLOR = (0.62, 0.60, 0.57, 1.0)


@dataclass
class MeshData:
    """A triangle/quad mesh in numpy form.

    Attributes:
        verts: (V,3) float64 vertex positions.
        faces: list of vertex-index tuples (tris and quads).
        groups: vertex group name -> (n,) int indices (weight 1.0).
    """

    verts: np.ndarray
    faces: list[tuple[int, ...]]
    groups: dict[str, list[int]] = field(default_factory=dict)

    def add(self, verts: np.ndarray, faces: list[tuple[int, ...]], group: str) -> None:
        """Append a shell, all of whose vertices go to vertex group ``group``."""
        base = len(self.verts)
        self.verts = np.concatenate([self.verts, verts], axis=0)
        self.faces.extend(tuple(base + i for i in f) for f in faces)
        self.groups.setdefault(group, []).extend(range(base, base + len(verts)))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def capsule(p0: np.ndarray, p1: np.ndarray, r0: tuple[float, float], r1: tuple[float, float],
            width_ref: np.ndarray, power: float = 0.5, extend: tuple[float, float] = (0.0, 0.0),
            n_around: int = 20, n_along: int = 14) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """A closed, tapered, rounded segment from ``p0`` to ``p1``.

    Args:
        p0, p1: (3,) segment end points.
        r0, r1: (width, depth) radii at each end (width along ``width_ref``).
        width_ref: (3,) direction of the first cross-section axis (projected orthogonal to the axis).
        power: profile exponent: 1 gives an ellipsoid, smaller values flatter (capsule-like) ends.
        extend: how far the shell reaches beyond ``p0`` and ``p1`` along the axis.
        n_around, n_along: resolution.

    Returns:
        (V,3) vertices and quad/tri faces with outward normals.
    """
    axis = p1 - p0
    y = _unit(axis)
    x = _unit(width_ref - np.dot(width_ref, y) * y)
    z = np.cross(x, y)
    start = p0 - extend[0] * y
    end = p1 + extend[1] * y
    s = np.linspace(0.0, np.pi, n_along + 2)[1:-1]
    t = 0.5 * (1.0 - np.cos(s))
    prof = np.sin(s) ** power
    rw = prof * (r0[0] + (r1[0] - r0[0]) * t)
    rd = prof * (r0[1] + (r1[1] - r0[1]) * t)
    phi = np.linspace(0.0, 2 * np.pi, n_around, endpoint=False)
    centres = start[None, :] + t[:, None] * (end - start)[None, :]
    ring = (centres[:, None, :]
            + (rw[:, None, None] * np.cos(phi)[None, :, None]) * x
            + (rd[:, None, None] * np.sin(phi)[None, :, None]) * z)
    verts = np.concatenate([start[None], ring.reshape(-1, 3), end[None]], axis=0)
    faces: list[tuple[int, ...]] = []
    n = n_around

    def rid(i: int, k: int) -> int:
        return 1 + i * n + (k % n)

    for k in range(n):  # start pole
        faces.append((0, rid(0, k + 1), rid(0, k)))
    for i in range(n_along - 1):
        for k in range(n):
            faces.append((rid(i, k), rid(i, k + 1), rid(i + 1, k + 1), rid(i + 1, k)))
    last = len(verts) - 1
    for k in range(n):
        faces.append((last, rid(n_along - 1, k), rid(n_along - 1, k + 1)))
    # Orientation check: x, y, z is right-handed with z = x × y, so (phi increasing) runs from x to z,
    # i.e. counter-clockwise seen from -y; flip if the first quad's normal points inwards.
    q = faces[n]
    nrm = np.cross(verts[q[1]] - verts[q[0]], verts[q[3]] - verts[q[0]])
    if np.dot(nrm, verts[q[0]] - centres[0]) < 0:
        faces = [tuple(reversed(f)) for f in faces]
    return verts, faces


def sphere(c: np.ndarray, r: float, n_around: int = 16, n_along: int = 10) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """A UV sphere of radius ``r`` at ``c``."""
    up = np.array([0.0, 1.0, 0.0])
    return capsule(c - r * up, c + r * up, (r, r), (r, r), np.array([1.0, 0.0, 0.0]), power=1.0,
                   n_around=n_around, n_along=n_along)


def build_mannequin_smpl() -> MeshData:
    """The mannequin in the SMPL frame (metres, +Y up, facing +Z, +X = subject's left)."""
    sk = load_skeleton()
    J = {n: sk.rest_joints[i] for i, n in enumerate(sk.names)}
    X, Y, Z = np.eye(3)
    md = MeshData(np.zeros((0, 3)), [])

    def seg(bone: str, p0, p1, r0, r1, ref=X, power=0.5, extend=(0.0, 0.0), **kw) -> None:
        v, f = capsule(np.asarray(p0, float), np.asarray(p1, float), r0, r1, np.asarray(ref, float),
                       power, extend, **kw)
        md.add(v, f, bone)

    def ball(bone: str, c, r: float) -> None:
        v, f = sphere(np.asarray(c, float), r)
        md.add(v, f, bone)

    mid_hip = 0.5 * (J["left_hip"] + J["right_hip"])
    # --- torso: pelvis block, abdomen, chest
    pel_lo = np.array([J["pelvis"][0], mid_hip[1] - 0.075, J["pelvis"][2] - 0.005])
    pel_hi = np.array([J["pelvis"][0], J["spine1"][1] + 0.01, J["pelvis"][2] - 0.012])
    seg("pelvis", pel_lo, pel_hi, (0.150, 0.105), (0.135, 0.095), power=0.45)
    seg("spine1", J["spine1"] + [0, -0.01, -0.01], J["spine2"] + [0, 0.0, 0.0], (0.130, 0.092), (0.135, 0.095), power=0.5)
    seg("spine2", J["spine2"] + [0, -0.02, 0.0], J["spine3"] + [0, 0.02, 0.005], (0.140, 0.097), (0.150, 0.103), power=0.5)
    chest_top = np.array([J["neck"][0], J["neck"][1] - 0.015, J["spine3"][2] - 0.02])
    seg("spine3", J["spine3"] + [0, -0.03, 0.002], chest_top, (0.150, 0.105), (0.165, 0.095), power=0.42)
    # --- neck and head
    seg("neck", J["neck"] + [0, -0.03, 0.0], J["head"] + [0, 0.02, -0.01], (0.048, 0.050), (0.044, 0.046), power=0.6)
    hc = J["head"] + np.array([0.0, 0.085, 0.012])
    seg("head", hc - [0, 0.11, 0.005], hc + [0, 0.115, -0.01], (0.077, 0.092), (0.074, 0.092), power=0.8)
    nose = hc + np.array([0.0, -0.005, 0.094])
    seg("head", nose + [0, 0.025, -0.015], nose + [0, -0.015, 0.005], (0.012, 0.010), (0.016, 0.014), power=0.8,
        n_around=10, n_along=6)
    # --- arms (per side)
    for side in ("left", "right"):
        sgn = 1.0 if side == "left" else -1.0
        col, sho, elb, wri, hnd = (J[f"{side}_collar"], J[f"{side}_shoulder"], J[f"{side}_elbow"],
                                   J[f"{side}_wrist"], J[f"{side}_hand"])
        seg(f"{side}_collar", col + [0, 0.005, -0.01], sho + [0, 0.01, -0.005], (0.045, 0.050), (0.052, 0.055),
            ref=Z, power=0.55, extend=(0.02, 0.0))
        ball(f"{side}_shoulder", sho, 0.056)
        seg(f"{side}_shoulder", sho, elb, (0.052, 0.054), (0.040, 0.041), ref=Z, power=0.45, extend=(0.01, 0.0))
        ball(f"{side}_elbow", elb, 0.041)
        seg(f"{side}_elbow", elb, wri, (0.040, 0.040), (0.030, 0.026), ref=Z, power=0.45, extend=(0.0, 0.0))
        d = _unit(hnd - wri)
        seg(f"{side}_wrist", wri + 0.005 * d, hnd + 0.005 * d, (0.040, 0.019), (0.046, 0.016), ref=Z, power=0.35,
            extend=(0.01, 0.0))
        seg(f"{side}_hand", hnd - 0.005 * d, hnd + 0.085 * d, (0.042, 0.014), (0.034, 0.011), ref=Z, power=0.5)
        thumb0 = wri + 0.025 * d + np.array([0.0, -0.005, 0.035])
        seg(f"{side}_wrist", thumb0, thumb0 + 0.055 * _unit(d + np.array([0.0, -0.15, 0.6])), (0.014, 0.012),
            (0.010, 0.009), ref=Y, power=0.6, n_around=10, n_along=6)
        _ = sgn
    # --- legs (per side)
    for side in ("left", "right"):
        hip, kne, ank, foot = J[f"{side}_hip"], J[f"{side}_knee"], J[f"{side}_ankle"], J[f"{side}_foot"]
        hip_top = hip + np.array([0.008 * np.sign(hip[0]), 0.04, -0.005])
        seg(f"{side}_hip", hip_top, kne, (0.090, 0.092), (0.056, 0.058), power=0.5, extend=(0.0, 0.0))
        ball(f"{side}_knee", kne, 0.056)
        seg(f"{side}_knee", kne, ank, (0.054, 0.056), (0.037, 0.038), power=0.5, extend=(0.0, 0.01))
        ball(f"{side}_ankle", ank, 0.038)
        fwd = foot - ank
        fwd[1] = 0.0
        fwd = _unit(fwd)
        sole = foot[1] - 0.028
        heel = np.array([ank[0], sole + 0.03, ank[2]]) - 0.065 * fwd
        ball_pt = np.array([foot[0], sole + 0.025, foot[2]])
        seg(f"{side}_ankle", heel, ball_pt, (0.036, 0.030), (0.045, 0.026), power=0.4, extend=(0.0, 0.0))
        seg(f"{side}_foot", ball_pt - 0.012 * fwd + [0, -0.001, 0], ball_pt + 0.075 * fwd + [0, -0.006, 0],
            (0.045, 0.024), (0.038, 0.016), power=0.5)
    return md


@functools.lru_cache(maxsize=1)
def _mannequin_cached() -> MeshData:
    return build_mannequin_smpl()


def sole_height_smpl() -> float:
    """Lowest mannequin vertex height (SMPL +Y) in the rest pose."""
    return float(_mannequin_cached().verts[:, 1].min())


def floor_lift() -> float:
    """Armature object z that puts the rest-pose mannequin's soles on z = 0."""
    return -sole_height_smpl()


def _link_mesh_object(armature_obj: Any, name: str, verts_b: np.ndarray, faces: list[tuple[int, ...]] | np.ndarray,
                      groups: dict[str, np.ndarray], weights: dict[str, np.ndarray] | None,
                      context: Any) -> Any:
    """Create a mesh object parented to ``armature_obj`` with vertex groups and an Armature modifier."""
    import bpy

    mesh = bpy.data.meshes.new(name)
    faces_l = [tuple(int(i) for i in f) for f in faces]
    mesh.from_pydata(verts_b.astype(np.float64).tolist(), [], faces_l)
    mesh.validate(clean_customdata=False)
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    for coll in armature_obj.users_collection:
        coll.objects.link(obj)
        break
    else:
        (context.collection or context.scene.collection).objects.link(obj)
    obj.parent = armature_obj
    obj.matrix_parent_inverse.identity()
    for gname, idx in groups.items():
        vg = obj.vertex_groups.new(name=gname)
        if weights is None:
            vg.add([int(i) for i in idx], 1.0, 'REPLACE')
        else:
            w = weights[gname]
            for i, wi in zip(idx, w):
                vg.add([int(i)], float(wi), 'REPLACE')
    mod = obj.modifiers.new("Armature", 'ARMATURE')
    mod.object = armature_obj
    mod.use_vertex_groups = True
    mod.use_deform_preserve_volume = False
    mat = bpy.data.materials.get("DPoser Mannequin") or bpy.data.materials.new("DPoser Mannequin")
    mat.diffuse_color = MANNEQUIN_COLOR
    mat.roughness = 0.6
    mesh.materials.append(mat)
    obj["dposer_body"] = True
    return obj


def create_mannequin(armature_obj: Any, context: Any = None, name: str | None = None) -> Any:
    """Create the procedural mannequin mesh skinned to ``armature_obj`` (an SMPL armature built by
    :func:`armature.create_smpl_armature`, whose armature space is ``C · SMPL``); returns the mesh object."""
    import bpy

    context = context or bpy.context
    md = _mannequin_cached()
    verts_b = smpl_points_to_blender(md.verts)
    groups = {g: np.asarray(ix) for g, ix in md.groups.items()}
    return _link_mesh_object(armature_obj, name or f"{armature_obj.name}_mannequin", verts_b, md.faces, groups,
                             None, context)


def _load_smpl_reader() -> Any:
    """Import ``backend/smpl_model_file.py`` (numpy-only) by path, from the extension or the checkout."""
    here = Path(__file__).resolve().parent
    for p in (here / "backend" / "smpl_model_file.py", here.parent / "backend" / "smpl_model_file.py"):
        if p.is_file():
            spec = importlib.util.spec_from_file_location("_dposer_smpl_model_file", p)
            mod = importlib.util.module_from_spec(spec)
            assert spec.loader is not None
            spec.loader.exec_module(mod)
            return mod
    raise FileNotFoundError("backend/smpl_model_file.py not found")


def create_smpl_mesh(armature_obj: Any, model_path: str, context: Any = None, name: str | None = None) -> Any:
    """Create the real SMPL mesh (template vertices, faces, skinning weights) from an SMPL model file,
    skinned to ``armature_obj``. Raises if the file cannot be read (the caller falls back to the mannequin)."""
    import bpy

    from .skeleton_data import smpl_bone_names

    context = context or bpy.context
    model = _load_smpl_reader().read_smpl_model_file(model_path)
    v = np.asarray(model["v_template"], dtype=np.float64)
    w = np.asarray(model["weights"], dtype=np.float64)
    if w.shape[1] != 24:
        raise ValueError(f"expected 24 SMPL joints in the weights, got {w.shape[1]}")
    groups: dict[str, np.ndarray] = {}
    weights: dict[str, np.ndarray] = {}
    for j, bone in enumerate(smpl_bone_names()):
        idx = np.nonzero(w[:, j] > 1e-4)[0]
        groups[bone], weights[bone] = idx, w[idx, j]
    return _link_mesh_object(armature_obj, name or f"{armature_obj.name}_smpl_mesh", smpl_points_to_blender(v),
                             np.asarray(model["f"]), groups, weights, context)


__all__ = ["MeshData", "capsule", "sphere", "build_mannequin_smpl", "sole_height_smpl", "floor_lift",
           "create_mannequin", "create_smpl_mesh", "MANNEQUIN_COLOR"]
