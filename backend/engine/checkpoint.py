"""One-file DPoser checkpoints: network config, EMA weights, z-score statistics, skeleton, SDE
parameters and provenance, saved with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (only tensors, dicts, lists, strings and numbers are stored).

File layout (a dict)::

    format: "dposer-blender-checkpoint"   version: 1
    network_config: NetworkConfig.to_dict()
    state_dict: {name: tensor}            EMA weights (fp16 when saved with half=True)
    mean, std: (D,) float32 tensors       z-score statistics of the training poses
    skeleton: Skeleton.to_dict()          the skeleton the data were retargeted to
    sde: SubVPSDE.to_dict()
    provenance: {data, iterations, date, git_commit, ...}
"""

from __future__ import annotations

import datetime as _dt
import os
import pickle
import stat
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .network import NetworkConfig, ScoreMLP
from .sde import SubVPSDE
from dposer_core.skeleton import smpl_skeleton

FORMAT = "dposer-blender-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "network_config", "state_dict", "mean", "std", "skeleton", "sde", "provenance")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or has the wrong content; the message names the
    file, the reason and what to do."""


def _fix_hint() -> str:
    return ("Point the add-on's Weights preference / --weights at a file written by `python -m backend.train` "
            "or `python -m backend.export_weights` (or the shipped weights/dposer_cmu_bandai.pt).")


def _vec(v: Any) -> torch.Tensor:
    """Array-like -> flat float32 CPU tensor."""
    if not isinstance(v, torch.Tensor):
        v = torch.as_tensor(np.asarray(v, dtype=np.float32))
    return v.detach().to(torch.float32).cpu().reshape(-1)


@dataclass
class Checkpoint:
    """In-memory checkpoint.

    Attributes:
        config: network shape (``NetworkConfig``; a dict is converted).
        state_dict: EMA weights of ``ScoreMLP(config)``.
        mean, std: (D,) float32 tensors, z-score statistics (arrays are converted).
        skeleton: ``Skeleton.to_dict()`` of the training skeleton (built-in SMPL if omitted).
        provenance: free-form dict: data, iterations, date, git_commit, ... (see ``make_provenance``).
        sde: ``SubVPSDE.to_dict()`` (defaults if omitted).
    """

    config: NetworkConfig
    state_dict: dict[str, torch.Tensor]
    mean: torch.Tensor
    std: torch.Tensor
    skeleton: dict = field(default_factory=lambda: smpl_skeleton().to_dict())
    provenance: dict = field(default_factory=dict)
    sde: dict = field(default_factory=lambda: SubVPSDE().to_dict())

    def __post_init__(self) -> None:
        if isinstance(self.config, dict):
            self.config = NetworkConfig.from_dict(self.config)
        self.mean = _vec(self.mean)
        self.std = _vec(self.std)
        self.state_dict = {k: v.detach().cpu() for k, v in self.state_dict.items()}

    def build_network(self, device: torch.device | str = "cpu") -> ScoreMLP:
        """A ``ScoreMLP`` with these weights, in eval mode, float32, on ``device``."""
        net = ScoreMLP(self.config)
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in self.state_dict.items()})
        return net.to(device).eval()


def git_commit(repo_dir: str | Path | None = None) -> str:
    """The current git commit of ``repo_dir`` (this repository by default), or "unknown"."""
    repo_dir = Path(repo_dir) if repo_dir else Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def make_provenance(data: str | list[str] | dict, iterations: int, **extra: Any) -> dict:
    """Provenance dict: ``data`` (description of the training data), ``iterations``, UTC ``date``,
    ``git_commit`` and any ``extra`` entries (plain values only)."""
    prov: dict[str, Any] = {"data": data, "iterations": int(iterations),
                            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                            "git_commit": git_commit()}
    prov.update(extra)
    return prov


def _plain(obj: Any) -> Any:
    """Converts numpy scalars/arrays and tuples to plain Python containers (weights_only-safe)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_checkpoint(path: str | Path, ckpt: Checkpoint, half: bool = False) -> Path:
    """Writes ``ckpt`` to ``path`` (parent folders created). ``half=True`` stores the floating
    weights as fp16 (about half the size); ``load_checkpoint`` returns them as fp32. The z-score
    statistics are always stored in fp32. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {}
    for k, v in ckpt.state_dict.items():
        v = v.detach().cpu()
        sd[k] = v.half() if half and v.is_floating_point() else v.clone()
    blob = {
        "format": FORMAT, "version": VERSION,
        "network_config": ckpt.config.to_dict(),
        "state_dict": sd,
        "mean": ckpt.mean.float().cpu().clone(), "std": ckpt.std.float().cpu().clone(),
        "skeleton": _plain(ckpt.skeleton), "sde": _plain(ckpt.sde),
        "provenance": _plain({**ckpt.provenance, "stored_half": bool(half)}),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Reads and validates a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: the file is not found, is not a checkpoint, lacks a key, or its weights /
            statistics do not match its network config (the message says which and what to do).
    """
    path = Path(path)
    shown = str(path) if len(str(path)) <= 200 else str(path)[:200] + "..."
    where = f"checkpoint {shown!r}"
    if not path.exists():
        raise CheckpointError(f"{where}: file not found. {_fix_hint()}")
    try:  # non-blocking open: a FIFO or device named as weights must not hang the caller
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_BINARY", 0))
    except OSError as e:
        raise CheckpointError(f"{where}: cannot be opened ({e.strerror}). {_fix_hint()}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a folder" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise CheckpointError(f"{where}: not a file (it is {kind}). {_fix_hint()}")
    try:
        with os.fdopen(fd, "rb") as fh, warnings.catch_warnings():  # e.g. "Detected pickle protocol 4"
            warnings.simplefilter("ignore", UserWarning)
            blob = torch.load(fh, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001  any failure to unpickle means "not a checkpoint"
        # torch's own text is not repeated: it can quote the file and advises weights_only=False,
        # which would run arbitrary code from an untrusted file.
        kind = ("it holds objects other than tensors and plain values (a full pickle, or from another program)"
                if isinstance(e, pickle.UnpicklingError) and "weights_only" in str(e)
                else "it is not a PyTorch checkpoint, or it is truncated")
        raise CheckpointError(f"{where}: not a DPoser checkpoint ({kind}). {_fix_hint()}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{where}: not a DPoser checkpoint (no '{FORMAT}' format marker; "
                              f"found {type(blob).__name__}). {_fix_hint()}")
    for key in REQUIRED_KEYS:
        if key not in blob:
            raise CheckpointError(f"{where}: missing key {key!r}. The file is incomplete or from another "
                                  f"version. {_fix_hint()}")
    if int(blob["version"]) > VERSION:
        raise CheckpointError(f"{where}: format version {blob['version']} is newer than this code "
                              f"supports ({VERSION}); update DPoser for Blender.")
    try:
        config = NetworkConfig.from_dict(dict(blob["network_config"]))
        SubVPSDE.from_dict(dict(blob["sde"]))
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{where}: bad network_config/sde entry ({e}). {_fix_hint()}") from e

    sd = blob["state_dict"]
    if not isinstance(sd, dict):
        raise CheckpointError(f"{where}: state_dict is not a dict. {_fix_hint()}")
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in ScoreMLP(config).state_dict().items()}
    missing = sorted(set(expected) - set(sd))
    if missing:
        raise CheckpointError(f"{where}: state_dict is missing key {missing[0]!r}"
                              f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}. {_fix_hint()}")
    extra = sorted(set(sd) - set(expected))
    if extra:
        raise CheckpointError(f"{where}: state_dict has unexpected key {extra[0]!r}; it does not match "
                              f"its network_config. {_fix_hint()}")
    for k, shape in expected.items():
        if not isinstance(sd[k], torch.Tensor) or tuple(sd[k].shape) != shape:
            got = tuple(sd[k].shape) if isinstance(sd[k], torch.Tensor) else type(sd[k]).__name__
            raise CheckpointError(f"{where}: shape mismatch for {k!r}: stored {got}, network_config "
                                  f"{config.to_dict()} needs {shape}. {_fix_hint()}")
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}

    for name in ("mean", "std"):
        v = blob[name]
        if not isinstance(v, torch.Tensor) or tuple(v.shape) != (config.dim,):
            got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise CheckpointError(f"{where}: shape mismatch for {name!r}: stored {got}, expected "
                                  f"({config.dim},). {_fix_hint()}")
        if not torch.isfinite(v).all():
            raise CheckpointError(f"{where}: {name!r} has non-finite values. {_fix_hint()}")
    if not (blob["std"] > 0).all():
        raise CheckpointError(f"{where}: 'std' has non-positive entries. {_fix_hint()}")
    for k, v in sd.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{where}: weight {k!r} has non-finite values (a diverged run?). {_fix_hint()}")

    return Checkpoint(config=config, state_dict=sd, mean=blob["mean"], std=blob["std"],
                      skeleton=dict(blob["skeleton"]), provenance=dict(blob["provenance"]),
                      sde=dict(blob["sde"]))
