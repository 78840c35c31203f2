"""Input loading for the command line and the evaluation: our ``.npz`` files, AMASS ``.npz`` files and
BVH files of a known skeleton family (retargeted onto SMPL by ``backend.data``).

Everything returned is numpy, float32, SMPL native frame (+Y up):

    poses        (T,63) parent-relative axis-angle of SMPL joints 1..21, or None
    root_orient  (T,3)  global orientation of the pelvis, or None
    trans        (T,3)  pelvis translation, or None
    joints       (T,22,3) joint positions (only from our own .npz files), or None
    latents      (T,63) ODE latents (only from our own .npz files), or None

All failures raise ``InputError`` (a ``ValueError``) with a one-line message naming the file.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dposer_core import protocol as S
from dposer_core.constants import POSE_DIM


class InputError(ValueError):
    """An input file is missing, unreadable or holds arrays of the wrong shape (one-line message)."""


@dataclass
class MotionInput:
    """What an input file holds (see the module docstring for the shapes)."""

    path: str
    kind: str  # "npz" | "amass" | "bvh"
    poses: np.ndarray | None = None
    root_orient: np.ndarray | None = None
    trans: np.ndarray | None = None
    joints: np.ndarray | None = None
    latents: np.ndarray | None = None
    fps: float | None = None

    @property
    def num_frames(self) -> int:
        for a in (self.poses, self.joints, self.latents):
            if a is not None:
                return int(a.shape[0])
        return 0


def _f32(a: np.ndarray, name: str, path: str) -> np.ndarray:
    try:
        a = np.asarray(a, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InputError(f"{path}: array '{name}' is not numeric ({e})") from None
    if not np.all(np.isfinite(a)):
        raise InputError(f"{path}: array '{name}' contains NaN or infinite values")
    return a


def _in_range(a: np.ndarray, name: str, path: str, kind: str) -> np.ndarray:
    """``kind`` "rotation": every axis-angle triple's norm <= 4 pi; "position": |x| <= 10 km (metres)."""
    if not a.size:
        return a
    if kind == "rotation":
        n = np.linalg.norm(a.reshape(-1, 3).astype(np.float64), axis=1)
        if float(n.max()) > S.MAX_ROTATION_RAD:
            k = int(np.argmax(n))
            per = max(a.shape[-1] // 3, 1)
            raise InputError(f"{path}: '{name}' holds an axis-angle rotation of {n[k]:.4g} rad (row {k // per}, "
                             f"joint {k % per}); rotations must be at most 4 pi = {S.MAX_ROTATION_RAD:.2f} rad "
                             "(axis-angle in radians, not degrees)")
    elif float(np.abs(a).max()) > S.MAX_POSITION_M:
        k = int(np.argmax(np.abs(a).reshape(a.shape[0], -1).max(1)))
        raise InputError(f"{path}: '{name}' holds coordinates beyond {S.MAX_POSITION_M:,.0f} (row {k}); positions "
                         "must be in metres")
    return a


def _as_2d(a: np.ndarray, width: int, name: str, path: str) -> np.ndarray:
    if a.ndim == 1 and a.shape[0] == width:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != width:
        raise InputError(f"{path}: '{name}' must have shape (N,{width}), got {tuple(a.shape)}")
    return a


def _is_amass(z: dict) -> bool:
    p = z.get("poses")
    return p is not None and p.ndim == 2 and p.shape[1] in (72, 156, 165) and (
        "mocap_framerate" in z or "mocap_frame_rate" in z or "trans" in z or "betas" in z)


def load_npz(path: str | Path) -> MotionInput:
    """Reads one of our ``.npz`` files (``poses``/``root_orient``/``trans``/``joints``/``latents``)
    or an AMASS ``.npz`` (detected by a (N,156|165|72) ``poses`` array); see the module docstring."""
    path = str(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            z = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        why = "not a zip archive" if isinstance(e, (zipfile.BadZipFile, ValueError)) else _one_line(e)
        raise InputError(f"{path}: not a readable .npz file ({why})") from None
    if _is_amass(z):
        return load_amass(path)
    out = MotionInput(path=path, kind="npz")
    if "poses" in z:
        out.poses = _in_range(_as_2d(_f32(z["poses"], "poses", path), POSE_DIM, "poses", path), "poses", path,
                              "rotation")
    if "joints" in z:
        j = _f32(z["joints"], "joints", path)
        if j.ndim == 2 and j.shape == (22, 3):
            j = j[None]
        if j.ndim != 3 or j.shape[1:] != (22, 3):
            raise InputError(f"{path}: 'joints' must have shape (T,22,3), got {tuple(j.shape)}")
        out.joints = _in_range(j, "joints", path, "position")
    if "latents" in z:
        out.latents = _as_2d(_f32(z["latents"], "latents", path), POSE_DIM, "latents", path)
    n = out.num_frames
    for key in ("root_orient", "trans"):
        if key in z:
            a = _in_range(_as_2d(_f32(z[key], key, path), 3, key, path), key, path,
                          "rotation" if key == "root_orient" else "position")
            if n and a.shape[0] != n:
                raise InputError(f"{path}: '{key}' has {a.shape[0]} rows but the file has {n} frames")
            setattr(out, key, a)
    if "fps" in z:
        out.fps = float(np.asarray(z["fps"]).reshape(-1)[0])
    if out.poses is None and out.joints is None and out.latents is None:
        raise InputError(f"{path}: no 'poses', 'joints' or 'latents' array (found: {', '.join(sorted(z)) or 'nothing'})")
    return out


def load_amass(path: str | Path) -> MotionInput:
    """An AMASS ``.npz`` via ``backend.data.amass.read_amass`` (Z-up converted to Y-up)."""
    path = str(path)
    try:
        from backend.data.amass import read_amass
    except ImportError as e:  # pragma: no cover - data package missing
        raise InputError(f"{path}: AMASS reader unavailable ({e})") from None
    try:
        m = read_amass(path)
    except Exception as e:  # noqa: BLE001 - readers raise various errors; report one line
        raise InputError(f"{path}: cannot read AMASS file ({_one_line(e)})") from None
    return MotionInput(path=path, kind="amass", poses=_f32(m.body_pose, "poses", path),
                       root_orient=_f32(m.root_orient, "root_orient", path),
                       trans=_f32(m.trans, "trans", path), fps=float(m.fps))


def load_bvh(path: str | Path, family: str | None = None, fps: float = 30.0) -> MotionInput:
    """A BVH of a known skeleton family, retargeted onto SMPL at ``fps`` (``backend.data``)."""
    path = str(path)
    if not Path(path).is_file():
        raise InputError(f"{path}: file not found")
    try:
        from backend.data.bvh import read_bvh
        from backend.data.retarget import retarget_bvh
    except ImportError as e:  # pragma: no cover
        raise InputError(f"{path}: BVH reader unavailable ({e})") from None
    try:
        m = retarget_bvh(read_bvh(path), family=family, fps=fps)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{path}: cannot read/retarget BVH ({_one_line(e)})") from None
    return MotionInput(path=path, kind="bvh", poses=_f32(m.body_pose, "poses", path),
                       root_orient=_f32(m.root_orient, "root_orient", path),
                       trans=_f32(m.trans, "trans", path), fps=float(m.fps))


def load_input(path: str | Path) -> MotionInput:
    """Dispatches on the extension: ``.npz`` (ours or AMASS) or ``.bvh``."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return load_npz(p)
    if suffix == ".bvh":
        return load_bvh(p)
    if not p.exists():
        raise InputError(f"{path}: file not found")
    raise InputError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .npz or .bvh")


def resample(a: np.ndarray, fps_in: float, fps_out: float = 30.0) -> np.ndarray:
    """Nearest-frame resampling of a (T,...) array from ``fps_in`` to ``fps_out`` (no-op if equal)."""
    if fps_in is None or abs(fps_in - fps_out) < 1e-6 or len(a) == 0:
        return a
    n = max(1, int(np.floor((len(a) - 1) * fps_out / fps_in)) + 1)
    idx = np.minimum(np.round(np.arange(n) * fps_in / fps_out).astype(np.int64), len(a) - 1)
    return a[idx]


def save_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """Writes the arrays (floats as float32) to ``path`` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, v in arrays.items():
        if v is None:
            continue
        v = np.asarray(v)
        out[k] = v.astype(np.float32) if v.dtype.kind == "f" else v
    np.savez(path, **out)
    return path


def _one_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__
