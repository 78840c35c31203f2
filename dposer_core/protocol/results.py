"""Replies (server -> client) and the typed result payloads, one class per request type.

``Hello``, ``Progress``, ``Result`` and ``Error`` are the four reply lines; a ``Result``'s ``data`` is
the wire form of the request type's :class:`ResultData` subclass (which one: ``REQUESTS[type].result``).
Replies are read leniently, so that a newer minor version may add fields.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ..constants import NUM_BODY_JOINTS, POSE_DIM
from .arrays import Array
from .errors import ERROR_CODES
from .fields import (any_value, array_field, bool_parser, choice_parser, dict_parser, field_spec, float_parser,
                     id_parser, int_parser, lenient_float, names_parser, optional, str_parser)
from .message import Message

__all__ = ["Hello", "Progress", "Result", "Error", "ResultData", "HelloResult", "LoadResult", "PosesResult",
           "InbetweenResult", "CompleteResult", "DenoiseResult", "ScoreResult", "MotionResult", "CancelResult",
           "PingResult", "ShutdownResult", "FitImageResult"]


@dataclass(kw_only=True)
class Hello(Message):
    """The server's greeting, its first line; also the ``data`` of a ``hello`` request's result."""

    TYPE: ClassVar[str] = "hello"
    protocol: str = field_spec(str_parser(32))
    backend_version: str = field_spec(str_parser(64))
    python_version: str = field_spec(str_parser(200, nonempty=False), default="")
    torch_version: str = field_spec(str_parser(64))
    device: str = field_spec(str_parser(32), doc="the device tasks run on: cpu, cuda, cuda:0, mps")
    device_name: str = field_spec(str_parser(200, nonempty=False), default="")
    device_note: str = field_spec(str_parser(2000, nonempty=False), default="",
                                  doc="non-empty when the requested device was not usable (e.g. CUDA fell back to CPU)")
    weights_path: str | None = field_spec(optional(str_parser()), default=None)
    weights_sha256: str | None = field_spec(optional(str_parser(64)), default=None)
    weights_error: dict | None = field_spec(optional(dict_parser), default=None,
                                            doc='{"code", "message"} when loading the weights at start failed')
    joint_names: list | None = field_spec(optional(names_parser), default=None,
                                          doc="the 21 body joint names (SMPL joints 1..21) in pose order")
    pid: int = field_spec(int_parser(0, 2**31), default=0)
    requests: list | None = field_spec(optional(names_parser), default=None, doc="request types served")
    features: dict | None = field_spec(optional(dict_parser), default=None,
                                       doc='optional features: {"fit_image": {"available": bool, "message": str}} '
                                           '(message: the install hint when unavailable)')


@dataclass(kw_only=True)
class Progress(Message):
    """Progress of request ``id``: ``fraction`` in [0, 1] and a short message."""

    TYPE: ClassVar[str] = "progress"
    id: int | str = field_spec(id_parser)
    fraction: float = field_spec(float_parser(0.0, 1.0))
    message: str = field_spec(str_parser(2000, nonempty=False), default="")


@dataclass(kw_only=True)
class Result(Message):
    """The successful, final reply to request ``id``; ``data`` is the typed result's wire form."""

    TYPE: ClassVar[str] = "result"
    id: int | str = field_spec(id_parser)
    data: dict = field_spec(dict_parser, default=None)
    run_ms: float | None = field_spec(optional(lenient_float), default=None,
                                      doc="time the server spent running the request (queued requests only)")


@dataclass(kw_only=True)
class Error(Message):
    """The failed, final reply to request ``id`` (``null`` when the request was unreadable)."""

    TYPE: ClassVar[str] = "error"
    id: int | str | None = field_spec(optional(id_parser), default=None)
    code: str = field_spec(choice_parser(sorted(ERROR_CODES)))
    message: str = field_spec(str_parser(4000, nonempty=False))


@dataclass(kw_only=True)
class ResultData(Message):
    """Base of typed result payloads. Array fields hold :class:`Array` (or numpy after conversion)."""

    def arrays_to_numpy(self) -> "ResultData":
        """Replace every :class:`Array` field by a numpy array (in place); returns self."""
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Array):
                setattr(self, f.name, v.to_numpy())
        return self


@dataclass(kw_only=True)
class HelloResult(Hello):
    """The ``data`` of a ``hello`` request's result: the hello fields."""

    TYPE: ClassVar[str] = ""


@dataclass(kw_only=True)
class LoadResult(ResultData):
    """What is loaded now, and whether it already was."""

    weights_path: str = field_spec(str_parser())
    weights_sha256: str = field_spec(str_parser(64))
    device: str = field_spec(str_parser(32))
    device_name: str = field_spec(str_parser(200, nonempty=False), default="")
    device_note: str = field_spec(str_parser(2000, nonempty=False), default="")
    joint_names: list | None = field_spec(optional(names_parser), default=None)
    already_loaded: bool = field_spec(bool_parser, default=False)


@dataclass(kw_only=True)
class PosesResult(ResultData):
    """``sample`` and ``variations``: poses (n, 63)."""

    poses: Any = array_field((None, POSE_DIM))


@dataclass(kw_only=True)
class InbetweenResult(ResultData):
    """poses ((M-1)(n_frames+1)+1, 63); root_orient / trans (same, 3) when the request gave them."""

    poses: Any = array_field((None, POSE_DIM))
    root_orient: Any = array_field((None, 3), optional=True)
    trans: Any = array_field((None, 3), optional=True)


@dataclass(kw_only=True)
class CompleteResult(ResultData):
    """poses (N, H, 63) best first, scores (N, H)."""

    poses: Any = array_field((None, None, POSE_DIM))
    scores: Any = array_field((None, None))
    root_orient: Any = array_field((None, 3), optional=True)


@dataclass(kw_only=True)
class DenoiseResult(ResultData):
    """poses (T, 63), joints (T, 22, 3) (FK of the result), root_orient / trans (T, 3), noise_mm used."""

    poses: Any = array_field((None, POSE_DIM))
    joints: Any = array_field((None, 22, 3))
    root_orient: Any = array_field((None, 3), optional=True)
    trans: Any = array_field((None, 3), optional=True)
    noise_mm: float | None = field_spec(optional(lenient_float), default=None)


@dataclass(kw_only=True)
class ScoreResult(ResultData):
    """``pose`` (N,): one score per pose (the field name is the wire's); ``joints`` (N, 21): per-joint
    scores. Lower is more plausible."""

    pose: Any = array_field((None,))
    joints: Any = array_field((None, NUM_BODY_JOINTS))


@dataclass(kw_only=True)
class MotionResult(ResultData):
    """``retarget_bvh`` and ``read_amass``: an SMPL motion (SMPL native frame, Y up)."""

    body_pose: Any = array_field((None, POSE_DIM))
    root_orient: Any = array_field((None, 3))
    trans: Any = array_field((None, 3))
    fps: float = field_spec(lenient_float)
    betas: Any = array_field((None,), optional=True)
    gender: str | None = field_spec(optional(str_parser(32, nonempty=False)), default=None)


@dataclass(kw_only=True)
class CancelResult(ResultData):
    """state: "running" (asked to stop), "queued" (removed) or "unknown" (already finished / no such id)."""

    target: int | str = field_spec(id_parser)
    state: str = field_spec(choice_parser(("running", "queued", "unknown")))


@dataclass(kw_only=True)
class PingResult(ResultData):
    """Liveness: whether a task runs and how many wait."""

    pong: bool = field_spec(bool_parser, default=True)
    busy: bool = field_spec(bool_parser, default=False)
    queued: int = field_spec(int_parser(0, 2**31), default=0)


@dataclass(kw_only=True)
class ShutdownResult(ResultData):
    """Empty: the server exits after sending it."""


@dataclass(kw_only=True)
class FitImageResult(ResultData):
    """``fit_image``: H hypotheses, best first (K = 21 keypoints, see ``keypoint_names``).

    poses (H, 63); root_orient (H, 3) in the SMPL world frame of a camera on +Z looking towards -Z
    (a person facing the camera gets about the identity); root_orient_cam / cam_t (H, 3): OpenCV camera
    frame (x right, y down, z forward) with ``focal_px`` and the principal point at the image centre;
    scores (H,) ranking value, lower is better (data_loss + weight * prior_score); projected (H, K, 2)
    fitted keypoints in pixels; keypoints (K, 3) the detections (x px, y px, confidence);
    labels_swapped (H,) 1.0 where the hypothesis reads the detector's left/right labels swapped;
    init: each hypothesis's start; image_size [w, h]; seconds: detection + fit time."""

    poses: Any = array_field((None, POSE_DIM))
    root_orient: Any = array_field((None, 3))
    root_orient_cam: Any = array_field((None, 3))
    cam_t: Any = array_field((None, 3))
    scores: Any = array_field((None,))
    data_loss: Any = array_field((None,), optional=True)
    prior_score: Any = array_field((None,), optional=True)
    projected: Any = array_field((None, None, 2), optional=True)
    keypoints: Any = array_field((None, 3))
    keypoint_names: list | None = field_spec(optional(names_parser), default=None)
    labels_swapped: Any = array_field((None,), optional=True)
    init: list | None = field_spec(optional(names_parser), default=None)
    focal_px: float = field_spec(lenient_float)
    image_size: list | None = field_spec(optional(any_value), default=None)
    seconds: float | None = field_spec(optional(lenient_float), default=None)

