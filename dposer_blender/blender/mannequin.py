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
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.pose_convert import smpl_points_to_blender
from ..dposer_core.skeleton import joint_names, smpl_skeleton
from ..dposer_core.smpl_model_file import read_smpl_model_file

#: Default mannequin colour (linear RGBA), a light neutral clay.
MANNEQUIN_COLOR = (0.60, 0.45, 0.34, 1.0)


@dataclass
class MeshData:
    """A quad/triangle mesh in numpy form.

    Attributes:
        verts: (V,3) float64 vertex positions.
        faces: list of vertex-index tuples (tris and quads).
        groups: vertex group name -> (vertex indices, weights).
    """

    verts: np.ndarray
    faces: list[tuple[int, ...]]
    groups: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)

    def add(self, verts: np.ndarray, faces: list[tuple[int, ...]], group: str | None,
            weights: dict[str, np.ndarray] | None = None) -> None:
        """Append a shell: all its vertices go to ``group`` with weight 1, or, with ``weights``
        (group -> (n,) per-vertex weights), to several groups."""
        base = len(self.verts)
        self.verts = np.concatenate([self.verts, verts], axis=0)
        self.faces.extend(tuple(base + i for i in f) for f in faces)
        if weights is None:
            weights = {group: np.ones(len(verts))}
        for g, w in weights.items():
            idx, ws = self.groups.setdefault(g, ([], []))
            nz = np.nonzero(w > 1e-6)[0]
            idx.extend((base + nz).tolist())
            ws.extend(np.asarray(w)[nz].tolist())


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


def _catmull_rom(keys: np.ndarray, per_seg: int) -> np.ndarray:
    """Resample (K,D) key rows with a uniform Catmull-Rom spline, ``per_seg`` samples per key interval."""
    k = np.concatenate([keys[:1], keys, keys[-1:]], axis=0)
    out = []
    for i in range(1, len(k) - 2):
        p0, p1, p2, p3 = k[i - 1], k[i], k[i + 1], k[i + 2]
        for t in np.linspace(0.0, 1.0, per_seg, endpoint=False):
            t2, t3 = t * t, t * t * t
            out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
                              + (-p0 + 3 * p1 - 3 * p2 + p3) * t3))
    out.append(k[-2])
    return np.asarray(out)


def loft(sections: np.ndarray, width_ref: np.ndarray, n_around: int = 28, per_seg: int = 3,
         squareness: float = 2.6) -> tuple[np.ndarray, list[tuple[int, ...]], np.ndarray]:
    """A closed body of revolution-like shape through key cross-sections.

    Args:
        sections: (K,5+) rows (cx, cy, cz, half_width, half_depth, extra...) from bottom to top; the first
            and last rows are the poles (their radii are ignored). Extra columns are interpolated and
            returned per vertex (used for skinning weights).
        width_ref: direction of the half_width axis.
        squareness: superellipse exponent of the cross-section (2 = ellipse, larger = boxier).

    Returns:
        vertices (V,3), faces, and the interpolated extra columns per vertex (V, E).
    """
    dense = _catmull_rom(np.asarray(sections, dtype=np.float64), per_seg)
    body = dense[1:-1]
    c, hw, hd, extra = body[:, :3], body[:, 3], body[:, 4], body[:, 5:]
    tang = np.gradient(c, axis=0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    phi = np.linspace(0.0, 2 * np.pi, n_around, endpoint=False)
    e = 2.0 / squareness
    cx = np.sign(np.cos(phi)) * np.abs(np.cos(phi)) ** e
    cz = np.sign(np.sin(phi)) * np.abs(np.sin(phi)) ** e
    rings = []
    for i in range(len(body)):
        y = tang[i]
        x = _unit(width_ref - np.dot(width_ref, y) * y)
        z = np.cross(x, y)
        rings.append(c[i] + hw[i] * cx[:, None] * x + hd[i] * cz[:, None] * z)
    verts = np.concatenate([dense[:1, :3], np.concatenate(rings), dense[-1:, :3]])
    vextra = np.concatenate([dense[:1, 5:], np.repeat(extra, n_around, axis=0), dense[-1:, 5:]])
    n, nr = n_around, len(body)

    def rid(i: int, k: int) -> int:
        return 1 + i * n + (k % n)

    faces: list[tuple[int, ...]] = [(0, rid(0, k + 1), rid(0, k)) for k in range(n)]
    for i in range(nr - 1):
        faces += [(rid(i, k), rid(i, k + 1), rid(i + 1, k + 1), rid(i + 1, k)) for k in range(n)]
    last = len(verts) - 1
    faces += [(last, rid(nr - 1, k), rid(nr - 1, k + 1)) for k in range(n)]
    q = faces[n]
    nrm = np.cross(verts[q[1]] - verts[q[0]], verts[q[3]] - verts[q[0]])
    if np.dot(nrm, verts[q[0]] - c[0]) < 0:
        faces = [tuple(reversed(f)) for f in faces]
    return verts, faces, vextra


def _hat_weights(h: np.ndarray, centres: list[float]) -> np.ndarray:
    """(N,) heights -> (N,K) piecewise-linear partition-of-unity weights over sorted ``centres``."""
    eye = np.eye(len(centres))
    return np.stack([np.interp(h, centres, eye[k]) for k in range(len(centres))], axis=-1)


def build_mannequin_smpl() -> MeshData:
    """The mannequin in the SMPL frame (metres, +Y up, facing +Z, +X = subject's left)."""
    sk = smpl_skeleton()
    J = {n: sk.rest_joints[i] for i, n in enumerate(sk.names)}
    X, Y, Z = np.eye(3)
    md = MeshData(np.zeros((0, 3)), [])

    def seg(bone: str, p0: Any, p1: Any, r0: tuple[float, float], r1: tuple[float, float], ref: Any = X,
            power: float = 0.5, extend: tuple[float, float] = (0.0, 0.0), **kw: int) -> None:
        """Add a capsule from ``p0`` to ``p1`` weighted fully to ``bone``."""
        v, f = capsule(np.asarray(p0, float), np.asarray(p1, float), r0, r1, np.asarray(ref, float),
                       power, extend, **kw)
        md.add(v, f, bone)

    def ball(bone: str, c: Any, r: float) -> None:
        """Add a ball joint of radius ``r`` at ``c`` weighted fully to ``bone``."""
        v, f = sphere(np.asarray(c, float), r)
        md.add(v, f, bone)

    # --- torso: one smooth loft (superellipse sections), weights blended pelvis -> spine3 by height
    torso_bones = ["pelvis", "spine1", "spine2", "spine3"]
    centres = [J["pelvis"][1] - 0.04, 0.5 * (J["spine1"][1] + J["spine2"][1]),
               0.5 * (J["spine2"][1] + J["spine3"][1]) + 0.01, J["spine3"][1] + 0.09]
    keys = np.array([  # y, z centre, half width, half depth (SMPL frame; x centre 0)
        (-0.435, 0.012, 0.05, 0.04), (-0.405, 0.012, 0.105, 0.075), (-0.36, 0.006, 0.148, 0.098),
        (-0.29, 0.000, 0.160, 0.104), (-0.22, 0.006, 0.150, 0.097), (-0.14, 0.013, 0.134, 0.089),
        (-0.06, 0.016, 0.127, 0.087), (0.02, 0.020, 0.136, 0.094), (0.10, 0.026, 0.155, 0.105),
        (0.17, 0.024, 0.168, 0.107), (0.22, 0.012, 0.166, 0.096), (0.255, 0.001, 0.138, 0.080),
        (0.285, -0.008, 0.085, 0.058), (0.300, -0.010, 0.04, 0.03)])
    w = _hat_weights(keys[:, 0], centres)
    sections = np.concatenate([np.zeros((len(keys), 1)), keys[:, :1], keys[:, 1:2], keys[:, 2:4], w], axis=1)
    sections[:, 0] = J["pelvis"][0]
    v, f, vw = loft(sections, X)
    vw = np.clip(vw, 0.0, 1.0)
    vw /= vw.sum(axis=1, keepdims=True)  # the spline may overshoot: back to a partition of unity
    md.add(v, f, None, {b: vw[:, i] for i, b in enumerate(torso_bones)})
    # --- neck and head
    seg("neck", J["neck"] + [0, -0.03, 0.0], J["head"] + [0, 0.02, -0.01], (0.048, 0.050), (0.044, 0.046), power=0.6)
    hc = J["head"] + np.array([0.0, 0.085, 0.012])
    seg("head", hc - [0, 0.11, -0.008], hc + [0, 0.115, 0.01], (0.066, 0.080), (0.079, 0.096), power=0.75)
    nose = hc + np.array([0.0, -0.012, 0.088])
    seg("head", nose + [0, 0.028, -0.02], nose + [0, -0.016, 0.008], (0.011, 0.010), (0.017, 0.016), power=0.7,
        n_around=10, n_along=6)
    for sx in (1.0, -1.0):
        ear = hc + np.array([sx * 0.074, -0.01, -0.012])
        seg("head", ear - [0, 0.026, 0], ear + [0, 0.026, 0], (0.009, 0.016), (0.009, 0.018), ref=X, power=0.8,
            n_around=10, n_along=6)
    # --- arms (per side)
    for side in ("left", "right"):
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
    # --- legs (per side)
    for side in ("left", "right"):
        hip, kne, ank, foot = J[f"{side}_hip"], J[f"{side}_knee"], J[f"{side}_ankle"], J[f"{side}_foot"]
        hip_top = hip + np.array([0.008 * np.sign(hip[0]), 0.04, -0.005])
        seg(f"{side}_hip", hip_top, kne, (0.088, 0.090), (0.054, 0.056), power=0.35, extend=(0.0, 0.0))
        ball(f"{side}_knee", kne, 0.056)
        seg(f"{side}_knee", kne, ank, (0.052, 0.054), (0.036, 0.037), power=0.35, extend=(0.0, 0.01))
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


def link_mesh_object(armature_obj: Any, name: str, verts_b: np.ndarray, faces: list[tuple[int, ...]] | np.ndarray,
                     groups: dict[str, tuple[np.ndarray, np.ndarray]], context: Any) -> Any:
    """Create a mesh object parented to ``armature_obj`` with vertex groups and an Armature modifier."""
    import bpy

    mesh = bpy.data.meshes.new(name)
    # bulk build (foreach_set) instead of from_pydata: the Python lists cost ~0.3 s per mannequin
    sizes = np.fromiter((len(f) for f in faces), dtype=np.int64, count=len(faces))
    flat = np.fromiter(itertools.chain.from_iterable(faces), dtype=np.int32, count=int(sizes.sum()))
    mesh.vertices.add(len(verts_b))
    mesh.vertices.foreach_set("co", np.asarray(verts_b, dtype=np.float32).ravel())
    mesh.loops.add(len(flat))
    mesh.loops.foreach_set("vertex_index", flat)
    mesh.polygons.add(len(sizes))
    mesh.polygons.foreach_set("loop_start", np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32))
    mesh.update(calc_edges=True)
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
    for gname, (idx, w) in groups.items():
        vg = obj.vertex_groups.new(name=gname)
        idx, w = np.asarray(idx, dtype=np.int64), np.asarray(w, dtype=np.float64)
        wq = w.astype(np.float32)  # weights are stored as float32: group identical values, one call each
        for val in np.unique(wq):
            vg.add(idx[wq == val].tolist(), float(val), 'REPLACE')
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
    groups = {g: (np.asarray(ix), np.asarray(ws)) for g, (ix, ws) in md.groups.items()}
    return link_mesh_object(armature_obj, name or f"{armature_obj.name}_mannequin", verts_b, md.faces, groups,
                            context)


def create_smpl_mesh(armature_obj: Any, model_path: str, context: Any = None, name: str | None = None) -> Any:
    """Create the real SMPL mesh (template vertices, faces, skinning weights) from an SMPL model file,
    skinned to ``armature_obj``. Raises if the file cannot be read (the caller falls back to the mannequin)."""
    import bpy

    context = context or bpy.context
    model = read_smpl_model_file(model_path)
    v = np.asarray(model["v_template"], dtype=np.float64)
    w = np.asarray(model["weights"], dtype=np.float64)
    if w.shape[1] != 24:
        raise ValueError(f"expected 24 SMPL joints in the weights, got {w.shape[1]}")
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for j, bone in enumerate(joint_names()):
        idx = np.nonzero(w[:, j] > 1e-4)[0]
        groups[bone] = (idx, w[idx, j])
    return link_mesh_object(armature_obj, name or f"{armature_obj.name}_smpl_mesh", smpl_points_to_blender(v),
                            np.asarray(model["f"]), groups, context)


__all__ = ["MeshData", "capsule", "sphere", "build_mannequin_smpl", "sole_height_smpl", "floor_lift",
           "link_mesh_object", "create_mannequin", "create_smpl_mesh", "MANNEQUIN_COLOR"]
