"""The photo benchmark's test material: held-out poses, their Blender renders and each render's ground truth
in the OpenCV camera frame (steps 1-2 of :mod:`backend.evaluation.photo_bench`)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from backend import ROOT
from backend.data.build import DEFAULT_MOCAP
from dposer_core.kinematics_np import kabsch
from dposer_core.skeleton import smpl_skeleton

__all__ = ["DEFAULT_VIEWS", "heldout_poses", "gaussian_train_poses", "remove_heading", "cmu_clip_names", "cmu_split",
           "render", "camera_truth"]

BPY_PYTHON = ROOT / ".venv-bpy-5.0" / "bin" / "python"
RENDER_SCRIPT = ROOT / "tools" / "photo_render_blender.py"
DEFAULT_VIEWS = "0,5;45,10;-80,5;180,5"
BLENDER_CAM_TO_CV = np.diag([1.0, -1.0, -1.0])


# ---------------------------------------------------------------------------------------- poses

def _unpack_cmu(work: Path) -> Path:
    root = work / "mocap" / "cmu-daz"
    if not (root / ".unpacked").exists():
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(DEFAULT_MOCAP / "cmu-daz.tar.xz") as tf:
            tf.extractall(root.parent, filter="data")
        (root / ".unpacked").write_text("ok")
    return root


def cmu_clip_names(root: Path) -> list[tuple[str, Path]]:
    """(dataset clip name, file) of the CMU DAZ clips, named as ``backend.data.build`` names them."""
    out = []
    for f in sorted(root.rglob("*.bvh")):
        rel = f.relative_to(root).as_posix()
        if rel == "acrnn/standard.bvh":
            continue
        out.append((f"cmu-daz/{rel[:-4]}", f))
    return out


def cmu_split(names: list[str], n_val: int = 5) -> dict[str, str]:
    """The split the shipped weights' build used for CMU DAZ (96 train / 5 val): the ``n_val`` clips
    with the lowest hash of "<source>/<name>" are val (checked against the checkpoint's frame count)."""
    from backend.data.dataset import clip_hash

    ranked = sorted(names, key=lambda n: (clip_hash(f"cmu-daz/{n}"), n))
    return {n: ("val" if i < n_val else "train") for i, n in enumerate(ranked)}


def _retarget(f: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    from backend.data.bvh import read_bvh
    from backend.data.retarget import retarget_bvh

    m = read_bvh(f)
    if "acrnn/salsa/" in name:
        m.frame_time = 1.0 / 60.0
    sm = retarget_bvh(m, fps=30.0, name=name)
    return sm.body_pose.astype(np.float32), sm.root_orient.astype(np.float32)


def remove_heading(root_orient: np.ndarray) -> np.ndarray:
    """(N,3) root orientations with the heading (rotation about +Y, SMPL frame) removed: the body's
    forward axis points to +Z seen from above, tilts are kept."""
    R = Rotation.from_rotvec(np.asarray(root_orient, np.float64))
    fwd = R.apply(np.array([0.0, 0.0, 1.0]))
    yaw = np.arctan2(fwd[:, 0], fwd[:, 2])
    return (Rotation.from_rotvec(np.outer(-yaw, [0.0, 1.0, 0.0])) * R).as_rotvec().astype(np.float32)


def _matching_dataset(weights_build: str | None):  # noqa: ANN202
    """The prepared dataset when it is the very build the weights were trained on (same split), else None."""
    try:
        from backend.data.dataset import load_dataset

        ds = load_dataset()
    except Exception:  # noqa: BLE001
        return None
    meta = getattr(ds, "meta", None) or {}
    return ds if weights_build and meta.get("hash") == weights_build else None


def _cmu_clips(work: Path, split_name: str, every: int, offset: int = 0) -> tuple[list, list]:
    cache = work / f"cmu_{split_name}_{every}_{offset}.npz"
    if cache.exists():
        d = np.load(cache, allow_pickle=False)
        return list(zip(d["poses"], d["root_orient"])), [str(n) for n in d["names"]]
    root = _unpack_cmu(work)
    clips = cmu_clip_names(root)
    split = cmu_split([c for c, _ in clips])
    P, R, names = [], [], []
    for name, f in clips:
        if split[name] == split_name:
            bp, ro = _retarget(f, name)
            P.append(bp[offset::every])
            R.append(ro[offset::every])
            names.append(name)
    P, R = np.concatenate(P), np.concatenate(R)
    np.savez(cache, poses=P, root_orient=R, names=np.array(names))
    return list(zip(P, R)), names


def heldout_poses(n: int, work: Path, seed: int = 0, every: int = 15, offset: int = 0,
                  weights_build: str | None = None) -> dict:
    """``n`` poses the weights never saw: dict(poses (n,63), root_orient (n,3) heading removed, source, clips).

    The prepared dataset's val split is used only when it is the weights' own build (``weights_build``,
    the hash in the checkpoint provenance); a newer build may split differently, so otherwise the CMU DAZ
    clips that the weights' build held out are read from the archive.
    """
    rng = np.random.default_rng(seed)
    ds = _matching_dataset(weights_build)
    if ds is not None:
        mask = np.zeros(len(ds.poses), bool)
        for c in range(len(ds.clip_names)):
            if ds.clip_split[c] == "val":
                s, e = int(ds.clip_starts[c]), int(ds.clip_starts[c + 1])
                mask[s + offset:e:every] = True
        idx = np.nonzero(mask)[0]
        pick = np.sort(rng.choice(idx, size=min(n, len(idx)), replace=False))
        return {"poses": ds.poses[pick], "root_orient": remove_heading(ds.root_orient[pick]),
                "source": "prepared dataset (the weights' build), val split",
                "clips": sorted({str(ds.clip_names[c]) for c in range(len(ds.clip_names)) if ds.clip_split[c] == "val"})}
    rows, names = _cmu_clips(work, "val", every, offset)
    P = np.stack([r[0] for r in rows])
    R = np.stack([r[1] for r in rows])
    pick = np.sort(rng.choice(len(P), size=min(n, len(P)), replace=False))
    return {"poses": P[pick], "root_orient": remove_heading(R[pick]),
            "source": "CMU DAZ clips held out by the shipped weights' build (retargeted)", "clips": names}


def gaussian_train_poses(work: Path, every: int = 4, weights_build: str | None = None) -> tuple[np.ndarray, str]:
    """Training poses for the Gaussian baseline: the weights' own build's train split when it is the
    prepared dataset, else the CMU DAZ train clips of that build (every 4th frame)."""
    ds = _matching_dataset(weights_build)
    if ds is not None:
        return ds.train_poses(), "prepared dataset (the weights' build), train split"
    rows, _ = _cmu_clips(work, "train", every)
    return np.stack([r[0] for r in rows]), "CMU DAZ train clips of the weights' build (every 4th frame at 30 fps)"


# ---------------------------------------------------------------------------------------- renders

def render(poses: np.ndarray, roots: np.ndarray, out: Path, views: str = DEFAULT_VIEWS,
           resolution: str = "480x640") -> dict:
    """Render with Blender (bpy 5.0 venv); returns the arrays of ``renders.npz`` (cached by content)."""
    out.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha1(np.ascontiguousarray(poses, np.float32).tobytes())
    h.update(np.ascontiguousarray(roots, np.float32).tobytes())
    h.update(f"{views}|{resolution}".encode())
    key = h.hexdigest()
    marker = out / "renders.key"
    if not (marker.exists() and marker.read_text() == key and (out / "renders.npz").exists()):
        np.savez(out / "poses.npz", poses=poses, root_orient=roots)
        py = os.environ.get("DPOSER_BPY_PYTHON", str(BPY_PYTHON))
        subprocess.run([py, str(RENDER_SCRIPT), "--poses",
                        str(out / "poses.npz"), "--out", str(out), "--views", views, "--resolution", resolution],
                       check=True, stdout=subprocess.DEVNULL)
        marker.write_text(key)
    r = np.load(out / "renders.npz")
    return {k: r[k] for k in r.files}


def camera_truth(rec: dict, k: int, pose: np.ndarray) -> dict:
    """Ground truth of render ``k`` in the OpenCV camera frame: R_cam_body (3,3), keypoints (K,3) camera
    frame, keypoints 2D (K,2) pixels, joints (22,3) camera frame."""
    from backend.photo.body import KeypointBody

    body = KeypointBody(smpl_skeleton(), torch.device("cpu"))
    with torch.no_grad():
        kp, J = body(torch.as_tensor(pose[None], dtype=torch.float32))
    kp, J = kp[0].double().numpy(), J[0].double().numpy()
    heads = rec["heads"][k]
    # body frame -> Blender world: rigid (Kabsch on the 22 joints; exact up to float error)
    mu_j, mu_h = J.mean(0), heads.mean(0)
    Rw = kabsch(J - mu_j, heads - mu_h)
    tw = mu_h - Rw @ mu_j
    fit_err = float(np.abs(J @ Rw.T + tw - heads).max())
    M = rec["cam_matrix"][k]
    Rc = BLENDER_CAM_TO_CV @ M[:3, :3].T
    tc = -Rc @ M[:3, 3]
    R_cb = Rc @ Rw
    t_cb = Rc @ tw + tc
    kp_c = kp @ R_cb.T + t_cb
    J_c = J @ R_cb.T + t_cb
    w, h = rec["image_size"][k]
    f = float(rec["focal_px"][k])
    uv = f * kp_c[:, :2] / kp_c[:, 2:] + np.array([w / 2, h / 2])
    return {"R_cam_body": R_cb, "keypoints_cam": kp_c, "keypoints_2d": uv, "joints_cam": J_c, "fk_error_m": fit_err,
            "focal": f, "image_size": (int(w), int(h))}

