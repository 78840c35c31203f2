"""Image file -> ranked SMPL pose hypotheses: the one entry point of the CLI (``fit-image``) and of the
server's ``fit_image`` request.

    fit_image(prior, path, n_hypotheses=4, seed=None, smpl_model=None, focal_px=None, progress=None,
              should_cancel=None) -> dict of numpy arrays (see :func:`result_dict`)

``n_hypotheses`` is bounded by the protocol (``fit_image`` request), which the CLI and the server check.

Errors (each ``str()`` is one line): ``ImageError`` (missing / unreadable / not PNG-JPEG-WebP-BMP /
undecodable file) and ``NoPerson`` (nobody detected), both ``BadInput``; ``PhotoUnavailable`` (no mediapipe:
the install hint); ``TaskCancelled``.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

from dposer_core.protocol.errors import BadInput, TaskCancelled

from .fit import FitConfig, FitResult, fit_keypoints
from .image_io import ImageError, check_image_file, read_image_rgb
from .keypoints import KEYPOINT_NAMES, PhotoUnavailable, detect_keypoints, photo_available


class NoPerson(BadInput):
    """mediapipe found no person in the image."""


def photo_features() -> dict:
    """The ``features`` entry of the server's hello: {"fit_image": {"available": bool, "message": str}}."""
    ok, msg = photo_available()
    return {"fit_image": {"available": ok, "message": msg}}


def result_dict(res: FitResult, detect_seconds: float = 0.0) -> dict:
    """The result as plain numpy / Python values (what the CLI saves and the server sends).

    poses (H,63) best first; root_orient (H,3) SMPL world frame, camera on +Z looking at -Z (a body
    facing the camera gets ~identity); root_orient_cam (H,3) and cam_t (H,3) in the OpenCV camera frame
    (x right, y down, z forward) of a pinhole camera with focal ``focal_px`` and the principal point at
    the image centre; scores (H,) ranking value (lower = better) = data_loss + w * prior_score;
    projected (H,K,2) fitted keypoints in pixels; keypoints (K,3) the detections used (x px, y px,
    confidence) in the order of keypoint_names; labels_swapped (H,) 1 where the hypothesis reads the
    detector's left/right labels swapped; init (H names); image_size (w, h); seconds.
    """
    return {"poses": res.poses, "root_orient": res.root_orient, "root_orient_cam": res.root_orient_cam,
            "cam_t": res.cam_t, "scores": res.scores, "data_loss": res.data_loss, "prior_score": res.prior_score,
            "projected": res.projected, "keypoints": res.keypoints, "keypoint_names": list(KEYPOINT_NAMES),
            "labels_swapped": res.labels_swapped.astype(np.float32), "init": list(res.init),
            "focal_px": float(res.focal), "image_size": [int(res.image_size[0]), int(res.image_size[1])],
            "seconds": float(res.seconds + detect_seconds), "detect_seconds": float(detect_seconds)}


def _skeleton_for(smpl_model: str | os.PathLike | None):  # noqa: ANN202
    if smpl_model is None:
        return None
    from backend.engine.body_model import load_body_model

    try:
        return load_body_model(smpl_model).skeleton
    except (ValueError, OSError) as exc:
        raise ImageError(f"SMPL model file {str(smpl_model)!r} cannot be used: {' '.join(str(exc).split())[:300]}") from None


def fit_image(prior, path: str | os.PathLike, n_hypotheses: int = 4, seed: int | None = None,  # noqa: ANN001
              smpl_model: str | os.PathLike | None = None, focal_px: float | None = None,
              config: FitConfig | None = None, progress: Callable[[float, str], None] | None = None,
              should_cancel: Callable[[], bool] | None = None) -> dict:
    """Detect the person in the image at ``path`` and fit ``n_hypotheses`` ranked SMPL poses (``seed`` None:
    random starts)."""
    check_image_file(path)
    ok, msg = photo_available()
    if not ok:
        raise PhotoUnavailable(msg)
    skeleton = _skeleton_for(smpl_model)
    if progress is not None:
        progress(0.0, "detecting the person")
    img = read_image_rgb(path)
    t0 = time.perf_counter()
    try:
        kp = detect_keypoints(img)
    except PhotoUnavailable:
        raise
    except ValueError as exc:
        raise NoPerson(f"{path}: {exc}") from None
    det = time.perf_counter() - t0
    if should_cancel is not None and should_cancel():
        raise TaskCancelled("photo fit cancelled")
    cfg = config or FitConfig()
    if focal_px is not None:
        cfg = FitConfig(**{**cfg.__dict__, "focal": float(focal_px)})
    res = fit_keypoints(prior, kp, int(n_hypotheses), cfg, skeleton=skeleton, seed=seed,
                        progress=None if progress is None else (lambda f, m: progress(0.1 + 0.9 * f, m)),
                        should_cancel=should_cancel)
    out = result_dict(res, det)
    out["landmarks"] = kp.landmarks.astype(np.float32) if kp.landmarks is not None else None
    return out


__all__ = ["fit_image", "photo_features", "result_dict", "NoPerson", "ImageError",
           "PhotoUnavailable", "check_image_file"]
