"""AMASS ``.npz`` reader (numpy + scipy only; no torch, no bpy).

Accepts SMPL-H (``poses`` (N,156)) and SMPL-X (``poses`` (N,165)) files with ``trans`` (N,3),
``betas`` (16,) or (10,), ``gender`` (str or bytes, possibly a 0-d array) and ``mocap_framerate``
or ``mocap_frame_rate`` (possibly non-integer).

AMASS is Z-up; the result is in the SMPL native frame (+Y up, face +Z): the global orientation is
pre-multiplied by the constant rotation ``R_zup_to_yup`` (-90 deg about X) and the translation is
rotated so the whole body moves rigidly. Because SMPL rotates about the pelvis joint (not the
origin), the translation fix needs the rest pelvis position ``J0``:
``trans' = R (trans + J0) - J0`` keeps every joint in place (up to ``R``). The body pose is
parent-relative and needs no change. Everything is resampled to 30 fps (slerp for rotations,
linear for translation).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from scipy.spatial.transform import Rotation

from dposer_core.skeleton import smpl_skeleton

from .resample import resample_linear, resample_rotations

__all__ = ["AmassMotion", "read_amass", "R_ZUP_TO_YUP", "zup_to_yup"]

# v_yup = R @ v_zup: Z (up) -> Y, Y (AMASS forward/back axis) -> -Z.  (-90 deg about +X.)
R_ZUP_TO_YUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclass
class AmassMotion:
    """An AMASS sequence in the SMPL native frame.

    Attributes:
        body_pose: (T,63) float32 axis-angle of SMPL joints 1..21.
        root_orient: (T,3) float32 global orientation, Y-up.
        trans: (T,3) float32 translation in metres, Y-up.
        betas: (B,) float32 shape coefficients (B = 10 or 16).
        gender: 'male' | 'female' | 'neutral' (as stored).
        fps: output frame rate (30 unless ``fps=None`` was asked).
        source_fps: the file's mocap frame rate.
        model: 'smplh' or 'smplx'.
    """

    body_pose: np.ndarray
    root_orient: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    gender: str
    fps: float
    source_fps: float
    model: str

    @property
    def num_frames(self) -> int:
        return int(self.body_pose.shape[0])


def _as_str(x: object) -> str:
    if isinstance(x, np.ndarray):
        x = x.item() if x.ndim == 0 or x.size == 1 else x.tolist()
    if isinstance(x, (bytes, np.bytes_)):
        return bytes(x).decode("utf-8", errors="replace").strip()
    return str(x).strip()


def zup_to_yup(root_orient: np.ndarray, trans: np.ndarray,
               pelvis_rest: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rotate a Z-up SMPL root (orientation (T,3) axis-angle, translation (T,3)) into Y-up.

    Args:
        pelvis_rest: (3,) rest pelvis position J0 of the body (default: the built-in neutral skeleton).

    Returns:
        (root_orient (T,3), trans (T,3)) in the SMPL native frame.
    """
    if pelvis_rest is None:
        pelvis_rest = smpl_skeleton().rest_joints[0]
    R = R_ZUP_TO_YUP
    ro = Rotation.from_matrix(R) * Rotation.from_rotvec(np.asarray(root_orient, dtype=np.float64).reshape(-1, 3))
    j0 = np.asarray(pelvis_rest, dtype=np.float64)
    tr = (np.asarray(trans, dtype=np.float64).reshape(-1, 3) + j0) @ R.T - j0
    return ro.as_rotvec(), tr


def _open_npz(path: str | os.PathLike | BinaryIO) -> "np.lib.npyio.NpzFile":
    """``np.load`` of an ``.npz`` with our own one-line errors (numpy's suggest ``allow_pickle=``,
    which would run code from an untrusted file)."""
    src = path if hasattr(path, "read") else Path(path)
    shown = "the data" if hasattr(path, "read") else str(path)
    try:
        z = np.load(src, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"{shown}: file not found") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise ValueError(f"{shown}: not an AMASS .npz file (not a numpy .npz archive of plain arrays); "
                         "choose an AMASS motion file such as 'B1_-_stand_to_walk_poses.npz'") from None
    if not hasattr(z, "files"):
        raise ValueError(f"{shown}: not an AMASS .npz file (a single .npy array, not an .npz archive)")
    return z


def read_amass(path: str | os.PathLike | BinaryIO, fps: float | None = 30.0,
               pelvis_rest: np.ndarray | None = None) -> AmassMotion:
    """Read an AMASS SMPL-H / SMPL-X ``.npz``.

    Args:
        path: the file (or an open binary file object).
        fps: resample to this rate (None keeps the file's rate).
        pelvis_rest: (3,) rest pelvis J0 used for the Z-up -> Y-up translation fix (default: the
            built-in neutral skeleton; pass the shaped body's J0 for exactness).

    Returns:
        :class:`AmassMotion` in the SMPL native frame.

    Raises:
        ValueError: on a file without ``poses`` or with an unknown pose width.
    """
    shown = "the data" if hasattr(path, "read") else str(path)
    with _open_npz(path) as z:
        try:
            keys = set(z.files)
            if "poses" not in keys:
                names = ", ".join(sorted(keys)[:10])
                raise ValueError(f"{shown}: not an AMASS motion file (no 'poses' array; it holds {names})")
            poses = np.asarray(z["poses"], dtype=np.float64)
            if poses.ndim != 2 or poses.shape[1] not in (156, 165):
                raise ValueError(f"{shown}: poses must be (N,156) SMPL-H or (N,165) SMPL-X, got {poses.shape}")
            model = "smplh" if poses.shape[1] == 156 else "smplx"
            T = poses.shape[0]
            trans = np.asarray(z["trans"], dtype=np.float64).reshape(T, 3) if "trans" in keys else np.zeros((T, 3))
            betas = (np.asarray(z["betas"], dtype=np.float32).reshape(-1) if "betas" in keys
                     else np.zeros(10, np.float32))
            gender = _as_str(z["gender"]) if "gender" in keys else "neutral"
            if "mocap_framerate" in keys:
                src_fps = float(np.asarray(z["mocap_framerate"]).reshape(-1)[0])
            elif "mocap_frame_rate" in keys:
                src_fps = float(np.asarray(z["mocap_frame_rate"]).reshape(-1)[0])
            else:
                raise ValueError(f"{shown}: no mocap_framerate / mocap_frame_rate")
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            if str(e).startswith(shown):
                raise
            # e.g. an object array (numpy would suggest allow_pickle=True, which runs code from the file)
            raise ValueError(f"{shown}: an array in this .npz cannot be read as plain numbers; "
                             "is it an AMASS motion file?") from None
    bad = ~np.isfinite(poses).all(1) | ~np.isfinite(trans).all(1)
    if bad.any():
        raise ValueError(f"{shown}: frame {int(np.argmax(bad))} holds NaN or infinite values "
                         f"({int(bad.sum())} such frame(s)); fix or cut those frames")
    if not np.isfinite(src_fps) or src_fps <= 0:
        raise ValueError(f"{shown}: the frame rate {src_fps} is not a positive number")
    root = poses[:, 0:3]
    body = poses[:, 3:66]
    root, trans = zup_to_yup(root, trans, pelvis_rest)

    out_fps = src_fps
    if fps is not None and T > 0 and src_fps > 0:
        aa = np.concatenate([root[:, None], body.reshape(T, 21, 3)], axis=1)  # (T,22,3)
        q = Rotation.from_rotvec(aa.reshape(-1, 3)).as_quat().reshape(T, 22, 4)
        q2, pos = resample_rotations(q, src_fps, fps)
        aa2 = Rotation.from_quat(q2.reshape(-1, 4)).as_rotvec().reshape(-1, 22, 3)
        root, body = aa2[:, 0], aa2[:, 1:].reshape(-1, 63)
        trans = resample_linear(trans, pos)
        out_fps = float(fps)
    return AmassMotion(body_pose=body.astype(np.float32), root_orient=root.astype(np.float32),
                       trans=trans.astype(np.float32), betas=betas, gender=gender, fps=float(out_fps),
                       source_fps=src_fps, model=model)
