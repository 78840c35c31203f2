"""Requests (client -> server): one validating dataclass per message type.

Field bounds are written once, in the field declarations below (``int_field(lo, hi)``), and read back
by :func:`dposer_core.protocol.bounds`; the server, the CLI and the client all validate through these
classes (``make_request`` / ``parse_request``). Parameters mirror ``backend.tasks``. A ``seed`` of
null means random (see ``fields``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..constants import DEVICES, EASES, POSE_DIM, SAMPLERS
from .errors import bad_input
from .fields import (array_field, choice_parser, field_spec, float_field, id_parser, int_field, keep_parser,
                     optional, seed_field, str_parser)
from .message import Message

__all__ = ["MAX_COMPLETE_ROWS", "MAX_INBETWEEN_FRAMES", "MAX_DENOISE_FRAMES", "Request", "HelloRequest",
           "LoadRequest", "SampleRequest", "VariationsRequest", "InbetweenRequest", "CompleteRequest",
           "DenoiseRequest", "ScoreRequest", "RetargetBvhRequest", "ReadAmassRequest", "FitImageRequest",
           "CancelRequest", "PingRequest", "ShutdownRequest"]

MAX_COMPLETE_ROWS = 50_000
"""``complete``: poses x n_hypotheses handled in one request (memory: ~2 kB per row plus the result)."""

MAX_INBETWEEN_FRAMES = 200_000
"""``inbetween``: the most frames one request may produce."""

MAX_DENOISE_FRAMES = 200_000
"""``denoise``: the most frames one request may carry (about 1.9 hours at 30 fps)."""


def _check_rows(msg: Message, n: int, per: str, *names: str) -> None:
    """``bad_input`` unless each of the (optional) array fields ``names`` has ``n`` rows, one per ``per``."""
    for name in names:
        a = getattr(msg, name)
        if a is not None and a.shape[0] != n:
            raise bad_input(f"{name} must have one row per {per} ({n}), got {a.shape[0]}")


@dataclass(kw_only=True)
class Request(Message):
    """Base of all requests: ``id`` is echoed in every reply to this request."""

    id: int | str = field_spec(id_parser)

    CONTROL: ClassVar[bool] = False
    """Control requests are answered at once by the reader; others run one at a time, in order."""
    NEEDS_WEIGHTS: ClassVar[bool] = False


@dataclass(kw_only=True)
class HelloRequest(Request):
    """The client introduces itself; the server checks the major protocol version."""

    TYPE: ClassVar[str] = "hello"
    CONTROL: ClassVar[bool] = True
    protocol: str = field_spec(str_parser(32))
    client: str = field_spec(str_parser(200, nonempty=False), default="")


@dataclass(kw_only=True)
class LoadRequest(Request):
    """Load (or keep) the weights. ``path`` null: the shipped default weights."""

    TYPE: ClassVar[str] = "load"
    path: str | None = field_spec(optional(str_parser()), default=None)
    device: str = field_spec(choice_parser(DEVICES), default="auto")


@dataclass(kw_only=True)
class SampleRequest(Request):
    """``tasks.sample``: ``n`` random poses."""

    TYPE: ClassVar[str] = "sample"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    n: int = int_field(1, 100_000, default=1)
    sampler: str = field_spec(choice_parser(SAMPLERS), default="ddim")
    steps: int | None = int_field(1, 5000, default=None, optional=True)
    seed: int | None = seed_field()


@dataclass(kw_only=True)
class VariationsRequest(Request):
    """``tasks.variations``: ``n`` variations of ``pose`` (63,), ``strength`` in (0, 1]."""

    TYPE: ClassVar[str] = "variations"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    pose: Any = array_field((POSE_DIM,), (1, POSE_DIM), kind="rotation")
    strength: float = float_field(1e-6, 1.0, default=0.3)
    n: int = int_field(1, 100_000, default=1)
    sampler: str = field_spec(choice_parser(("ddim", "em")), default="ddim")
    steps: int | None = int_field(1, 5000, default=None, optional=True)
    seed: int | None = seed_field()


@dataclass(kw_only=True)
class InbetweenRequest(Request):
    """``tasks.inbetween``: ``n_frames`` in-between frames per segment through ``keys`` (M, 63), M >= 2.

    The result has (M - 1) (n_frames + 1) + 1 frames; the keys are reproduced exactly. ``root_orient``
    and ``trans`` (M, 3): the keys' root rotations and SMPL translations (metres), interpolated with
    the same ease and returned per frame.
    """

    TYPE: ClassVar[str] = "inbetween"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    keys: Any = array_field((None, POSE_DIM), kind="rotation")
    n_frames: int = int_field(0, 100_000)
    ease: str = field_spec(choice_parser(EASES), default="linear")
    root_orient: Any = array_field((None, 3), optional=True, kind="rotation")
    trans: Any = array_field((None, 3), optional=True, kind="position")
    steps: int | None = int_field(1, 5000, default=None, optional=True)
    seed: int | None = seed_field()

    def validate(self) -> None:
        m = self.keys.shape[0]
        if m < 2:
            raise bad_input(f"keys must hold at least 2 key poses, got {m}")
        total = (m - 1) * (self.n_frames + 1) + 1
        if total > MAX_INBETWEEN_FRAMES:
            raise bad_input(f"inbetween would produce {total:,} frames, more than the {MAX_INBETWEEN_FRAMES:,} one "
                            "request may; use fewer keys or in-between frames per request")
        _check_rows(self, m, "key", "root_orient", "trans")


@dataclass(kw_only=True)
class CompleteRequest(Request):
    """``tasks.complete``: fill in the joints not in ``keep`` (21 booleans or joint names)."""

    TYPE: ClassVar[str] = "complete"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    pose: Any = array_field((POSE_DIM,), (None, POSE_DIM), kind="rotation")
    keep: list = field_spec(keep_parser)
    n_hypotheses: int = int_field(1, 1000, default=10)
    steps: int = int_field(1, 5000, default=200)
    root_orient: Any = array_field((3,), (None, 3), optional=True, kind="rotation")
    seed: int | None = seed_field()

    def validate(self) -> None:
        n_pose = 1 if len(self.pose.shape) == 1 else self.pose.shape[0]
        if n_pose * self.n_hypotheses > MAX_COMPLETE_ROWS:
            raise bad_input(f"complete of {n_pose:,} poses x {self.n_hypotheses} hypotheses is more than the "
                            f"{MAX_COMPLETE_ROWS:,} one request may; send fewer poses or ask for fewer hypotheses")
        if self.root_orient is not None:
            n_root = 1 if len(self.root_orient.shape) == 1 else self.root_orient.shape[0]
            if n_root != n_pose:
                raise bad_input(f"root_orient must have one row per pose ({n_pose}), got {n_root}")


@dataclass(kw_only=True)
class DenoiseRequest(Request):
    """``tasks.denoise``: give exactly one of ``joints`` (T, 22, 3) metres or ``poses`` (T, 63).

    ``root_orient`` / ``trans`` (T, 3): known and held fixed when given. ``noise_mm``: noise std
    per coordinate (null: estimated).
    """

    TYPE: ClassVar[str] = "denoise"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    joints: Any = array_field((None, 22, 3), optional=True, kind="position")
    poses: Any = array_field((None, POSE_DIM), optional=True, kind="rotation")
    root_orient: Any = array_field((None, 3), optional=True, kind="rotation")
    trans: Any = array_field((None, 3), optional=True, kind="position")
    noise_mm: float | None = float_field(0.0, 1000.0, default=None, optional=True)
    seed: int | None = seed_field()

    def validate(self) -> None:
        if (self.joints is None) == (self.poses is None):
            raise bad_input("denoise needs exactly one of joints (T, 22, 3) or poses (T, 63)")
        t = (self.joints if self.joints is not None else self.poses).shape[0]
        if t > MAX_DENOISE_FRAMES:
            raise bad_input(f"denoise of {t:,} frames is more than the {MAX_DENOISE_FRAMES:,} one request may; "
                            "split the motion into parts")
        _check_rows(self, t, "frame", "root_orient", "trans")


@dataclass(kw_only=True)
class ScoreRequest(Request):
    """``tasks.score``: plausibility of each pose in ``poses`` (N, 63)."""

    TYPE: ClassVar[str] = "score"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    poses: Any = array_field((None, POSE_DIM), kind="rotation")
    seed: int | None = seed_field()


@dataclass(kw_only=True)
class RetargetBvhRequest(Request):
    """Read a BVH file and retarget it to SMPL body poses at ``fps``."""

    TYPE: ClassVar[str] = "retarget_bvh"
    path: str = field_spec(str_parser())
    family: str | None = field_spec(optional(str_parser(200)), default=None)
    fps: float = float_field(1.0, 1000.0, default=30.0)


@dataclass(kw_only=True)
class ReadAmassRequest(Request):
    """Read an AMASS ``.npz`` motion (converted to the SMPL native Y-up frame)."""

    TYPE: ClassVar[str] = "read_amass"
    path: str = field_spec(str_parser())
    fps: float | None = float_field(1.0, 1000.0, default=30.0, optional=True, doc="resample to (null: keep)")


@dataclass(kw_only=True)
class FitImageRequest(Request):
    """Pose from a photo: fit ``n_hypotheses`` ranked SMPL poses to the person in the image at ``path``
    (PNG, JPEG, WebP or BMP, checked by content). Needs mediapipe in the backend (hello
    ``features.fit_image.available``); without it the answer is ``feature_unavailable``.
    ``smpl_model``: optional SMPL model file whose skeleton is fitted; ``focal_px``: the camera's focal
    length in pixels (null: a 50 mm full-frame equivalent)."""

    TYPE: ClassVar[str] = "fit_image"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    path: str = field_spec(str_parser())
    n_hypotheses: int = int_field(1, 32, default=4)
    smpl_model: str | None = field_spec(optional(str_parser()), default=None)
    focal_px: float | None = float_field(1.0, 1e6, default=None, optional=True)
    seed: int | None = seed_field()


@dataclass(kw_only=True)
class CancelRequest(Request):
    """Cancel request ``target``: a queued one is dropped, a running one stops within one step."""

    TYPE: ClassVar[str] = "cancel"
    CONTROL: ClassVar[bool] = True
    target: int | str = field_spec(id_parser)


@dataclass(kw_only=True)
class PingRequest(Request):
    """Liveness check, answered at once even while a task runs."""

    TYPE: ClassVar[str] = "ping"
    CONTROL: ClassVar[bool] = True


@dataclass(kw_only=True)
class ShutdownRequest(Request):
    """Cancel everything, answer, and exit."""

    TYPE: ClassVar[str] = "shutdown"
    CONTROL: ClassVar[bool] = True

