"""The server's loaded prior: which file, its sha256, which device; loaded at start or on the first need."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from backend import DEFAULT_WEIGHTS
from dposer_core import protocol as S
from dposer_core.skeleton import body_joint_names

from .device import free_memory, is_oom, select_device
from .transport import one_line, open_regular

log = logging.getLogger("dposer.server")

LoadPrior = Callable[[str, str], Any]
"""(checkpoint path, device) -> prior; raises on a file that is not a usable checkpoint."""


def load_pose_prior(path: str, device: str) -> Any:
    """The default :data:`LoadPrior`: ``PosePrior.load``; a bad checkpoint is ``weights_invalid``."""
    from backend.engine.checkpoint import CheckpointError
    from backend.engine.prior import PosePrior

    try:
        return PosePrior.load(path, device=device)
    except CheckpointError as exc:
        raise S.ProtocolError(S.WEIGHTS_INVALID, one_line(exc)) from None


@dataclass
class EngineState:
    """What the server has loaded: the prior, its file and device."""

    prior: Any = None
    weights_path: str | None = None
    weights_sha256: str | None = None
    weights_key: tuple | None = None  # (path, size, mtime, device) of the loaded file
    device: str = "cpu"
    device_name: str = ""
    device_note: str = ""
    requested_device: str = "auto"
    joint_names: list[str] = field(default_factory=list)
    weights_error: dict | None = None  # hello's weights_error: why the weights given at start did not load


class Weights:
    """Loads and holds the prior. ``configured``: the ``--weights`` path (None: the shipped weights)."""

    def __init__(self, configured: str | None, requested_device: str, load_prior: LoadPrior = load_pose_prior) -> None:
        self.configured = configured
        self.load_prior = load_prior
        self.state = EngineState(requested_device=requested_device)

    def prior(self) -> Any:
        """The loaded prior; loads the default weights on first need, else ``weights_missing``."""
        if self.state.prior is None:
            if self.configured or DEFAULT_WEIGHTS.is_file():
                self.load(self.configured, self.state.requested_device)
            else:
                raise S.ProtocolError(S.WEIGHTS_MISSING,
                                      f"no weights are loaded and the default weights file {str(DEFAULT_WEIGHTS)!r} "
                                      "does not exist; send a load request with the path of a DPoser checkpoint")
        return self.state.prior

    def load(self, path: str | None, device: str) -> bool:
        """Load ``path`` (default weights when None) on ``device``; returns True when already loaded."""
        p = Path(path or self.configured or DEFAULT_WEIGHTS).expanduser()
        fd = open_regular(str(p), "weights file", S.WEIGHTS_MISSING, S.WEIGHTS_INVALID)
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        state = self.state
        if device != state.requested_device or not state.device:
            state.device, state.device_name, state.device_note = select_device(device)
            state.requested_device = device
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns, state.device)
        if state.prior is not None and state.weights_key == key:
            return True
        t0 = time.perf_counter()
        try:
            prior = self.load_prior(str(p), state.device)
        except S.ProtocolError:
            raise
        except Exception as exc:  # noqa: BLE001
            if is_oom(exc):
                raise
            log.exception("loading weights %s failed", p)
            raise S.ProtocolError(S.WEIGHTS_INVALID,
                                  f"cannot load weights {S.clip(str(p), 200)}: {one_line(exc)}") from None
        state.prior = None  # drop the old one before hashing (memory)
        free_memory()
        state.prior = prior
        state.weights_path = str(p)
        with open(p, "rb") as f:
            state.weights_sha256 = hashlib.file_digest(f, "sha256").hexdigest()
        state.weights_key = key
        state.weights_error = None
        skel = prior.skeleton  # a Skeleton or None
        names = list(skel.names[1:22]) if skel is not None else []
        state.joint_names = names if len(names) == 21 else list(body_joint_names())
        log.info("loaded %s (sha256 %s) on %s in %.2fs", p, state.weights_sha256[:12], state.device,
                 time.perf_counter() - t0)
        return False

    def joint_names(self) -> list[str]:
        """The 21 body joint names of the loaded prior's skeleton (the built-in SMPL ones before a load)."""
        return self.state.joint_names or list(body_joint_names())
