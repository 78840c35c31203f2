"""Render the procedural mannequin in given SMPL poses from given cameras (run inside Blender's Python).

    .venv-bpy-5.0/bin/python tools/photo_render_blender.py --poses poses.npz --out DIR
        [--views "0,5;45,10;-80,5;180,5"] [--resolution 480x640]

``poses.npz``: ``poses`` (N,63), ``root_orient`` (N,3) (SMPL native frame). Writes ``DIR/img_<i>_<v>.png``
and ``DIR/renders.npz`` with, per image: ``pose_index``, ``view`` (az, el degrees), ``cam_matrix``
(4,4) Blender camera matrix_world, ``heads`` (22,3) world positions of the SMPL joints (pose-bone
heads), ``focal_px``, ``image_size`` (w, h). Workbench, studio light, the mannequin's clay colour on
the light grey background with a floor (see ``tools.render``).

Part of the photo benchmark (``backend/evaluation/photo_bench.py``); never imported by the backend.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def add_face_and_hair(arm, context) -> list:  # noqa: ANN001
    """Eyes, a mouth and a hair cap skinned to the head bone: the plain mannequin's face (a nose bump
    only) reads as the back of a head to mediapipe, which then swaps left and right in front views."""
    import bpy

    from dposer_blender.blender import mannequin as M
    from dposer_blender.core.pose_convert import smpl_points_to_blender
    from dposer_core.skeleton import smpl_skeleton

    sk = smpl_skeleton()
    hc = sk.rest_joints[sk.names.index("head")] + np.array([0.0, 0.085, 0.012])
    parts = []
    for sx in (1.0, -1.0):
        parts.append(("eyes", M.sphere(hc + np.array([sx * 0.031, 0.012, 0.080]), 0.016, 10, 6), (0.02, 0.02, 0.025, 1.0)))
        parts.append(("eyes", M.capsule(hc + np.array([sx * 0.012, 0.042, 0.088]), hc + np.array([sx * 0.05, 0.044, 0.078]),
                                        (0.006, 0.004), (0.005, 0.003), np.array([0.0, 1.0, 0.0]), 0.7, n_around=8,
                                        n_along=6), (0.05, 0.03, 0.02, 1.0)))
    parts.append(("mouth", M.capsule(hc + np.array([-0.022, -0.05, 0.079]), hc + np.array([0.022, -0.05, 0.079]),
                                     (0.007, 0.006), (0.007, 0.006), np.array([0.0, 1.0, 0.0]), 0.6, n_around=8,
                                     n_along=6), (0.35, 0.06, 0.06, 1.0)))
    hv, hf = M.sphere(hc + np.array([0.0, 0.012, -0.004]), 0.094, 24, 16)
    rel = hv - hc
    keep_v = (rel[:, 2] < 0.02) | (rel[:, 1] > 0.065)
    hf = [f for f in hf if all(keep_v[i] for i in f)]
    parts.append(("hair", (hv, hf), (0.06, 0.035, 0.02, 1.0)))
    objs = []
    for name, (v, f), col in parts:
        obj = M.link_mesh_object(arm, f"photo_{name}", smpl_points_to_blender(v), f,
                                  {"head": (np.arange(len(v)), np.ones(len(v)))}, context)
        mat = bpy.data.materials.get(f"photo_{name}") or bpy.data.materials.new(f"photo_{name}")
        mat.diffuse_color = col
        obj.data.materials.clear()
        obj.data.materials.append(mat)
        objs.append(obj)
    return objs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--poses", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--views", default="0,5;45,10;-80,5;180,5")
    p.add_argument("--resolution", default="480x640")
    args = p.parse_args(argv)
    import bpy

    from dposer_blender.blender.armature import create_smpl_armature
    from dposer_blender.blender.rig import SMPLRig, apply_smpl_pose
    from tools import render as R

    data = np.load(args.poses)
    poses, roots = data["poses"].astype(np.float64), data["root_orient"].astype(np.float64)
    views = [tuple(float(v) for v in s.split(",")) for s in args.views.split(";")]
    w, h = (int(v) for v in args.resolution.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    arm = create_smpl_armature(bpy.context, name="SMPL", mannequin=True)
    rig = SMPLRig.from_armature(arm)
    add_face_and_hair(arm, bpy.context)
    body = R.body_objects(arm)
    R.setup_scene(scene, (w, h))
    cam = None
    floor = None
    rec: dict[str, list] = {k: [] for k in ("pose_index", "view", "cam_matrix", "heads", "focal_px", "image_size", "files")}
    for i in range(len(poses)):
        apply_smpl_pose(arm, poses[i].reshape(21, 3), roots[i], rig=rig)
        bpy.context.view_layer.update()
        dg = bpy.context.evaluated_depsgraph_get()
        pts = R.world_points(body, dg)
        mw = np.array(arm.matrix_world)
        heads = np.array([mw[:3, :3] @ np.array(arm.pose.bones[rig.bone_names[j]].head) + mw[:3, 3] for j in range(22)])
        if floor is not None:
            bpy.data.objects.remove(floor, do_unlink=True)
        floor = R.add_floor(scene, pts, z=float(min(0.0, pts[:, 2].min())))
        for v, (az, el) in enumerate(views):
            cam = R.frame_camera(scene, pts, (az, el), lens=50.0, margin=0.08, camera=cam)
            f = out / f"img_{i:03d}_{v}.png"
            R.render_png(scene, str(f))
            rec["pose_index"].append(i)
            rec["view"].append((az, el))
            rec["cam_matrix"].append(np.array(cam.matrix_world))
            rec["heads"].append(heads)
            rec["focal_px"].append(cam.data.lens / cam.data.sensor_width * max(w, h))
            rec["image_size"].append((w, h))
            rec["files"].append(f.name)
        print(f"[render] pose {i + 1}/{len(poses)}", flush=True)
    np.savez(out / "renders.npz", **{k: np.array(v) for k, v in rec.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else None))
