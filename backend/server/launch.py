"""``python -m backend.server``: command-line options, logging, and the start-up order of the server."""

from __future__ import annotations

import argparse
import ctypes
import logging
import logging.handlers
import os
import platform
import signal
import sys
from pathlib import Path
from types import ModuleType

from backend import DEFAULT_WEIGHTS
from backend import __version__ as BACKEND_VERSION
from dposer_core import protocol as S
from dposer_core.constants import DEVICES, default_log_path

from .device import is_oom, select_device
from .dispatch import Server
from .transport import Output, one_line, protect_stdout
from .weights import LoadPrior, Weights, load_pose_prior

log = logging.getLogger("dposer.server")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of ``python -m backend.server``."""
    p = argparse.ArgumentParser(prog="python -m backend.server",
                                description="The JSON-lines subprocess server the Blender extension talks to.")
    p.add_argument("--weights", default=None, help="checkpoint to load at start (default: weights/dposer_cmu_bandai.pt "
                                                 "when present, else on the first load request)")
    p.add_argument("--device", default="auto", choices=DEVICES, help="auto = cuda > mps > cpu")
    p.add_argument("--log", default=None, help=f"log file (default: {default_log_path()})")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
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


def _import_tasks() -> ModuleType | None:
    """``backend.tasks`` (None, logged, when it cannot be imported: hello still goes out)."""
    try:
        from backend import tasks
    except Exception:  # noqa: BLE001
        log.exception("cannot import backend.tasks")
        return None
    return tasks


def main(argv: list[str] | None = None, tasks: ModuleType | None = None,
         load_prior: LoadPrior = load_pose_prior) -> int:
    """Run the server until shutdown / stdin EOF (the process ends with ``os._exit``).

    ``tasks``: the module whose functions the handlers call (default ``backend.tasks``);
    ``load_prior``: how a checkpoint is loaded. Tests pass stand-ins for both.
    """
    args = parse_args(argv)
    # 1. Protect the protocol stream: keep the real stdout, point fd 1 (and sys.stdout) at stderr.
    out = Output(protect_stdout())
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
    weights = Weights(args.weights, args.device, load_prior)
    server = Server(out, weights, tasks)
    ppid = os.getppid() if hasattr(os, "getppid") else 0
    if args.parent_pid and ppid != args.parent_pid and sys.platform != "win32":
        # a wrapper (shell script, launcher) may sit between the client and us: watch our real parent
        log.warning("started by pid %d, not by the client (pid %d); watching pid %d", ppid, args.parent_pid, ppid)
    server.start_watchdog(ppid or None)
    server.start_reader(sys.stdin.buffer)
    # 2. torch, device, tasks, (optionally) weights, then hello.
    import torch  # noqa: F401  (slow: the reader and watchdog already run)

    st = weights.state
    st.device, st.device_name, st.device_note = select_device(args.device)
    if st.device_note:
        log.warning("%s", st.device_note)
    if server.tasks is None:
        server.tasks = _import_tasks()
    if not args.no_preload and (args.weights or DEFAULT_WEIGHTS.is_file()):
        try:
            weights.load(args.weights, args.device)
        except S.ProtocolError as exc:
            log.warning("weights not loaded at start: %s", exc.message)
            st.weights_error = {"code": exc.code, "message": exc.message}
        except Exception as exc:  # noqa: BLE001
            log.exception("weights not loaded at start")
            code = S.OUT_OF_MEMORY if is_oom(exc) else S.WEIGHTS_INVALID
            st.weights_error = {"code": code, "message": one_line(exc)}
    out.send(server.make_hello())
    server.start_worker()
    server.serve()
    logging.shutdown()
    os._exit(0)  # do not wait for daemon threads stuck in C code
