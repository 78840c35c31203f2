"""``python -m backend.server``: the JSON-lines subprocess server the Blender extension talks to.

One process, one loaded prior, one task at a time. Protocol: ``backend/protocol/schema.py``
(message dataclasses) and ``backend/protocol/README.md`` (overview, array-encoding numbers).

Threads:

* **main**: imports torch, picks the device, loads the weights, says hello, then waits.
* **reader**: reads stdin lines (from the very start, so EOF is seen even during the torch
  import; lines before hello are kept), parses and validates each one before any work, answers
  the control requests (``hello``, ``ping``, ``cancel``, ``shutdown``) at once and queues the
  rest. On EOF it arms a hard exit (<= 1 s) so a dead parent never leaves an orphan on the GPU.
* **worker**: runs ``load`` and the tasks in order; progress lines as it goes; exactly one
  ``result`` or ``error`` per request.
* **watchdog**: exits when the parent process disappears (re-parenting), as a second guard
  next to stdin EOF and the optional Linux ``PR_SET_PDEATHSIG``.

stdout carries only protocol lines: the real stdout fd is saved and fd 1 is pointed at stderr,
so stray prints (ours, a library's, C code's) cannot corrupt the stream. Tracebacks go to the
log file (``--log``, default ``<user cache dir>/dposer/server.log``), never into replies.

Adding a request type: a dataclass in ``schema.py`` (+ its result class) and one entry in
:data:`HANDLERS` below.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import gc
import hashlib
import importlib
import importlib.util
import logging
import logging.handlers
import os
import platform
import signal
import stat
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from backend import __version__ as BACKEND_VERSION
from dposer_core.constants import default_log_path, shipped_weights
from dposer_core import protocol as S

log = logging.getLogger("dposer.server")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WEIGHTS = shipped_weights(REPO_ROOT)
EOF_EXIT_S = 0.9          # hard exit this long after stdin closes
PROGRESS_INTERVAL_S = 0.05  # at most ~20 progress lines per second per request
_EOF = object()


# ------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------

def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def set_pdeathsig() -> bool:
    """Linux: ask the kernel to SIGKILL us when the parent *thread* that started us exits.

    The client only asks for this when it starts the server from its main thread (a
    short-lived starter thread would otherwise kill the server when it ends). Returns success.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return False


class Cancelled(Exception):
    """Raised inside a running task (from its progress callback) once it has been cancelled."""


class RequestFailed(Exception):
    """A handler's failure with a stable protocol error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:1000]


_OOM_TEXTS = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory",
              "defaultcpuallocator", "failed to allocate")


def _is_oom(exc: BaseException) -> bool:
    """MemoryError, torch's OutOfMemoryError, or a RuntimeError from an allocator (CUDA's "out of
    memory", the CPU allocator's "DefaultCPUAllocator: can't allocate memory" / "not enough memory")."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)) if t)
    if oom_types and isinstance(exc, oom_types):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(t in text for t in _OOM_TEXTS)


def oom_advice(request_type: str, device: str) -> str:
    """The ``out_of_memory`` message: what ran out and what to do."""
    what = {"complete": "fewer poses or hypotheses", "denoise": "fewer frames (split the motion)",
            "inbetween": "fewer keys or in-between frames", "score": "fewer poses",
            "sample": "fewer poses (a smaller n)", "variations": "fewer variations (a smaller n)",
            }.get(request_type, "less data")
    where = ("or run the backend on a GPU (Device: CUDA), which has its own memory" if device == "cpu"
             else "or switch the backend to the CPU device, which can use the computer's main memory")
    return f"{request_type} ran out of memory on {device}; try {what} per request, {where}"


def _open_regular(path: str, what: str, code: str = S.BAD_INPUT, bad_code: str | None = None) -> int:
    """An fd of ``path`` opened without blocking (O_NONBLOCK: a FIFO cannot hang us) that must be a
    regular file (not a FIFO, device, socket or directory). Raises ``RequestFailed`` with ``code``
    when it does not exist, else ``bad_code`` (default ``code``)."""
    shown = S.clip(path, 200)
    bad_code = bad_code or code
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise RequestFailed(code, f"{what} {shown} does not exist") from None
    except OSError as exc:
        raise RequestFailed(bad_code, f"{what} {shown} cannot be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise RequestFailed(bad_code, f"{what} {shown} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a pipe (FIFO)" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise RequestFailed(bad_code, f"{what} {shown} is {kind}, not a regular file; choose a file on disk")
    return fd


MAX_INPUT_FILE_BYTES = 2 << 30
"""The largest BVH / AMASS file a request may name (read into memory)."""


def _read_regular(path: str, what: str) -> bytes:
    """The bytes of a regular file (see :func:`_open_regular`)."""
    fd = _open_regular(path, what)
    try:
        size = os.fstat(fd).st_size
        if size > MAX_INPUT_FILE_BYTES:
            raise RequestFailed(S.BAD_INPUT, f"{what} {S.clip(path, 200)} is larger than "
                                             f"{MAX_INPUT_FILE_BYTES >> 30} GB; split it")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(MAX_INPUT_FILE_BYTES + 1)
    except OSError as exc:
        raise RequestFailed(S.BAD_INPUT, f"{what} {S.clip(path, 200)} cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def _nonfinite_fields(values: dict) -> list[str]:
    """Names of result values holding NaN or infinity."""
    import math

    bad = []
    for k, v in values.items():
        if v is None or isinstance(v, (str, bool, list, dict)):
            continue
        if isinstance(v, S.Array):
            ok = v.is_finite()
        elif hasattr(v, "dtype"):
            import numpy as np

            a = np.asarray(v)
            ok = a.dtype.kind not in "fc" or bool(np.isfinite(a).all())
        elif isinstance(v, (int, float)):
            ok = math.isfinite(float(v))
        else:
            continue
        if not ok:
            bad.append(k)
    return bad


def _free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        if torch is not None and hasattr(torch, "mps") and torch.backends.mps.is_available():
            torch.mps.empty_cache()
    except Exception:  # noqa: BLE001  freeing memory must never fail a reply
        log.exception("freeing memory failed")


# ------------------------------------------------------------------------------------------
# Device and weights
# ------------------------------------------------------------------------------------------

def select_device(requested: str) -> tuple[str, str, str]:
    """(device, device_name, note) for ``auto`` (cuda > mps > cpu), ``cuda``, ``mps`` or ``cpu``.

    A device that is asked for but unusable falls back to the CPU, and ``note`` says why.
    """
    import torch

    note = ""
    if requested in ("auto", "cuda"):
        try:
            if torch.cuda.is_available():
                torch.zeros(1, device="cuda").add_(1).cpu()  # really initialise it
                return "cuda", torch.cuda.get_device_name(0), ""
            if requested == "cuda":
                note = "CUDA was requested but is not available to this PyTorch build; running on the CPU."
        except Exception as exc:  # noqa: BLE001  any CUDA init failure -> CPU
            log.exception("CUDA initialisation failed")
            note = f"CUDA failed to start ({_one_line(exc)}); running on the CPU instead."
    if requested in ("auto", "mps") and not note:
        try:
            if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
                torch.zeros(1, device="mps").add_(1).cpu()
                return "mps", "Apple Metal (MPS)", ""
            if requested == "mps":
                note = "MPS was requested but is not available; running on the CPU."
        except Exception as exc:  # noqa: BLE001
            log.exception("MPS initialisation failed")
            note = f"MPS failed to start ({_one_line(exc)}); running on the CPU instead."
    cpu_name = platform.processor() or platform.machine() or "CPU"
    return "cpu", f"{cpu_name} ({torch.get_num_threads()} threads)", note


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


# ------------------------------------------------------------------------------------------
# Request handlers (the registry)
# ------------------------------------------------------------------------------------------

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
        """Report progress (throttled); raises :class:`Cancelled` when the request was cancelled."""
        if self.should_cancel():
            raise Cancelled()
        now = time.monotonic()
        try:
            fraction = min(1.0, max(0.0, float(fraction)))
        except (TypeError, ValueError):
            fraction = 0.0
        if now - self._last_progress >= PROGRESS_INTERVAL_S or fraction >= 1.0:
            self._last_progress = now
            self.server.send({"id": self.request.id, "type": "progress", "fraction": fraction,
                              "message": str(message)[:500]})


Handler = Callable[[TaskContext], dict]


def _np(a: S.Array | None) -> Any:
    return None if a is None else a.to_numpy()


def _call_task(ctx: TaskContext, name: str, *args: Any, **kwargs: Any) -> Any:
    tasks = ctx.server.tasks()
    fn = getattr(tasks, name, None)
    if fn is None:
        raise RequestFailed(S.INTERNAL, f"this backend has no task {name!r} (backend.tasks is incomplete)")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return fn(ctx.server.prior(), *args, progress=ctx.progress, should_cancel=ctx.should_cancel, **kwargs)


def _get(result: Any, key: str) -> Any:
    return result[key] if isinstance(result, dict) else getattr(result, key)


def h_load(ctx: TaskContext) -> dict:
    """Load (or keep) the weights on the requested device."""
    req: S.LoadRequest = ctx.request  # type: ignore[assignment]
    already = ctx.server.load_weights(req.path, req.device)
    st = ctx.server.state
    return {"weights_path": st.weights_path, "weights_sha256": st.weights_sha256, "device": st.device,
            "device_name": st.device_name, "device_note": st.device_note, "joint_names": st.joint_names,
            "already_loaded": already}


def h_sample(ctx: TaskContext) -> dict:
    """``tasks.sample`` -> poses (n, 63)."""
    r: S.SampleRequest = ctx.request  # type: ignore[assignment]
    return {"poses": _call_task(ctx, "sample", r.n, sampler=r.sampler, steps=r.steps, seed=r.seed)}


def h_variations(ctx: TaskContext) -> dict:
    """``tasks.variations`` -> poses (n, 63)."""
    r: S.VariationsRequest = ctx.request  # type: ignore[assignment]
    return {"poses": _call_task(ctx, "variations", _np(r.pose).reshape(-1), r.strength, r.n, sampler=r.sampler,
                                steps=r.steps, seed=r.seed)}


def h_inbetween(ctx: TaskContext) -> dict:
    """``tasks.inbetween`` -> poses, root_orient."""
    r: S.InbetweenRequest = ctx.request  # type: ignore[assignment]
    out = _call_task(ctx, "inbetween", _np(r.keys), r.n_frames, ease=r.ease, root_orient=_np(r.root_orient),
                     steps=r.steps, seed=r.seed)
    if not isinstance(out, dict):
        out = {"poses": out}
    return {"poses": out["poses"], "root_orient": out.get("root_orient")}


def h_complete(ctx: TaskContext) -> dict:
    """``tasks.complete`` -> poses (N, H, 63), scores (N, H), root_orient."""
    r: S.CompleteRequest = ctx.request  # type: ignore[assignment]
    import numpy as np

    keep: Any = np.asarray(r.keep, dtype=bool) if isinstance(r.keep[0], bool) else list(r.keep)
    out = _call_task(ctx, "complete", _np(r.pose), keep, n_hypotheses=r.n_hypotheses, steps=r.steps,
                     seed=r.seed, root_orient=_np(r.root_orient))
    poses, scores = np.asarray(_get(out, "poses")), np.asarray(_get(out, "scores"))
    if poses.ndim == 2:  # a single (63,) pose may come back without the N axis
        poses, scores = poses[None], scores.reshape(1, -1)
    ro = out.get("root_orient") if isinstance(out, dict) else None
    return {"poses": poses, "scores": scores, "root_orient": None if ro is None else np.asarray(ro).reshape(-1, 3)}


def h_denoise(ctx: TaskContext) -> dict:
    """``tasks.denoise`` on joints (T, 22, 3) or poses (T, 63)."""
    r: S.DenoiseRequest = ctx.request  # type: ignore[assignment]
    x = _np(r.joints) if r.joints is not None else _np(r.poses)
    out = _call_task(ctx, "denoise", x, root_orient=_np(r.root_orient), trans=_np(r.trans), noise_mm=r.noise_mm,
                     seed=r.seed)
    nm = _get(out, "noise_mm")
    return {"poses": _get(out, "poses"), "joints": _get(out, "joints"), "noise_mm": None if nm is None else float(nm),
            "root_orient": out.get("root_orient") if isinstance(out, dict) else None,
            "trans": out.get("trans") if isinstance(out, dict) else None}


def h_score(ctx: TaskContext) -> dict:
    """``tasks.score`` -> per-pose and per-joint scores."""
    r: S.ScoreRequest = ctx.request  # type: ignore[assignment]
    out = _call_task(ctx, "score", _np(r.poses), seed=r.seed)
    return {"pose": _get(out, "pose"), "joints": _get(out, "joints")}


def h_retarget_bvh(ctx: TaskContext) -> dict:
    """Read a BVH file and retarget it onto SMPL (``backend.data``)."""
    r: S.RetargetBvhRequest = ctx.request  # type: ignore[assignment]
    try:
        from backend.data.bvh import read_bvh
        from backend.data.retarget import retarget_bvh
    except ImportError as exc:
        raise RequestFailed(S.INTERNAL, f"BVH retargeting is not available in this backend ({_one_line(exc)})")
    from backend.data.bvh import parse_bvh

    ctx.progress(0.0, "reading BVH")
    shown = S.clip(r.path, 200)
    text = _read_regular(r.path, "BVH file").decode("utf-8", errors="replace")
    try:
        motion = parse_bvh(text)
    except (ValueError, OSError, IndexError, KeyError) as exc:
        raise RequestFailed(S.BAD_INPUT, f"cannot read BVH file {shown}: {_one_line(exc)}")
    del text
    ctx.progress(0.5, "retargeting")
    try:
        out = retarget_bvh(motion, family=r.family, fps=r.fps, name=Path(r.path).stem)
    except (ValueError, KeyError) as exc:
        raise RequestFailed(S.BAD_INPUT, f"cannot retarget {shown}: {_one_line(exc)}")
    return {"body_pose": _get(out, "body_pose"), "root_orient": _get(out, "root_orient"),
            "trans": _get(out, "trans"), "fps": float(_get(out, "fps"))}


def h_read_amass(ctx: TaskContext) -> dict:
    """Read an AMASS ``.npz`` (``backend.data.amass``)."""
    r: S.ReadAmassRequest = ctx.request  # type: ignore[assignment]
    try:
        from backend.data.amass import read_amass
    except ImportError as exc:
        raise RequestFailed(S.INTERNAL, f"AMASS reading is not available in this backend ({_one_line(exc)})")
    import io

    data = _read_regular(r.path, "AMASS file")
    try:
        m = read_amass(io.BytesIO(data), fps=r.fps)
    except (ValueError, OSError, KeyError) as exc:
        raise RequestFailed(S.BAD_INPUT, f"cannot read AMASS file {S.clip(r.path, 200)}: {_one_line(exc)}")
    gender = getattr(m, "gender", None)
    return {"body_pose": m.body_pose, "root_orient": m.root_orient, "trans": m.trans, "fps": float(m.fps),
            "betas": getattr(m, "betas", None), "gender": None if gender is None else str(gender)}


def photo_features() -> dict:
    """hello's ``features``: whether pose-from-a-photo can run here (mediapipe installed), and if not the
    one-line install hint, so the client can grey the button out."""
    try:
        from backend.photo.api import photo_features as features

        return features()
    except Exception as exc:  # noqa: BLE001  a hello must never fail
        log.exception("photo features unavailable")
        return {"fit_image": {"available": False, "message": f"pose from a photo cannot be loaded ({_one_line(exc)})"}}


def h_fit_image(ctx: TaskContext) -> dict:
    """Pose from a photo (``backend.photo``): ranked hypotheses; ``feature_unavailable`` without mediapipe."""
    r: S.FitImageRequest = ctx.request  # type: ignore[assignment]
    from backend.photo import api as photo

    ok, msg = photo.photo_available()
    if not ok:
        raise RequestFailed(S.FEATURE_UNAVAILABLE, msg)
    model = None if r.smpl_model is None else os.path.expanduser(r.smpl_model)
    if model is not None and not os.path.isfile(model):
        raise RequestFailed(S.BAD_INPUT, f"SMPL model file {S.clip(r.smpl_model, 200)} does not exist or is not a regular file")
    try:
        out = photo.fit_image(ctx.server.prior(), os.path.expanduser(r.path), n_hypotheses=r.n_hypotheses,
                              seed=0 if r.seed is None else r.seed, smpl_model=model, focal_px=r.focal_px,
                              progress=ctx.progress, should_cancel=ctx.should_cancel)
    except photo.PhotoUnavailable as exc:
        raise RequestFailed(S.FEATURE_UNAVAILABLE, _one_line(exc))
    except (photo.ImageError, photo.NoPerson) as exc:
        raise RequestFailed(S.BAD_INPUT, _one_line(exc))
    except photo.FitCancelled:
        raise Cancelled() from None
    out.pop("landmarks", None)
    out.pop("detect_seconds", None)
    return out


HANDLERS: dict[str, Handler] = {
    "load": h_load, "sample": h_sample, "variations": h_variations, "inbetween": h_inbetween,
    "complete": h_complete, "denoise": h_denoise, "score": h_score,
    "retarget_bvh": h_retarget_bvh, "read_amass": h_read_amass, "fit_image": h_fit_image,
}
"""Queued request types -> handler. Control types (hello, ping, cancel, shutdown) live in the dispatcher."""

PATH_FIELDS: dict[str, tuple[str, str, str, str]] = {
    "retarget_bvh": ("path", "BVH file", S.BAD_INPUT, S.BAD_INPUT),
    "read_amass": ("path", "AMASS file", S.BAD_INPUT, S.BAD_INPUT),
    "load": ("path", "weights file", S.WEIGHTS_MISSING, S.WEIGHTS_INVALID),
    "fit_image": ("path", "image file", S.BAD_INPUT, S.BAD_INPUT)}
"""Request fields naming input files (field, what, code when missing, code when not a regular file):
each must be a readable regular file before the request is queued (checked with a non-blocking open,
so a FIFO cannot hang the reader)."""


# ------------------------------------------------------------------------------------------
# The server
# ------------------------------------------------------------------------------------------

@dataclass
class _Job:
    request: S.Request
    cancel_event: threading.Event = field(default_factory=threading.Event)


class Server:
    """The protocol loop. ``out_fd`` is the (saved) real stdout; ``args`` the parsed CLI options."""

    def __init__(self, out_fd: int, args: argparse.Namespace) -> None:
        self.out_fd = out_fd
        self.args = args
        self.write_lock = threading.Lock()
        self.dispatch_lock = threading.Lock()
        self.ready = False                       # hello sent: lines are dispatched as they arrive
        self.early_lines: list[Any] = []         # lines read before hello
        self.done = threading.Event()            # shutdown / EOF handled: main() exits
        self.queue: "collections.deque[_Job]" = collections.deque()
        self.queue_cv = threading.Condition()
        self.running: _Job | None = None
        self.stopping = threading.Event()
        self.state = EngineState(requested_device=args.device)
        self._tasks: ModuleType | None = None
        self.hello: dict = {}

    # -- output -------------------------------------------------------------------------------
    def send(self, obj: dict) -> None:
        """Write one protocol line to the real stdout (thread-safe). A dead reader ends the process."""
        try:
            data = S.dumps(obj)
        except (ValueError, TypeError) as exc:  # NaN in a result or an unencodable value: a bug
            log.error("cannot encode reply %r: %s", {k: obj[k] for k in ("id", "type") if k in obj}, exc)
            data = S.dumps({"id": obj.get("id"), "type": "error", "code": S.INTERNAL,
                            "message": f"the backend produced a reply it cannot encode ({_one_line(exc)})"})
        with self.write_lock:
            view = memoryview(data)
            try:
                while view:
                    n = os.write(self.out_fd, view)
                    view = view[n:]
            except OSError:  # BrokenPipe: the client is gone
                log.info("stdout closed; exiting")
                os._exit(0)

    def send_error(self, rid: Any, code: str, message: str) -> None:
        """Send the final ``error`` reply for ``rid`` (the message cut to ``S.MAX_MESSAGE_CHARS``)."""
        if len(message) > S.MAX_MESSAGE_CHARS:
            message = message[:S.MAX_MESSAGE_CHARS - 3] + "..."
        self.send({"id": rid, "type": "error", "code": code, "message": message})

    def send_result(self, req: S.Request, values: dict, run_ms: float | None = None) -> None:
        """Send the final ``result`` reply for ``req`` (``values`` encoded through its typed result class)."""
        msg = {"id": req.id, "type": "result", "data": S.encode_result(req.TYPE, values)}
        if run_ms is not None:
            msg["run_ms"] = round(run_ms, 3)
        self.send(msg)

    # -- engine -------------------------------------------------------------------------------
    def tasks(self) -> ModuleType:
        """The tasks module (``backend.tasks`` or ``--tasks-module``), imported once."""
        if self._tasks is None:
            name = self.args.tasks_module
            try:
                if name.endswith(".py"):
                    spec = importlib.util.spec_from_file_location("dposer_server_tasks", name)
                    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
                    sys.modules["dposer_server_tasks"] = mod
                    spec.loader.exec_module(mod)  # type: ignore[union-attr]
                else:
                    mod = importlib.import_module(name)
                self._tasks = mod
            except Exception as exc:  # noqa: BLE001
                log.exception("cannot import tasks module %s", name)
                raise RequestFailed(S.INTERNAL, f"the backend's tasks module {name!r} cannot be imported "
                                                f"({_one_line(exc)}); see the server log") from None
        return self._tasks

    def prior(self) -> Any:
        """The loaded prior; loads the default weights on first need, else ``weights_missing``."""
        if self.state.prior is None:
            if self.args.weights or DEFAULT_WEIGHTS.is_file():
                self.load_weights(self.args.weights, self.state.requested_device)
            else:
                raise RequestFailed(S.WEIGHTS_MISSING,
                                    f"no weights are loaded and the default weights file {str(DEFAULT_WEIGHTS)!r} "
                                    "does not exist; send a load request with the path of a DPoser checkpoint")
        return self.state.prior

    def load_weights(self, path: str | None, device: str) -> bool:
        """Load ``path`` (default weights when None) on ``device``; returns True when already loaded."""
        p = Path(path or self.args.weights or DEFAULT_WEIGHTS).expanduser()
        fd = _open_regular(str(p), "weights file", S.WEIGHTS_MISSING, S.WEIGHTS_INVALID)
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if device != self.state.requested_device or not self.state.device:
            self.state.device, self.state.device_name, self.state.device_note = select_device(device)
            self.state.requested_device = device
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns, self.state.device)
        if self.state.prior is not None and self.state.weights_key == key:
            return True
        t0 = time.perf_counter()
        tasks = None
        try:
            tasks = self.tasks()
        except RequestFailed:
            pass
        loader = getattr(tasks, "load_prior", None)
        try:
            if loader is None:
                from backend.engine.checkpoint import CheckpointError
                from backend.engine.prior import PosePrior

                try:
                    prior = PosePrior.load(p, device=self.state.device)
                except CheckpointError as exc:
                    raise RequestFailed(S.WEIGHTS_INVALID, _one_line(exc)) from None
            else:
                prior = loader(str(p), self.state.device)
        except RequestFailed:
            raise
        except Exception as exc:  # noqa: BLE001
            if _is_oom(exc):
                raise
            log.exception("loading weights %s failed", p)
            raise RequestFailed(S.WEIGHTS_INVALID, f"cannot load weights {S.clip(str(p), 200)}: {_one_line(exc)}") from None
        self.state.prior = None  # drop the old one before hashing (memory)
        _free_memory()
        self.state.prior = prior
        self.state.weights_path = str(p)
        self.state.weights_sha256 = sha256_file(p)
        self.state.weights_key = key
        self.hello.pop("weights_error", None)
        skel = getattr(prior, "skeleton", None)
        names = list(getattr(skel, "names", ())[1:22]) if skel is not None else []
        self.state.joint_names = names if len(names) == 21 else self.default_joint_names()
        log.info("loaded %s (sha256 %s) on %s in %.2fs", p, self.state.weights_sha256[:12], self.state.device,
                 time.perf_counter() - t0)
        return False

    @staticmethod
    def default_joint_names() -> list[str]:
        """The 21 body joint names of the built-in SMPL skeleton."""
        from dposer_core.skeleton import body_joint_names

        return list(body_joint_names())

    def make_hello(self) -> dict:
        """The ``hello`` message (wire form) for the current state."""
        import torch

        st = self.state
        return S.Hello(protocol=S.PROTOCOL_VERSION, backend_version=BACKEND_VERSION,
                       python_version=platform.python_version(), torch_version=torch.__version__,
                       device=st.device, device_name=st.device_name, device_note=st.device_note,
                       weights_path=st.weights_path, weights_sha256=st.weights_sha256,
                       weights_error=self.hello.get("weights_error"),
                       joint_names=st.joint_names or self.default_joint_names(), pid=os.getpid(),
                       requests=list(S.REQUEST_TYPES), features=photo_features()).to_json()

    # -- threads ------------------------------------------------------------------------------
    def start_reader(self, stream: Any) -> None:
        """Read stdin lines and dispatch them on this thread (buffered until hello); EOF arms the hard exit."""
        def run() -> None:
            while True:
                try:
                    line = stream.readline(S.MAX_LINE_BYTES + 1)
                except (OSError, ValueError):
                    line = b""
                except MemoryError:
                    line = b"\x00toolong"
                if not line:
                    break
                if len(line) > S.MAX_LINE_BYTES and not line.endswith(b"\n"):
                    while True:  # drain the rest of the oversized line
                        rest = stream.readline(1 << 20)
                        if not rest or rest.endswith(b"\n"):
                            break
                    line = b"\x00toolong"
                self._offer(line)
                if self.done.is_set():
                    return
            log.info("stdin closed")
            self.arm_hard_exit("stdin closed")
            self._offer(_EOF)

        threading.Thread(target=run, name="reader", daemon=True).start()

    def arm_hard_exit(self, reason: str, delay: float = EOF_EXIT_S) -> None:
        """Exit the process after ``delay`` seconds whatever else is going on."""
        self.stopping.set()

        def bye() -> None:
            time.sleep(delay)
            log.info("exiting (%s)", reason)
            logging.shutdown()
            os._exit(0)

        threading.Thread(target=bye, name="exit-timer", daemon=True).start()

    def start_watchdog(self, parent_pid: int | None) -> None:
        """Exit when the parent process is gone (we were re-parented)."""
        expected = parent_pid if parent_pid else os.getppid()

        def run() -> None:
            while True:
                time.sleep(0.2)
                if os.getppid() != expected:
                    log.warning("parent process %d is gone; exiting", expected)
                    os._exit(0)

        if hasattr(os, "getppid") and sys.platform != "win32":
            threading.Thread(target=run, name="watchdog", daemon=True).start()

    def start_worker(self) -> None:
        """Start the thread that runs queued requests one at a time."""
        threading.Thread(target=self._worker, name="worker", daemon=True).start()

    # -- worker -------------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            with self.queue_cv:
                while not self.queue:
                    self.queue_cv.wait()
                job = self.queue.popleft()
                self.running = job
            try:
                self._run_job(job)
            finally:
                with self.queue_cv:
                    self.running = None
                    self.queue_cv.notify_all()

    def _run_job(self, job: _Job) -> None:
        req = job.request
        ctx = TaskContext(self, req, job.cancel_event)
        t0 = time.perf_counter()
        try:
            if ctx.should_cancel():
                raise Cancelled()
            values = HANDLERS[req.TYPE](ctx)
            run_ms = 1e3 * (time.perf_counter() - t0)
            if ctx.should_cancel() and req.TYPE != "load":
                raise Cancelled()
            bad = _nonfinite_fields(values)
            if bad:
                log.warning("%s #%s produced non-finite %s", req.TYPE, req.id, ", ".join(bad))
                raise RequestFailed(S.BAD_INPUT, f"{req.TYPE} produced NaN or infinite values ({', '.join(bad)}) "
                                                 "for this input; check that the input is in range (axis-angle "
                                                 "in radians, positions in metres)")
            self.send_result(req, values, run_ms)
            log.debug("%s #%s done in %.1f ms", req.TYPE, req.id, 1e3 * (time.perf_counter() - t0))
        except Cancelled:
            self.send_error(req.id, S.CANCELLED, f"{req.TYPE} request {req.id} was cancelled")
        except RequestFailed as exc:
            self.send_error(req.id, exc.code, exc.message)
        except S.ProtocolError as exc:
            self.send_error(req.id, exc.code, exc.message)
        except BaseException as exc:  # noqa: BLE001  one request never takes the server down
            if isinstance(exc, S.TaskCancelled):
                self.send_error(req.id, S.CANCELLED, f"{req.TYPE} request {req.id} was cancelled")
            elif isinstance(exc, S.BadInput):
                self.send_error(req.id, S.BAD_INPUT, _one_line(exc))
            elif _is_oom(exc):
                log.warning("%s #%s ran out of memory: %s", req.TYPE, req.id, _one_line(exc))
                exc = None  # drop frames that hold tensors
                _free_memory()
                self.send_error(req.id, S.OUT_OF_MEMORY, oom_advice(req.TYPE, self.state.device))
            elif isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            else:
                log.error("%s #%s failed:\n%s", req.TYPE, req.id, traceback.format_exc())
                self.send_error(req.id, S.INTERNAL, f"{req.TYPE} failed with an internal error "
                                                    f"({name}); the traceback is in the server log")

    # -- dispatcher ---------------------------------------------------------------------------
    def _offer(self, item: Any) -> None:
        """From the reader: dispatch now, or keep for :meth:`serve` while hello is not out yet."""
        with self.dispatch_lock:
            if self.done.is_set():
                return
            if not self.ready:
                self.early_lines.append(item)
                return
            self._dispatch_item(item)

    def serve(self) -> None:
        """Called once hello is sent: dispatch what arrived early, then wait until told to stop.

        Dispatch runs on the reader thread (one thread hop less per request than a separate
        dispatcher); the worker runs the queued requests.
        """
        with self.dispatch_lock:
            self.ready = True
            for item in self.early_lines:
                if self.done.is_set():
                    break
                self._dispatch_item(item)
            self.early_lines.clear()
        self.done.wait()

    def _dispatch_item(self, item: Any) -> None:
        """Validate one line, answer control requests, queue the rest (caller holds dispatch_lock)."""
        if item is _EOF:
            self.stop("stdin closed", reply_to=None)
            self.done.set()
            return
        try:
            if self.dispatch_line(item):
                self.done.set()
        except BaseException as exc:  # noqa: BLE001
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                code = S.OUT_OF_MEMORY if _is_oom(exc) else S.INTERNAL
                log.error("dispatch failed:\n%s", traceback.format_exc())
                exc = None
                _free_memory()
                self.send_error(None, code, "the request could not be read (" +
                                ("out of memory" if code == S.OUT_OF_MEMORY else "internal error; see the server log") + ")")

    def dispatch_line(self, line: bytes) -> bool:
        """Handle one input line; returns True when the server should stop reading."""
        if line == b"\x00toolong":
            self.send_error(None, S.BAD_REQUEST, f"request line longer than {S.MAX_LINE_BYTES} bytes; "
                                                 "send large arrays through a file")
            return False
        if not line.strip():
            return False  # blank lines are ignored (keep-alive)
        req: S.Request | None = None
        try:
            req = S.parse_request(line)
            if req.TYPE == "complete":
                req.validate(self.state.joint_names or self.default_joint_names())
            self._check_paths(req)
        except S.ProtocolError as exc:
            rid = exc.request_id if exc.request_id is not None or req is None else req.id
            self.send_error(rid, exc.code, exc.message)
            return False
        if req.TYPE == "hello":
            try:
                S.check_protocol(req.protocol, side="client")  # type: ignore[attr-defined]
            except S.ProtocolError as exc:
                log.error("%s", exc.message)
                self.send_error(req.id, exc.code, exc.message)
                return False
            self.send_result(req, self.make_hello())
        elif req.TYPE == "ping":
            with self.queue_cv:
                busy, queued = self.running is not None, len(self.queue)
            self.send_result(req, {"pong": True, "busy": busy, "queued": queued})
        elif req.TYPE == "cancel":
            self.cancel(req)
        elif req.TYPE == "shutdown":
            self.stop("shutdown request", reply_to=req)
            return True
        else:
            with self.queue_cv:
                self.queue.append(_Job(req))
                self.queue_cv.notify_all()
        return False

    def _check_paths(self, req: S.Request) -> None:
        spec = PATH_FIELDS.get(req.TYPE)
        if spec is None:
            return
        name, what, code, bad_code = spec
        path = getattr(req, name)
        if path is None:
            return
        try:
            os.close(_open_regular(os.path.expanduser(path), what, code, bad_code))
        except RequestFailed as exc:
            raise S.ProtocolError(exc.code, exc.message, req.id) from None
        if req.TYPE == "fit_image":  # image files only (magic bytes), refused before queueing
            from backend.photo.image_io import ImageError, check_image_file

            try:
                check_image_file(os.path.expanduser(path))
            except ImageError as exc:
                raise S.ProtocolError(S.BAD_INPUT, _one_line(exc), req.id) from None

    def cancel(self, req: S.CancelRequest) -> None:
        """Drop a queued target or flag a running one; the cancel request itself gets a result."""
        state = "unknown"
        dropped: _Job | None = None
        with self.queue_cv:
            for job in self.queue:
                if job.request.id == req.target:
                    dropped = job
                    break
            if dropped is not None:
                self.queue.remove(dropped)
                state = "queued"
            elif self.running is not None and self.running.request.id == req.target:
                self.running.cancel_event.set()
                state = "running"
        if dropped is not None:
            self.send_error(dropped.request.id, S.CANCELLED,
                            f"{dropped.request.TYPE} request {dropped.request.id} was cancelled before it started")
        self.send_result(req, {"target": req.target, "state": state})

    def stop(self, reason: str, reply_to: S.Request | None) -> None:
        """Cancel everything, answer queued requests, reply to ``shutdown``, exit within ~1 s."""
        self.stopping.set()
        with self.queue_cv:
            dropped = list(self.queue)
            self.queue.clear()
            running = self.running
            if running is not None:
                running.cancel_event.set()
        for job in dropped:
            self.send_error(job.request.id, S.CANCELLED, f"{job.request.TYPE} request {job.request.id} was "
                                                         f"cancelled: the server is stopping ({reason})")
        # shutdown: give the running task a moment to answer "cancelled"; EOF: nobody is listening
        deadline = time.monotonic() + (0.6 if reply_to is not None else 0.0)
        with self.queue_cv:
            while self.running is not None and time.monotonic() < deadline:
                self.queue_cv.wait(0.05)
        if reply_to is not None:
            self.send_result(reply_to, {})
        log.info("stopping: %s", reason)


# ------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of ``python -m backend.server``."""
    p = argparse.ArgumentParser(prog="python -m backend.server", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=None, help="checkpoint to load at start (default: weights/dposer_cmu_bandai.pt "
                                                 "when present, else on the first load request)")
    p.add_argument("--device", default="auto", choices=S.DEVICES, help="auto = cuda > mps > cpu")
    p.add_argument("--log", default=None, help=f"log file (default: {default_log_path()})")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--tasks-module", default="backend.tasks",
                   help="module (or .py file) with the task functions (tests use a stub)")
    p.add_argument("--parent-pid", type=int, default=0, help="the client's pid (logged when it is not our parent)")
    p.add_argument("--pdeathsig", action="store_true",
                   help="Linux: be killed when the parent thread exits (only safe if it is the parent's main thread)")
    p.add_argument("--no-preload", action="store_true", help="do not load weights before hello")
    p.add_argument("--array-dir", default=None,
                   help='accept {"$array": ..., "file": ...} arrays from regular files inside this folder (the '
                        "client's private per-session temp folder); without it the file form is refused")
    return p.parse_args(argv)


def setup_logging(path: str | None, level: str) -> Path | None:
    """Log to a rotating file (and warnings to stderr); returns the file path, or None if unwritable."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    err.setFormatter(logging.Formatter("[dposer-server] %(levelname)s %(message)s"))
    root.addHandler(err)
    logging.captureWarnings(True)
    log_path = Path(path).expanduser() if path else default_log_path()
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(log_path, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
    except OSError as exc:
        log.warning("cannot write the log file %s (%s); logging to stderr only", log_path, exc)
        return None
    fh.setLevel(getattr(logging, level))
    fh.setFormatter(logging.Formatter("%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(fh)
    return log_path


def main(argv: list[str] | None = None) -> int:
    """Run the server until shutdown / stdin EOF (the process ends with ``os._exit``)."""
    args = parse_args(argv)
    # 1. Protect the protocol stream: keep the real stdout, point fd 1 (and sys.stdout) at stderr.
    sys.stdout.flush()
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if args.pdeathsig:
        set_pdeathsig()
    log_path = setup_logging(args.log, args.log_level)
    log.info("backend server %s starting (pid %d, python %s, log %s)", BACKEND_VERSION, os.getpid(),
             platform.python_version(), log_path)
    if args.array_dir:
        try:
            S.allow_array_files(args.array_dir)
        except ValueError as exc:
            log.warning("file arrays stay disabled: %s", exc)
    server = Server(out_fd, args)
    ppid = os.getppid() if hasattr(os, "getppid") else 0
    if args.parent_pid and ppid != args.parent_pid and sys.platform != "win32":
        # a wrapper (shell script, launcher) may sit between the client and us: watch our real parent
        log.warning("started by pid %d, not by the client (pid %d); watching pid %d", ppid, args.parent_pid, ppid)
    server.start_watchdog(ppid or None)
    stdin = sys.stdin.buffer
    server.start_reader(stdin)
    # 2. torch, device, (optionally) weights, then hello.
    import torch  # noqa: F401  (slow: the reader and watchdog already run)

    server.state.device, server.state.device_name, server.state.device_note = select_device(args.device)
    if server.state.device_note:
        log.warning("%s", server.state.device_note)
    try:
        server.tasks()
    except RequestFailed as exc:
        log.warning("%s", exc.message)
    if not args.no_preload and (args.weights or DEFAULT_WEIGHTS.is_file()):
        try:
            server.load_weights(args.weights, args.device)
        except RequestFailed as exc:
            log.warning("weights not loaded at start: %s", exc.message)
            server.hello["weights_error"] = {"code": exc.code, "message": exc.message}
        except Exception as exc:  # noqa: BLE001
            log.exception("weights not loaded at start")
            code = S.OUT_OF_MEMORY if _is_oom(exc) else S.WEIGHTS_INVALID
            server.hello["weights_error"] = {"code": code, "message": _one_line(exc)}
    server.send(server.make_hello())
    server.start_worker()
    server.serve()
    logging.shutdown()
    os._exit(0)  # do not wait for daemon threads stuck in C code

