"""One handler per queued request type: request fields -> task call -> result values (encoded by the caller
through the request's typed result class).

Each handler calls its task by name on the tasks module the server was given (``backend.tasks``; tests
give a stub), so the link from a request type to its task is one line here. Control requests (hello,
ping, cancel, shutdown) are answered by the dispatcher, not here.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from dposer_core import protocol as S

from .transport import one_line, read_regular

if TYPE_CHECKING:
    from .dispatch import Server

log = logging.getLogger("dposer.server")

PROGRESS_INTERVAL_S = 0.05
"""At most ~20 progress lines per second per request."""


@dataclass
class TaskContext:
    """Handed to each queued handler: the server, progress reporting and cancellation."""

    server: "Server"
    request: S.Request
    cancel_event: threading.Event
    _last_progress: float = 0.0

    def should_cancel(self) -> bool:
        """True once this request was cancelled or the server is stopping."""
        return self.cancel_event.is_set() or self.server.stopping.is_set()

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (throttled); raises ``S.TaskCancelled`` when the request was cancelled."""
        if self.should_cancel():
            raise S.TaskCancelled()
        now = time.monotonic()
        try:
            fraction = min(1.0, max(0.0, float(fraction)))
        except (TypeError, ValueError):
            fraction = 0.0
        if now - self._last_progress >= PROGRESS_INTERVAL_S or fraction >= 1.0:
            self._last_progress = now
            self.server.out.send({"id": self.request.id, "type": "progress", "fraction": fraction,
                                  "message": str(message)[:500]})

    @property
    def tasks(self) -> ModuleType:
        """The server's tasks module (``internal`` error when it could not be imported)."""
        if self.server.tasks is None:
            raise S.ProtocolError(S.INTERNAL, "the backend's tasks module cannot be imported; see the server log")
        return self.server.tasks

    def prior(self) -> Any:
        """The loaded prior (loading the default weights on first need)."""
        return self.server.weights.prior()

    def hooks(self) -> dict[str, Callable]:
        """The ``progress`` / ``should_cancel`` keywords every task takes."""
        return {"progress": self.progress, "should_cancel": self.should_cancel}


Handler = Callable[[TaskContext], dict]


def _np(a: S.Array | None) -> Any:
    return None if a is None else a.to_numpy()


def h_load(ctx: TaskContext) -> dict:
    """Load (or keep) the weights on the requested device."""
    r: S.LoadRequest = ctx.request  # type: ignore[assignment]
    already = ctx.server.weights.load(r.path, r.device)
    st = ctx.server.weights.state
    return {"weights_path": st.weights_path, "weights_sha256": st.weights_sha256, "device": st.device,
            "device_name": st.device_name, "device_note": st.device_note, "joint_names": st.joint_names,
            "already_loaded": already}


def h_sample(ctx: TaskContext) -> dict:
    """``tasks.sample`` -> poses (n, 63)."""
    r: S.SampleRequest = ctx.request  # type: ignore[assignment]
    return {"poses": ctx.tasks.sample(ctx.prior(), r.n, sampler=r.sampler, steps=r.steps, seed=r.seed,
                                      **ctx.hooks())}


def h_variations(ctx: TaskContext) -> dict:
    """``tasks.variations`` -> poses (n, 63)."""
    r: S.VariationsRequest = ctx.request  # type: ignore[assignment]
    return {"poses": ctx.tasks.variations(ctx.prior(), _np(r.pose).reshape(-1), r.strength, r.n, sampler=r.sampler,
                                          steps=r.steps, seed=r.seed, **ctx.hooks())}


def h_inbetween(ctx: TaskContext) -> dict:
    """``tasks.inbetween`` -> poses, root_orient, trans (the keys' translations eased like the poses)."""
    r: S.InbetweenRequest = ctx.request  # type: ignore[assignment]
    steps = {} if r.steps is None else {"steps": r.steps}  # None: the task's own ODE default
    out = ctx.tasks.inbetween(ctx.prior(), _np(r.keys), r.n_frames, ease=r.ease, root_orient=_np(r.root_orient),
                              trans=_np(r.trans), seed=r.seed, **steps, **ctx.hooks())
    return {"poses": out["poses"], "root_orient": out["root_orient"], "trans": out["trans"]}


def h_complete(ctx: TaskContext) -> dict:
    """``tasks.complete`` -> poses (N, H, 63), scores (N, H), root_orient."""
    import numpy as np

    r: S.CompleteRequest = ctx.request  # type: ignore[assignment]
    out = ctx.tasks.complete(ctx.prior(), _np(r.pose), r.keep, n_hypotheses=r.n_hypotheses, steps=r.steps,
                             seed=r.seed, root_orient=_np(r.root_orient), **ctx.hooks())
    poses, scores = np.asarray(out["poses"]), np.asarray(out["scores"])
    if poses.ndim == 2:  # a single (63,) pose comes back without the N axis
        poses, scores = poses[None], scores.reshape(1, -1)
    ro = out.get("root_orient")
    return {"poses": poses, "scores": scores, "root_orient": None if ro is None else np.asarray(ro).reshape(-1, 3)}


def h_denoise(ctx: TaskContext) -> dict:
    """``tasks.denoise`` on joints (T, 22, 3) or poses (T, 63)."""
    r: S.DenoiseRequest = ctx.request  # type: ignore[assignment]
    x = _np(r.joints) if r.joints is not None else _np(r.poses)
    out = ctx.tasks.denoise(ctx.prior(), x, root_orient=_np(r.root_orient), trans=_np(r.trans), noise_mm=r.noise_mm,
                            seed=r.seed, **ctx.hooks())
    nm = out["noise_mm"]
    return {"poses": out["poses"], "joints": out["joints"], "noise_mm": None if nm is None else float(nm),
            "root_orient": out.get("root_orient"), "trans": out.get("trans")}


def h_score(ctx: TaskContext) -> dict:
    """``tasks.score`` -> per-pose and per-joint scores."""
    r: S.ScoreRequest = ctx.request  # type: ignore[assignment]
    out = ctx.tasks.score(ctx.prior(), _np(r.poses), seed=r.seed, **ctx.hooks())
    return {"pose": out["pose"], "joints": out["joints"]}


def h_retarget_bvh(ctx: TaskContext) -> dict:
    """Read a BVH file and retarget it onto SMPL (``backend.data``)."""
    r: S.RetargetBvhRequest = ctx.request  # type: ignore[assignment]
    try:
        from backend.data.bvh import parse_bvh
        from backend.data.retarget import retarget_bvh
    except ImportError as exc:
        raise S.ProtocolError(S.INTERNAL, f"BVH retargeting is not available in this backend ({one_line(exc)})")
    ctx.progress(0.0, "reading BVH")
    shown = S.clip(r.path, 200)
    text = read_regular(r.path, "BVH file").decode("utf-8", errors="replace")
    try:
        motion = parse_bvh(text)
    except (ValueError, OSError, IndexError, KeyError) as exc:
        raise S.ProtocolError(S.BAD_INPUT, f"cannot read BVH file {shown}: {one_line(exc)}")
    del text
    ctx.progress(0.5, "retargeting")
    try:
        out = retarget_bvh(motion, family=r.family, fps=r.fps, name=Path(r.path).stem)
    except (ValueError, KeyError) as exc:
        raise S.ProtocolError(S.BAD_INPUT, f"cannot retarget {shown}: {one_line(exc)}")
    return {"body_pose": out.body_pose, "root_orient": out.root_orient, "trans": out.trans, "fps": float(out.fps)}


def h_read_amass(ctx: TaskContext) -> dict:
    """Read an AMASS ``.npz`` (``backend.data.amass``)."""
    r: S.ReadAmassRequest = ctx.request  # type: ignore[assignment]
    try:
        from backend.data.amass import read_amass
    except ImportError as exc:
        raise S.ProtocolError(S.INTERNAL, f"AMASS reading is not available in this backend ({one_line(exc)})")
    data = read_regular(r.path, "AMASS file")
    try:
        m = read_amass(io.BytesIO(data), fps=r.fps)
    except (ValueError, OSError, KeyError) as exc:
        raise S.ProtocolError(S.BAD_INPUT, f"cannot read AMASS file {S.clip(r.path, 200)}: {one_line(exc)}")
    return {"body_pose": m.body_pose, "root_orient": m.root_orient, "trans": m.trans, "fps": float(m.fps),
            "betas": m.betas, "gender": None if m.gender is None else str(m.gender)}


def photo_features() -> dict:
    """hello's ``features``: whether pose-from-a-photo can run here (mediapipe installed), and if not the
    one-line install hint, so the client can grey the button out."""
    try:
        from backend.photo.api import photo_features as features

        return features()
    except Exception as exc:  # noqa: BLE001  a hello must never fail
        log.exception("photo features unavailable")
        return {"fit_image": {"available": False, "message": f"pose from a photo cannot be loaded ({one_line(exc)})"}}


def h_fit_image(ctx: TaskContext) -> dict:
    """Pose from a photo (``backend.photo``): ranked hypotheses; ``feature_unavailable`` without mediapipe."""
    r: S.FitImageRequest = ctx.request  # type: ignore[assignment]
    from backend.photo import api as photo

    ok, msg = photo.photo_available()
    if not ok:
        raise S.ProtocolError(S.FEATURE_UNAVAILABLE, msg)
    model = None if r.smpl_model is None else os.path.expanduser(r.smpl_model)
    if model is not None and not os.path.isfile(model):
        raise S.ProtocolError(S.BAD_INPUT, f"SMPL model file {S.clip(r.smpl_model, 200)} does not exist or is not "
                                           "a regular file")
    try:
        out = photo.fit_image(ctx.prior(), os.path.expanduser(r.path), n_hypotheses=r.n_hypotheses, seed=r.seed,
                              smpl_model=model, focal_px=r.focal_px, **ctx.hooks())
    except photo.PhotoUnavailable as exc:  # ImageError / NoPerson are BadInput: bad_input like any task's
        raise S.ProtocolError(S.FEATURE_UNAVAILABLE, one_line(exc))
    out.pop("landmarks", None)
    out.pop("detect_seconds", None)
    return out


HANDLERS: dict[str, Handler] = {
    S.LoadRequest.TYPE: h_load, S.SampleRequest.TYPE: h_sample, S.VariationsRequest.TYPE: h_variations,
    S.InbetweenRequest.TYPE: h_inbetween, S.CompleteRequest.TYPE: h_complete, S.DenoiseRequest.TYPE: h_denoise,
    S.ScoreRequest.TYPE: h_score, S.RetargetBvhRequest.TYPE: h_retarget_bvh, S.ReadAmassRequest.TYPE: h_read_amass,
    S.FitImageRequest.TYPE: h_fit_image,
}
"""Queued request type -> handler: every type of the protocol registry (``S.REQUESTS``) whose request is
not a control request (tested)."""
