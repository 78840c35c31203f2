#!/usr/bin/env python3
"""DPoser for Blender - the headless demo (run with the bpy module's Python; ``scripts/demo.sh`` does it).

It drives the *installed* extension the way an animator would, through its ``bpy.ops.dposer.*`` operators:

1. installs the built extension zip into a temporary Blender user folder, enables it, points its
   preferences at the backend Python, and adds the SMPL armature with the mannequin;
2. imports the shipped CMU walk (``tests/data/cmu_daz_07_01_walk.bvh``) through the backend's BVH
   retargeting;
3. adds 60 mm Gaussian noise to the joint positions (a noisy action) and denoises it into a new action
   (the noisy one is kept in a muted NLA track, the clean original is kept too);
4. samples 8 poses;
5. in-betweens two of them over 24 frames (and scores the result's plausibility per frame);
6. completes a pose with the legs free (several hypotheses, ranked by score);
7. saves ``demo_out/dposer_demo.blend``;
8. renders PNGs into ``demo_out/``: the sampled poses, the in-between filmstrip, the completion
   hypotheses, and a before/after plot of the denoising (joint trajectories; drawn by matplotlib in
   the backend Python, since the bpy venv has none).

Usage::

    .venv-bpy-5.0/bin/python scripts/demo.py --zip dist/dposer_blender-0.1.0.zip --python .venv/bin/python \
        [--weights PATH] [--out demo_out] [--device auto|cpu|cuda] [--seed N] [--docs docs/images]

``--python`` defaults to ``$DPOSER_PYTHON``, ``--weights`` to ``$DPOSER_WEIGHTS`` (empty: the weights
shipped inside the extension). Exit status 0 when every step worked.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BVH = REPO / "tests" / "data" / "cmu_daz_07_01_walk.bvh"
PKG = "bl_ext.user_default.dposer_blender"

SEED = 4                 # sampling seed (the sampler is deterministic for a seed)
NOISE_MM = 60.0          # noise added to the joint positions, per coordinate
N_SAMPLES = 8
INBETWEEN_FRAMES = 24    # key A at frame 1, key B at frame 25
N_HYPOTHESES = 6
LEG_JOINTS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
              "left_foot", "right_foot")

# Render look (linear RGBA): the mannequin's own colour for ordinary figures, accents for highlights.
KEY_COLOR = (0.85, 0.36, 0.08, 1.0)      # in-between keys A / B
FREE_COLOR = (0.10, 0.42, 0.80, 1.0)     # completed (free) leg segments
FLOOR_COLOR = (1.0, 1.0, 1.0, 1.0)
TITLE_BG = (0.045, 0.047, 0.052)
TEXT_COLOR = (0.92, 0.92, 0.92, 1.0)
VIEW = (0.0, 14.0)  # one camera for every sheet: in front, looking down 14 deg (the floor hides the horizon)
LENS = 85.0

# Blender's user folders go to a temp dir (set before bpy is imported), so nothing touches a real profile.
USER_DIR = tempfile.mkdtemp(prefix="dposer_demo_user_")
os.environ["BLENDER_USER_RESOURCES"] = USER_DIR

import bpy  # noqa: E402


# ----------------------------------------------------------------------------------------- printing

class Log:
    """Step headers with timings, indented details, and a summary table at the end."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.t0 = time.perf_counter()
        self.rows: list[tuple[str, float]] = []
        self.n = 0

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.n += 1
        print(f"\n[{self.n}/{self.total}] {title}", flush=True)
        t = time.perf_counter()
        yield
        dt = time.perf_counter() - t
        self.rows.append((title, dt))
        print(f"      ({dt:.1f} s)", flush=True)

    @staticmethod
    def note(msg: str) -> None:
        for i, line in enumerate(str(msg).splitlines() or [""]):
            print(("      " if i == 0 else "        ") + line, flush=True)


LOG = Log(8)


# ----------------------------------------------------------------------------------------- operators

def have_op(name: str) -> bool:
    """True when ``bpy.ops.dposer.<name>`` is registered."""
    try:
        getattr(bpy.ops.dposer, name).get_rna_type()
        return True
    except (AttributeError, KeyError):
        return False


def op(name: str, **props: Any) -> set[str]:
    """Run ``bpy.ops.dposer.<name>(**props)`` (blocking in background mode) and print what it reported."""
    fn = getattr(bpy.ops.dposer, name)
    args = ", ".join(f"{k}={v!r}" for k, v in props.items())
    LOG.note(f"bpy.ops.dposer.{name}({args})")
    t = time.perf_counter()
    try:
        res = fn(**props)
    except RuntimeError as ex:  # an ERROR report makes bpy raise
        raise SystemExit(f"[demo] bpy.ops.dposer.{name} failed: {str(ex).strip()}") from None
    if res != {'FINISHED'}:
        raise SystemExit(f"[demo] bpy.ops.dposer.{name} returned {res}")
    LOG.note(f"  -> {', '.join(sorted(res))} in {time.perf_counter() - t:.1f} s")
    return res


def name_character(obj: Any, name: str) -> Any:
    """Rename a new SMPL armature and its body mesh ("<name>", "<name> body")."""
    obj.name = obj.data.name = name
    for c in obj.children:
        c.name = f"{name} body"
        if c.data is not None:
            c.data.name = f"{name} body"
    return obj


def key_values(obj: Any, frames: Sequence[float]) -> dict[tuple[str, int, float], float]:
    """The keyed values of ``obj``'s active action at ``frames`` per (data path, index, frame)."""
    from importlib import import_module

    aio = import_module(PKG + ".action_io")
    out = {}
    for fc in aio.action_fcurves(obj.animation_data.action, obj):
        co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        for f, v in zip(co[0::2], co[1::2]):
            if float(f) in frames:
                out[(fc.data_path, fc.array_index, float(f))] = float(v)
    return out


def set_active(obj: Any) -> None:
    vl = bpy.context.view_layer
    for o in vl.objects:
        o.select_set(False)
    vl.objects.active = obj
    obj.select_set(True)


# ----------------------------------------------------------------------------------------- numpy kinematics

class Kin:
    """SMPL forward kinematics of the 22 body joints (SMPL frame, metres) and a small position-IK, in numpy.

    Used to make the noisy motion (noise on joint positions -> rotations that reach them) and to measure
    and plot joint trajectories; the extension's operators do the real work.
    """

    def __init__(self, ext: Any) -> None:
        sk = ext.dposer_core.skeleton.smpl_skeleton()
        self.pc = ext.pose_convert
        self.parents = [int(p) for p in sk.parents[:22]]
        self.rest = np.asarray(sk.rest_joints[:22], dtype=np.float64)
        self.names = list(sk.names[:22])
        self.children = {j: [c for c in range(22) if self.parents[c] == j] for j in range(22)}

    def local_rots(self, body: np.ndarray, root: np.ndarray) -> np.ndarray:
        T = body.shape[0]
        aa = np.concatenate([root.reshape(T, 1, 3), body.reshape(T, 21, 3)], axis=1)
        return self.pc.axis_angle_to_matrix(aa)  # (T,22,3,3)

    def fk(self, body: np.ndarray, root: np.ndarray, trans: np.ndarray) -> np.ndarray:
        R = self.local_rots(body, root)
        T = R.shape[0]
        W = np.empty_like(R)
        J = np.empty((T, 22, 3))
        W[:, 0], J[:, 0] = R[:, 0], self.rest[0] + trans
        for j in range(1, 22):
            p = self.parents[j]
            W[:, j] = W[:, p] @ R[:, j]
            J[:, j] = J[:, p] + np.einsum("tij,j->ti", W[:, p], self.rest[j] - self.rest[p])
        return J

    def reach(self, body: np.ndarray, root: np.ndarray, trans: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Body pose (T,63) whose joints point at ``targets`` (T,22,3), root kept: each joint is turned (on top
        of its clean rotation) so its bones aim at its children's targets (a minimal swing for one child, the
        best-fitting rotation for several). Bone lengths are fixed, so only the noise across the bones stays."""
        R = self.local_rots(body, root)
        T = R.shape[0]
        W = np.empty_like(R)
        J = np.empty((T, 22, 3))
        W[:, 0], J[:, 0] = R[:, 0], self.rest[0] + trans
        Rn = R.copy()
        for j in range(1, 22):
            p = self.parents[j]
            J[:, j] = J[:, p] + np.einsum("tij,j->ti", W[:, p], self.rest[j] - self.rest[p])
            Wc = W[:, p] @ R[:, j]
            ch = self.children[j]
            if ch:
                u = np.stack([np.einsum("tij,j->ti", Wc, self.rest[c] - self.rest[j]) for c in ch], axis=1)
                v = np.stack([targets[:, c] - J[:, j] for c in ch], axis=1)
                S = _swing(u[:, 0], v[:, 0]) if len(ch) == 1 else _kabsch(u, v)
                Wc = S @ Wc
                Rn[:, j] = np.swapaxes(W[:, p], -1, -2) @ Wc
            W[:, j] = Wc
        return self.pc.matrix_to_axis_angle(Rn[:, 1:]).reshape(T, 63)

    def body_local(self, J: np.ndarray, root: np.ndarray) -> np.ndarray:
        """Joints relative to the pelvis in the body frame (x = subject's left, y = up, z = forward)."""
        W0 = self.pc.axis_angle_to_matrix(root)  # (T,3,3)
        return np.einsum("tji,tkj->tki", W0, J - J[:, :1])


def _swing(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(T,3,3) minimal rotations taking directions u (T,3) to v (T,3)."""
    a = u / np.linalg.norm(u, axis=-1, keepdims=True)
    b = v / np.linalg.norm(v, axis=-1, keepdims=True)
    axis = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    K = np.zeros(a.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    K = K - np.swapaxes(K, -1, -2)
    return np.eye(3) + K + (K @ K) / (1.0 + c)[..., None, None]


def _kabsch(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(T,3,3) rotations S minimising sum_k |S u_k - v_k|^2 for u, v (T,K,3)."""
    H = np.einsum("tki,tkj->tij", u, v)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    D = np.tile(np.eye(3), (u.shape[0], 1, 1))
    D[:, 2, 2] = d
    return np.swapaxes(Vt, -1, -2) @ D @ np.swapaxes(U, -1, -2)


# ----------------------------------------------------------------------------------------- render helpers

def _material(name: str, color: tuple[float, float, float, float], roughness: float = 0.6) -> Any:
    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    mat.diffuse_color = color
    mat.roughness = roughness
    mat.metallic = 0.0
    return mat


def tint(objs: Sequence[Any], mat: Any) -> None:
    """Give mesh objects their own material (object-linked slots; the shared mesh data is untouched)."""
    for o in objs:
        for slot in o.material_slots:
            slot.link = 'OBJECT'
            slot.material = mat


@contextmanager
def legs_coloured(arm: Any, bones: Sequence[str], mat: Any) -> Iterator[None]:
    """Temporarily give ``arm``'s body a mesh copy whose faces on ``bones`` use ``mat`` (2nd material)."""
    saved = []
    try:
        for body in arm.children:
            if body.type != 'MESH':
                continue
            me = body.data.copy()
            me.name = "DPoser legs-coloured mesh"
            me.materials.append(mat)
            gi = {g.index for g in body.vertex_groups if g.name in bones}
            best = np.empty(len(me.vertices), dtype=np.int64)
            for v in me.vertices:
                gs = [(g.weight, g.group) for g in v.groups]
                best[v.index] = max(gs)[1] if gs else -1
            on = np.isin(best, list(gi))
            n = len(me.polygons)
            loop_start = np.empty(n, np.int32)
            loop_total = np.empty(n, np.int32)
            me.polygons.foreach_get("loop_start", loop_start)
            me.polygons.foreach_get("loop_total", loop_total)
            vi = np.empty(len(me.loops), np.int32)
            me.loops.foreach_get("vertex_index", vi)
            frac = np.add.reduceat(on[vi].astype(np.float64), loop_start) / loop_total
            mi = (frac > 0.5).astype(np.int32)
            me.polygons.foreach_set("material_index", mi)
            saved.append((body, body.data))
            body.data = me
        yield
    finally:
        for body, data in saved:
            tmp = body.data
            body.data = data
            bpy.data.meshes.remove(tmp)


def _floor(scene: Any) -> Any:
    """A large floor at z = 0: with the camera looking down more than half its field of view, the floor
    fills the whole background, so there is no horizon line behind the figures."""
    size = 200.0
    me = bpy.data.meshes.new("DPoser Demo Floor")
    me.from_pydata([(-size, -size, 0.0), (size, -size, 0.0), (size, size, 0.0), (-size, size, 0.0)], [], [(0, 1, 2, 3)])
    me.materials.append(_material("DPoser Demo Floor", FLOOR_COLOR, roughness=1.0))
    obj = bpy.data.objects.new("DPoser Demo Floor", me)
    scene.collection.objects.link(obj)
    return obj


def _show_only(scene: Any, visible: set[Any]) -> list[tuple[Any, bool]]:
    saved = []
    for o in scene.objects:
        if o.type in {'MESH', 'CURVE', 'SURFACE', 'META', 'FONT'}:
            saved.append((o, o.hide_render))
            o.hide_render = o not in visible
    return saved


def _restore(saved: list[tuple[Any, bool]]) -> None:
    for o, h in saved:
        o.hide_render = h


def render_cells(R: Any, cells: Sequence[Sequence[Any]], filepath: str, resolution: tuple[int, int],
                 columns: int | None = None) -> str:
    """Render figures (each a list of objects: body meshes, caption) with one camera (``VIEW``, ``LENS``)
    framed on all of them. ``columns`` None: one render with every figure in place; else every figure is
    rendered alone in a cell of ``resolution / grid`` and the cells are tiled (figures at the same spot)."""
    scene = bpy.context.scene
    made: list[Any] = []
    everything = [o for c in cells for o in c]
    with R.preserved_render_settings(scene):
        rows = 1 if columns is None else math.ceil(len(cells) / columns)
        cell_res = resolution if columns is None else (resolution[0] // columns, resolution[1] // rows)
        R.setup_scene(scene, cell_res)
        dither, scene.render.dither_intensity = scene.render.dither_intensity, 0.0  # no noise: small PNGs
        bpy.context.view_layer.update()
        pts = R.world_points(everything, bpy.context.evaluated_depsgraph_get())
        made.append(R.frame_camera(scene, pts, VIEW, lens=LENS, margin=0.06))
        floor = _floor(scene)
        made.append(floor)
        try:
            if columns is None:
                saved = _show_only(scene, set(everything) | {floor})
                try:
                    R.render_png(scene, filepath)
                finally:
                    _restore(saved)
            else:
                paths = []
                try:
                    for i, c in enumerate(cells):
                        saved = _show_only(scene, set(c) | {floor})
                        try:
                            paths.append(R.render_png(scene, f"{filepath}.cell{i}.png"))
                        finally:
                            _restore(saved)
                    R.tile_pngs(paths, columns, filepath)
                finally:
                    for p in paths:
                        if os.path.exists(p):
                            os.remove(p)
        finally:
            scene.render.dither_intensity = dither
            R._remove_objects(made)  # noqa: SLF001 - the render module's own cleanup
    return filepath


def figures(ext: Any, src: Any, poses: Sequence[np.ndarray] | None, offsets: np.ndarray, captions: Sequence[str],
            caption_size: float, frames: Sequence[int] | None = None) -> tuple[list[list[Any]], list[Any], list[Any]]:
    """Duplicates of ``src`` posed with ``poses`` (SMPL body poses, root facing the camera) or with ``src``'s
    own animation at ``frames`` (horizontal root motion removed), feet on the floor, one caption each, all
    captions on one line above the tallest figure. Returns (cells, armatures, everything made)."""
    R, pc = ext.render, ext.pose_convert
    scene = bpy.context.scene
    coll = scene.collection
    old = scene.frame_current
    made: list[Any] = []
    arms, bodies_of = [], []
    n = len(poses) if poses is not None else len(frames or [])
    for i in range(n):
        arm, bodies = R.duplicate_character(src, tuple(offsets[i]), coll, suffix=f"fig{i}")
        made += [arm, *bodies]
        if poses is not None:
            pc.apply_smpl_pose(arm, np.asarray(poses[i]).reshape(21, 3), None, None)
        else:
            scene.frame_set(int(frames[i]))
            R.copy_pose(src, arm)
            R.remove_horizontal_root_motion(arm)
        arms.append(arm)
        bodies_of.append(bodies)
    scene.frame_set(old)
    for arm in arms:
        R.ground_object(arm)
    bpy.context.view_layer.update()
    dg = bpy.context.evaluated_depsgraph_get()
    boxes = [R.world_points(b, dg) for b in bodies_of]
    top = max(float(p[:, 2].max()) for p in boxes)
    depth = float(np.mean([0.5 * (p[:, 1].min() + p[:, 1].max()) for p in boxes]))
    cells = []
    for bodies, pts, text in zip(bodies_of, boxes, captions):
        c = 0.5 * (pts.min(0) + pts.max(0))
        label = R.add_label(coll, text, (float(c[0]), depth, top + 0.10), size=caption_size)
        made.append(label)
        cells.append([*bodies, label])
    return cells, arms, made


def title_png(R: Any, text: str, width: int, filepath: str, height: int = 46) -> str:
    """A one-line caption bar (light text on dark grey), rendered flat with an orthographic camera."""
    scene = bpy.context.scene
    made: list[Any] = []
    with R.preserved_render_settings(scene):
        R.setup_scene(scene, (width, height), background=TITLE_BG)
        dither, scene.render.dither_intensity = scene.render.dither_intensity, 0.0
        sh = scene.display.shading
        sh.light, sh.show_shadows, sh.show_cavity, sh.show_specular_highlight = 'FLAT', False, False, False
        z = -500.0  # far below the floor, out of every other camera's way
        cu = bpy.data.curves.new("DPoser Title", 'FONT')
        cu.body = text
        cu.size = 0.24
        cu.align_x, cu.align_y = 'LEFT', 'CENTER'
        cu.materials.append(_material("DPoser Title", TEXT_COLOR))
        txt = bpy.data.objects.new("DPoser Title", cu)
        txt.location = (-width / 200.0 + 0.16, 0.0, z)
        scene.collection.objects.link(txt)
        cam = bpy.data.objects.new("DPoser Title Camera", bpy.data.cameras.new("DPoser Title Camera"))
        cam.data.type = 'ORTHO'
        cam.data.ortho_scale = width / 100.0
        cam.location = (0.0, 0.0, z + 10.0)
        scene.collection.objects.link(cam)
        scene.camera = cam
        made += [txt, cam]
        saved = _show_only(scene, {txt})
        try:
            R.render_png(scene, filepath)
        finally:
            _restore(saved)
            scene.render.dither_intensity = dither
            R._remove_objects(made)  # noqa: SLF001
    return filepath


def stack_pngs(R: Any, paths: Sequence[str], filepath: str) -> str:
    """Stack equally wide PNGs top to bottom into ``filepath`` with the extension's ``render`` module
    ``R`` (the inputs are deleted)."""
    canvas = np.concatenate([R.read_png_pixels(p) for p in paths][::-1], axis=0)  # pixel rows run bottom-up
    R.write_png_pixels(canvas, filepath)
    for p in paths:
        if os.path.abspath(p) != os.path.abspath(filepath):
            os.remove(p)
    return filepath


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Blender's own render chatter ("Saved: ...", EGL notes) on fds 1 and 2 for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def sheet(ext: Any, title: str, cells: Sequence[Sequence[Any]], filepath: str, resolution: tuple[int, int],
          columns: int | None = None) -> str:
    """``render_cells`` with a caption bar on top."""
    with quiet():
        body = render_cells(ext.render, cells, filepath + ".body.png", resolution, columns)
        head = title_png(ext.render, title, resolution[0], filepath + ".title.png")
        return stack_pngs(ext.render, [head, body], filepath)


def plot_denoise(python: str, data: dict[str, np.ndarray], filepath: str) -> str:
    """Before/after plot of the denoising, drawn by matplotlib in the backend Python (a subprocess)."""
    d = tempfile.mkdtemp(prefix="dposer_demo_plot_")
    try:
        npz = os.path.join(d, "plot.npz")
        np.savez(npz, **data)
        env = {**os.environ, "MPLBACKEND": "Agg", "CUDA_VISIBLE_DEVICES": ""}
        proc = subprocess.run([python, "-c", PLOT_SCRIPT, npz, filepath], capture_output=True, text=True,
                              timeout=300, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"the plot subprocess failed: {proc.stderr.strip()[-800:]}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return filepath


PLOT_SCRIPT = r'''
import sys
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

d = np.load(sys.argv[1])
t = d["frames"]
names = list(d["names"])
noise = float(d["noise_mm"])
C_NOISY, C_CLEAN, C_DEN = "#e07b72", "#222222", "#1f6fd1"
fig, axes = plt.subplots(2, 2, figsize=(11.0, 6.8), dpi=100)
panels = [(axes[0, 0], "left_ankle", "height", None, "Left ankle: height above the floor (mm)"),
          (axes[0, 1], "left_ankle", "local", 2, "Left ankle: forward of the pelvis (mm)"),
          (axes[1, 0], "right_wrist", "local", 2, "Right wrist: forward of the pelvis (mm)")]
for ax, joint, kind, axis, title in panels:
    j = names.index(joint)
    if kind == "height":
        series = [1000 * d["height_" + k][:, j] for k in ("noisy", "clean", "denoised")]
    else:
        series = [1000 * d[k][:, j, axis] for k in ("noisy", "clean", "denoised")]
    ax.plot(t, series[0], color=C_NOISY, lw=1.0, label=f"noisy input ({noise:.0f} mm noise)")
    ax.plot(t, series[1], color=C_CLEAN, lw=1.6, ls="--", label="original mocap")
    ax.plot(t, series[2], color=C_DEN, lw=2.2, label="DPoser denoised")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("frame (30 fps)")
    ax.grid(alpha=0.3)
ax = axes[1, 1]
ax.plot(t, d["err_noisy"], color=C_NOISY, lw=1.2, label=f"noisy input: mean {d['err_noisy'].mean():.0f} mm")
ax.plot(t, d["err_denoised"], color=C_DEN, lw=2.2, label=f"DPoser denoised: mean {d['err_denoised'].mean():.0f} mm")
ax.set_ylim(0, 1.25 * max(d["err_noisy"].max(), d["err_denoised"].max()))
ax.set_title("Mean joint distance to the original mocap (mm)", fontsize=11)
ax.set_xlabel("frame (30 fps)")
ax.grid(alpha=0.3)
ax.legend(loc="upper right", fontsize=9.5, framealpha=0.95)
handles, labels = axes[0, 0].get_legend_handles_labels()
fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=10.5, frameon=False, bbox_to_anchor=(0.5, 0.955))
fig.suptitle(f"Denoising a CMU walk: {noise:.0f} mm Gaussian noise on the joint positions, "
             "cleaned by dposer.denoise", fontsize=13)
fig.tight_layout(rect=(0, 0, 1, 0.93))
fig.savefig(sys.argv[2])
'''


QUANTIZE_SCRIPT = r'''
import os, sys
from PIL import Image
for src in sys.argv[2:]:
    dst = os.path.join(sys.argv[1], os.path.basename(src))
    Image.open(src).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                            dither=Image.Dither.NONE).save(dst, optimize=True)
    print(f"      docs copy: {dst} ({os.path.getsize(dst) // 1024} KB)")
'''


# ----------------------------------------------------------------------------------------- the demo

def find_zip(arg: str | None) -> Path:
    if arg:
        return Path(arg).resolve()
    zips = sorted(glob.glob(str(REPO / "dist" / "dposer_blender-*.zip")), key=os.path.getmtime)
    if not zips:
        raise SystemExit("[demo] no dist/dposer_blender-*.zip: run scripts/build_extension.py first (demo.sh does)")
    return Path(zips[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="DPoser for Blender headless demo")
    ap.add_argument("--zip", default=None, help="extension zip (default: the newest dist/dposer_blender-*.zip)")
    ap.add_argument("--python", default=os.environ.get("DPOSER_PYTHON", ""),
                    help="backend Python with torch (default $DPOSER_PYTHON)")
    ap.add_argument("--weights", default=os.environ.get("DPOSER_WEIGHTS", ""),
                    help="checkpoint (default $DPOSER_WEIGHTS, else the weights shipped in the extension)")
    ap.add_argument("--device", default=os.environ.get("DPOSER_DEVICE", "auto"), choices=["auto", "cpu", "cuda"])
    ap.add_argument("--out", default=str(REPO / "demo_out"), help="output folder (default demo_out/)")
    ap.add_argument("--seed", type=int, default=SEED, help=f"sampling seed (default {SEED})")
    ap.add_argument("--docs", default="", help="also write 256-colour copies of the PNGs here (e.g. docs/images)")
    args = ap.parse_args(argv)
    seed = args.seed

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    zpath = find_zip(args.zip)
    python = args.python or str(REPO / ".venv" / "bin" / "python")
    outputs: list[Path] = []
    print(f"DPoser for Blender demo - Blender {bpy.app.version_string} (bpy module), output in {out}")

    # ---------------------------------------------------------------- 1. install, enable, armature
    with LOG.step("Install the extension, enable it, add the SMPL armature"):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        res = bpy.ops.extensions.package_install_files(filepath=str(zpath), repo="user_default",
                                                       enable_on_install=False)
        if res != {'FINISHED'}:
            raise SystemExit(f"[demo] installing {zpath} failed: {res}")
        res = bpy.ops.preferences.addon_enable(module=PKG)
        if res != {'FINISHED'} or PKG not in bpy.context.preferences.addons:
            raise SystemExit(f"[demo] enabling {PKG} failed: {res}")
        ext = importlib.import_module(PKG)
        for sub in ("runtime", "render", "action_io", "pose_convert"):
            importlib.import_module(f"{PKG}.{sub}")
        LOG.note(f"installed {zpath.name} -> {Path(ext.__file__).parent} (module {PKG})")
        prefs = bpy.context.preferences.addons[PKG].preferences
        prefs.backend_python = python
        prefs.device = args.device
        if args.weights:
            prefs.weights_path = str(Path(args.weights).resolve())
        LOG.note(f"preferences: backend Python {python}; device {args.device}; weights "
                 f"{prefs.weights_path or 'shipped (' + ext.runtime.shipped_weights_path() + ')'}")
        missing = [n for n in ("backend_start", "add_smpl_armature", "import_motion", "denoise", "sample",
                               "apply_candidate", "inbetween", "plausibility", "complete", "backend_stop")
                   if not have_op(n)]
        if missing:
            raise SystemExit(f"[demo] the extension lacks operators: {', '.join('dposer.' + m for m in missing)}")
        op("backend_start")
        try:  # load the weights now (a no-op when the backend started with them) so a missing file fails early
            loaded = ext.runtime.call("load", path=prefs.weights_path or None, device=args.device)
        except Exception as ex:  # noqa: BLE001
            raise SystemExit(f"[demo] {ext.runtime.describe_error(ex)}\n[demo] Pass --weights PATH (or set "
                             "DPOSER_WEIGHTS), or put the checkpoint at weights/dposer_cmu_bandai.pt before "
                             "building the zip.") from None
        LOG.note(f"backend: {ext.runtime.status()[1]}; weights {loaded.weights_path} "
                 f"(sha256 {str(loaded.weights_sha256)[:12]}…)")
        scene = bpy.context.scene
        scene.render.fps, scene.render.fps_base = 30, 1.0
        scene.cursor.location = (0.0, 0.0, 0.0)
        op("add_smpl_armature")
        walker = name_character(bpy.context.view_layer.objects.active, "Walker")
        LOG.note(f"'{walker.name}': {len(walker.data.bones)} bones, body "
                 f"'{[c.name for c in walker.children][0]}' ({len(walker.children[0].data.vertices)} vertices)")

    aio, pc, R = ext.action_io, ext.pose_convert, ext.render
    kin = Kin(ext)

    # ---------------------------------------------------------------- 2. import the BVH
    with LOG.step(f"Import the shipped CMU walk ({BVH.name}) onto the armature"):
        set_active(walker)
        op("import_motion", filepath=str(BVH))
        clean_act = walker.animation_data.action
        clean_act.use_fake_user = True
        m = aio.read_smpl_motion(walker, clean_act)
        frames = m["frames"]
        LOG.note(f"action '{clean_act.name}': {len(frames)} frames ({frames[0]:g}-{frames[-1]:g}) at "
                 f"{scene.render.fps} fps; credit: tests/data/CREDIT.md (CMU mocap, subject 07 trial 01)")
        body, root, trans = m["body_pose"], m["root_orient"], m["trans"]
        J_clean = kin.fk(body, root, trans)
        jump = np.linalg.norm(J_clean[1] - J_clean[0], axis=-1).mean()
        if jump > 0.05:  # the DAZ conversion starts with a T-pose frame: leave it out of the scene range
            scene.frame_start = int(frames[1])
            LOG.note(f"frame {frames[0]:g} is the T-pose of the BVH conversion (joints jump {1000 * jump:.0f} mm "
                     f"to the next frame): scene range {scene.frame_start}-{scene.frame_end}")
        walk_range = (scene.frame_start, scene.frame_end)

    # ---------------------------------------------------------------- 3. noise + denoise
    with LOG.step(f"Add {NOISE_MM:g} mm Gaussian noise to the joint positions, then denoise"):
        rng = np.random.default_rng(SEED)  # the noise stays the same whatever --seed
        targets = J_clean + rng.normal(0.0, NOISE_MM / 1000.0, J_clean.shape)
        body_noisy = kin.reach(body, root, trans, targets)
        noisy_act = aio.write_smpl_motion(walker, body_noisy, root, trans, frames=frames,
                                          name=f"{clean_act.name}_noisy")
        J_noisy = kin.fk(body_noisy, root, trans)
        sel = (frames >= scene.frame_start) & (frames <= scene.frame_end)
        err_noisy = 1000 * np.linalg.norm(J_noisy - J_clean, axis=-1)[sel]
        LOG.note(f"'{noisy_act.name}': N(0, {NOISE_MM:g} mm) per coordinate on the joint positions, turned into "
                 f"rotations that reach them (root kept): joints {err_noisy.mean():.1f} mm from the original "
                 f"on average")
        set_active(walker)
        op("denoise", noise="MM", noise_mm=NOISE_MM, use_frame_range=True)
        den_act = walker.animation_data.action
        tracks = [(t.name, t.mute) for t in walker.animation_data.nla_tracks]
        md = aio.read_smpl_motion(walker, den_act)
        if not np.array_equal(md["frames"], frames[sel]):
            raise SystemExit(f"[demo] the denoised action has frames {md['frames'][[0, -1]]}, expected the scene range")
        J_den = kin.fk(md["body_pose"], md["root_orient"], md["trans"])
        err_den = 1000 * np.linalg.norm(J_den - J_clean[sel], axis=-1)
        LOG.note(f"active action '{den_act.name}' ({len(md['frames'])} frames); NLA tracks (name, muted) {tracks}; "
                 f"original '{clean_act.name}' kept")
        LOG.note(f"mean joint distance to the original: noisy {err_noisy.mean():.1f} mm -> denoised "
                 f"{err_den.mean():.1f} mm")
        floor_trans = pc.rig_trans_to_motion(trans, walker)[sel]  # feet-on-the-floor SMPL translation
        lift = floor_trans - trans[sel]
        plot_data = dict(frames=frames[sel], names=np.array(kin.names), noise_mm=NOISE_MM,
                         clean=kin.body_local(J_clean[sel], root[sel]), noisy=kin.body_local(J_noisy[sel], root[sel]),
                         denoised=kin.body_local(J_den, md["root_orient"]),
                         height_clean=(J_clean[sel] + lift[:, None])[..., 1],
                         height_noisy=(J_noisy[sel] + lift[:, None])[..., 1],
                         height_denoised=(J_den + lift[:, None])[..., 1],
                         err_noisy=err_noisy.mean(1), err_denoised=err_den.mean(1))

    # ---------------------------------------------------------------- 4. sample 8 poses
    with LOG.step(f"Sample {N_SAMPLES} poses"):
        scene.frame_set(1)
        scene.cursor.location = (-2.5, 0.0, 0.0)
        op("add_smpl_armature")
        poser = name_character(bpy.context.view_layer.objects.active, "Poser")
        op("sample", n=N_SAMPLES, seed=seed)
        ghosts = sorted([o for o in bpy.data.objects if o.get("dposer_ghost_of") == poser.name],
                        key=lambda o: int(o["dposer_ghost_index"]))
        samples = np.array([np.asarray(g["dposer_pose"], dtype=np.float64) for g in ghosts])
        scores = np.asarray(ext.runtime.call("score", poses=samples.astype(np.float32), seed=0).pose,
                            dtype=np.float64)
        LOG.note(f"{len(ghosts)} candidate ghosts beside '{poser.name}'; scores (lower = more plausible, "
                 f"by the extension's backend client): " + ", ".join(f"{s:.2f}" for s in scores))

    # ---------------------------------------------------------------- 5. in-between two of them
    with LOG.step(f"In-between two sampled poses over {INBETWEEN_FRAMES} frames"):
        # keys: the two most different standing samples (pelvis well above the feet) among the more
        # plausible half by the prior's score, as an animator would pick them from the sheet
        J_s = kin.fk(samples, np.zeros((len(samples), 3)), np.zeros((len(samples), 3)))
        plausible = np.argsort(scores)[:max(2, len(scores) // 2 + 1)]
        standing = [i for i in plausible if J_s[i, 0, 1] - J_s[i, :, 1].min() > 0.75]
        top = standing if len(standing) >= 2 else list(np.argsort(scores))
        pairs = [(a, b) for a in top for b in top if a < b]
        a, b = max(pairs, key=lambda p: np.linalg.norm(J_s[p[0]] - J_s[p[1]], axis=-1).mean())
        fa, fb = 1, 1 + INBETWEEN_FRAMES  # keys at 1 and 25, 23 generated frames in between
        set_active(poser)
        scene.frame_set(fa)
        op("apply_candidate", index=int(a), key=True)
        LOG.note(f"key A = sample {a + 1} at frame {fa} (Apply & Key removes the candidates)")
        scene.frame_set(fb)
        op("sample", n=N_SAMPLES, seed=seed)
        op("apply_candidate", index=int(b), key=True)
        LOG.note(f"key B = sample {b + 1} at frame {fb} (sampled again with the same seed)")
        scene.frame_set((fa + fb) // 2)
        keys_before = key_values(poser, (fa, fb))
        op("inbetween", frame_a=fa, frame_b=fb, ease="ease_in_out")
        ib_act = poser.animation_data.action
        ib_act.name = "Poser in-between"
        kt = aio.key_types(ib_act, poser)
        n_gen = sum(t == "GENERATED" for v in kt.values() for t in v)
        same = key_values(poser, (fa, fb)) == keys_before
        LOG.note(f"action '{ib_act.name}': {n_gen} generated keys (keyframe type {aio.generated_key_type()}); "
                 f"the {len(keys_before)} key values at frames {fa} and {fb} are "
                 + ("bit-exact as before" if same else "CHANGED"))
        op("plausibility")
        fc = [f for f in aio.action_fcurves(ib_act, poser) if f.data_path == '["dposer_plausibility"]'][0]
        co = np.empty(2 * len(fc.keyframe_points), np.float32)
        fc.keyframe_points.foreach_get("co", co)
        LOG.note(f"plausibility per frame: keys {co[1]:.2f} / {co[-1]:.2f}, in-betweens mean "
                 f"{co[3:-2:2].mean():.2f}, worst {co[3:-2:2].max():.2f}")

    # ---------------------------------------------------------------- 6. complete with the legs free
    with LOG.step(f"Complete a pose with the legs free ({N_HYPOTHESES} hypotheses)"):
        scene.cursor.location = (2.5, 0.0, 0.0)
        op("add_smpl_armature")
        comp = name_character(bpy.context.view_layer.objects.active, "Completer")
        # The upper body of a mid-stride frame of the walk (facing the camera); the legs are left to DPoser.
        stride = np.abs(J_clean[:, 7, :] - J_clean[:, 8, :]).max(-1)
        src_frame = int(np.argmax(stride))
        rig = pc.SMPLRig.from_armature(comp)
        pc.apply_smpl_pose(comp, body[src_frame], None, None, rig)
        keep = [n for n in rig.bone_names[1:22] if n not in LEG_JOINTS]
        for pb in comp.pose.bones:
            sel = pb.name in keep
            for target in (pb, pb.bone):  # PoseBone.select on 5.x, Bone.select on 4.x
                if hasattr(target, "select"):
                    target.select = sel
        LOG.note(f"upper body of walk frame {frames[src_frame]:g}; {len(keep)} bones selected (kept), "
                 f"the {len(LEG_JOINTS)} leg bones free")
        set_active(comp)
        op("complete", hypotheses=N_HYPOTHESES, steps=200, seed=0)
        h = comp["dposer_complete"]
        hyp = np.asarray(h["poses"], dtype=np.float64).reshape(-1, 63)
        hscores = np.asarray(h["scores"], dtype=np.float64)
        kept_idx = [rig.bone_names.index(n) - 1 for n in keep]
        drift = np.abs(hyp.reshape(-1, 21, 3)[:, kept_idx] - body[src_frame].reshape(21, 3)[kept_idx]).max()
        LOG.note(f"scores (best first): " + ", ".join(f"{s:.2f}" for s in hscores)
                 + f"; kept bones changed by at most {drift:.1e} rad")
        op("complete_flip", direction=1)
        op("complete_flip", direction=-1)
        LOG.note("the hypotheses stay on 'Completer' (flip them with the panel's arrows in the saved file)")

    # ---------------------------------------------------------------- 7. save
    with LOG.step("Save the scene"):
        set_active(walker)
        scene.frame_start, scene.frame_end = walk_range
        scene.frame_set(walk_range[0])
        blend = out / "dposer_demo.blend"
        bpy.context.preferences.filepaths.save_version = 0  # no .blend1 backups
        bpy.ops.wm.save_as_mainfile(filepath=str(blend), check_existing=False, compress=True)
        outputs.append(blend)
        LOG.note(f"{blend} ({blend.stat().st_size / 1e6:.1f} MB): 'Walker' (original, noisy in a muted NLA "
                 f"track, denoised active), 'Poser' (the in-between), 'Completer' (the hypotheses)")

    # ---------------------------------------------------------------- 8. render
    with LOG.step("Render the PNGs"):
        made: list[Any] = []
        try:
            t = time.perf_counter()
            p = out / "samples.png"
            caps = [f"#{i + 1}   {sc:.2f}" + ("   key A" if i == a else "   key B" if i == b else "")
                    for i, sc in enumerate(scores)]
            cells, _, m_ = figures(ext, poser, samples, np.zeros((len(samples), 3)), caps, 0.13)
            made += m_
            keymat = _material("DPoser Key", KEY_COLOR)
            tint([o for o in cells[a] + cells[b] if o.type == 'MESH'], keymat)
            sheet(ext, f"{N_SAMPLES} poses sampled by DPoser (seed {seed}) with their scores (lower = more "
                       "plausible); orange: the two keys of the in-between", cells, str(p), (1280, 800), columns=4)
            R._remove_objects(m_)  # noqa: SLF001
            outputs.append(p)
            LOG.note(f"{p.name}: the {N_SAMPLES} samples with their scores ({time.perf_counter() - t:.1f} s)")

            t = time.perf_counter()
            p = out / "inbetween.png"
            strip = list(range(fa, fb + 1, 3))
            caps = [("A  " if f == fa else "B  " if f == fb else "") + str(f) for f in strip]
            cells, _, m_ = figures(ext, poser, None, R.grid_offsets(len(strip), None, 1.0), caps, 0.12,
                                      frames=strip)
            made += m_
            tint([o for i in (0, len(strip) - 1) for o in cells[i] if o.type == 'MESH'], keymat)
            sheet(ext, f"In-between over {INBETWEEN_FRAMES} frames (ease in/out), every 3rd frame: keys A "
                       f"(frame {fa}) and B (frame {fb}) in orange, DPoser's frames in between", cells, str(p),
                  (1600, 440))
            R._remove_objects(m_)  # noqa: SLF001
            outputs.append(p)
            LOG.note(f"{p.name}: frames {strip} ({time.perf_counter() - t:.1f} s)")

            t = time.perf_counter()
            p = out / "completion.png"
            offs = R.grid_offsets(len(hyp) + 1, None, 0.9)
            offs[0, 0] -= 0.25  # a little gap after the reference
            plain = comp.children[0].active_material
            with legs_coloured(comp, LEG_JOINTS, _material("DPoser Free", FREE_COLOR)):
                caps = ["mocap"] + [f"#{i + 1}   {sc:.2f}" for i, sc in enumerate(hscores)]
                cells, _, m_ = figures(ext, comp, [body[src_frame]] + list(hyp), offs, caps, 0.12)
                made += m_
                tint([o for o in cells[0] if o.type == 'MESH'], plain)  # the reference keeps its own legs' colour
                sheet(ext, f"Completion: the upper body of walk frame {frames[src_frame]:g} (left: the mocap) is "
                           f"kept, the legs (blue) are free; {len(hyp)} hypotheses, best score first",
                      cells, str(p), (1500, 480))
                R._remove_objects(m_)  # noqa: SLF001
            outputs.append(p)
            LOG.note(f"{p.name}: {len(hyp)} hypotheses, best first ({time.perf_counter() - t:.1f} s)")
        finally:
            R._remove_objects(made)  # noqa: SLF001

        t = time.perf_counter()
        p = out / "denoise.png"
        plot_denoise(python, plot_data, str(p))
        outputs.append(p)
        LOG.note(f"{p.name}: joint trajectories, noisy vs denoised vs original ({time.perf_counter() - t:.1f} s)")

    if args.docs:
        docs = Path(args.docs).resolve()
        docs.mkdir(parents=True, exist_ok=True)
        pngs = [str(p) for p in outputs if p.suffix == ".png"]
        proc = subprocess.run([python, "-c", QUANTIZE_SCRIPT, str(docs), *pngs], capture_output=True, text=True,
                              timeout=300)
        if proc.returncode != 0:
            raise SystemExit(f"[demo] writing the docs copies failed: {proc.stderr.strip()[-800:]}")
        print(proc.stdout.rstrip())

    op("backend_stop")
    bpy.ops.preferences.addon_disable(module=PKG)
    total = time.perf_counter() - LOG.t0
    print("\nTimings:")
    for title, dt in LOG.rows:
        print(f"  {dt:6.1f} s  {title}")
    print(f"  {total:6.1f} s  total")
    print("\nOutputs:")
    for p in outputs:
        print(f"  {p}")
    return 0


if __name__ == "__main__":
    try:
        rc = main(sys.argv[1:])
    finally:
        shutil.rmtree(USER_DIR, ignore_errors=True)
    sys.exit(rc)
