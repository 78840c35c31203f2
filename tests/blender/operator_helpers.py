"""Helpers of the Blender tests: the backend Python, a fresh SMPL armature, random motions, F-curve dumps."""

from __future__ import annotations

import os
from pathlib import Path

import bpy
import numpy as np

from dposer_blender.blender import actions, armature, fcurves
from dposer_blender.dposer_core import rotations_np as rot

REPO = Path(__file__).resolve().parents[2]


def backend_python() -> str:
    """The Python with torch that runs the backend (``$DPOSER_PYTHON`` or ``.venv/bin/python``)."""
    return os.environ.get("DPOSER_PYTHON") or str(REPO / ".venv" / "bin" / "python")


def smpl(mannequin: bool = False) -> bpy.types.Object:
    obj = armature.create_smpl_armature(mannequin=mannequin)
    bpy.context.view_layer.objects.active = obj
    return obj


def random_motion(T: int, seed: int = 0, scale: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    body = rng.normal(0, scale, (T, 63))
    root = rng.normal(0, 0.2, (T, 3))
    trans = rng.normal(0, 0.1, (T, 3))
    return body, root, trans


def fcurve_dump(obj: bpy.types.Object, action: bpy.types.Action) -> dict:
    """(data_path, index) -> (frames f32, values f32, types int) for every F-curve."""
    out = {}
    for fc in fcurves.action_fcurves(action, obj):
        n = len(fc.keyframe_points)
        co = np.empty(2 * n, dtype=np.float32)
        ty = np.empty(n, dtype=np.int32)
        fc.keyframe_points.foreach_get("co", co)
        fc.keyframe_points.foreach_get("type", ty)
        out[(fc.data_path, fc.array_index)] = (co[0::2].copy(), co[1::2].copy(), ty)
    return out


def assert_same_rotations(a: np.ndarray, b: np.ndarray, atol: float = 1e-4) -> None:
    """Axis-angle arrays describe the same rotations (the tiny test prior gives angles beyond pi)."""
    np.testing.assert_allclose(rot.axis_angle_to_matrix(np.reshape(a, (-1, 3))),
                               rot.axis_angle_to_matrix(np.reshape(b, (-1, 3))), atol=atol)


def run(op, **kw):
    """Call ``bpy.ops.dposer.<op>``; returns the result set (raises RuntimeError with the report on errors)."""
    return getattr(bpy.ops.dposer, op)(**kw)


def operator_ids() -> list[str]:
    return sorted(n for n in dir(bpy.ops.dposer) if not n.startswith("_"))


def keyed_pair(obj, a: int = 1, b: int = 11, seed: int = 0):
    body, root, trans = random_motion(2, seed)
    for f, i in ((a, 0), (b, 1)):
        actions.key_smpl_pose(obj, f, body[i], root[i], trans[i])
    return obj.animation_data.action


def select_bone(obj, name: str, state: bool = True) -> None:
    pb = obj.pose.bones[name]
    if hasattr(pb, "select"):
        pb.select = state
    else:
        obj.data.bones[name].select = state
