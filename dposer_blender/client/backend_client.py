"""``BackendClient``: starts ``python -m backend.server`` lazily and talks JSON lines to it.

bpy-free and torch-free (numpy is used, as in Blender). The request API lives here; one server process
with its reader / writer / stderr / liveness threads is a :class:`~.session.Session`, one pending reply a
:class:`~.futures.RequestFuture`. Callbacks registered on futures run on the reader thread: in Blender,
do not touch ``bpy`` from them; poll ``future.done()`` / ``future.progress`` from a timer or modal
operator instead.

Requests are validated before anything is sent by building them with the protocol's registry
(``dposer_core.protocol.make_request``), exactly as the server validates them.

Crashes: when the server dies, every pending request fails with :class:`BackendCrashed`. The next
request starts a fresh server; if that one crashes too before any task request succeeded, the client
stops restarting and raises until :meth:`BackendClient.restart` is called.

Each server runs with ``-B`` / ``PYTHONDONTWRITEBYTECODE=1`` (no ``.pyc`` files in the installed
extension) in a private per-session temp folder as its working directory; the same folder is its
``--array-dir``, the only place ``{"$array": ..., "file": ...}`` arrays are read from.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import weakref
from typing import Any

from ..dposer_core import protocol as S
from ..dposer_core.constants import default_log_path
from .discovery import PythonNotFound, clean_env, find_python
from .errors import CRASHED, TIMEOUT, UNAVAILABLE, BackendCrashed, BackendError, BackendUnavailable
from .futures import ProgressCallback, RequestFuture
from .locate import backend_root
from .session import LIVENESS_INTERVAL_S, LIVENESS_TIMEOUT_S, CrashCount, Session

__all__ = ["BackendClient"]

log = logging.getLogger("dposer.client")


_clients: "weakref.WeakSet[BackendClient]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for c in list(_clients):
        try:
            c.close(timeout=1.0)
        except Exception:  # noqa: BLE001
            pass


class BackendClient:
    """The extension's handle on the backend server (one per Blender session is plenty).

    Args:
        python: the add-on preference (python executable or venv folder); empty -> discovery.
        weights: checkpoint path for the server to load at start (None: the shipped default).
        device: "auto" (cuda > mps > cpu), "cuda", "mps" or "cpu".
        log_path: server log file (None: ``<user cache>/dposer/server.log``).
        numpy: return result arrays as numpy (True) or as ``dposer_core.protocol.Array`` (False).
        server_args: extra command-line arguments for ``python -m backend.server``.
        env: extra environment variables for the server.
        liveness_interval / liveness_timeout: while a request is pending, ping a server silent for
            ``liveness_interval`` s, and kill one silent for ``liveness_timeout`` s (see the module doc).

    Nothing starts until the first request (or :meth:`start`). Never call it from a UI draw
    callback: starting runs a process and may take seconds (torch import).
    """

    def __init__(self, python: str | None = None, *, weights: str | None = None, device: str = "auto",
                 log_path: str | None = None, numpy: bool = True, server_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, liveness_interval: float = LIVENESS_INTERVAL_S,
                 liveness_timeout: float = LIVENESS_TIMEOUT_S) -> None:
        S.make_request("load", 0, device=device)  # validates the device (ProtocolError is a ValueError)
        if not 0 < liveness_interval <= liveness_timeout:
            raise ValueError("need 0 < liveness_interval <= liveness_timeout")
        self.liveness_interval = float(liveness_interval)
        self.liveness_timeout = float(liveness_timeout)
        self.python = python
        self.weights = weights
        self.device = device
        self.log_path = log_path
        self.numpy = numpy
        self.server_args = tuple(server_args)
        self.extra_env = dict(env or {})
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._session: Session | None = None
        self._crashes = CrashCount()
        self._unavailable: BackendError | None = None
        _clients.add(self)

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        """True when a server process is up (never starts one)."""
        s = self._session
        return s is not None and s.alive

    @property
    def pid(self) -> int | None:
        """The server's process id, if started."""
        s = self._session
        return s.proc.pid if s is not None and s.proc.poll() is None else None

    @property
    def hello(self) -> dict | None:
        """The server's hello (protocol, versions, device, weights, joint names) once received."""
        s = self._session
        return s.hello if s is not None else None

    @property
    def state(self) -> str:
        """``"not_started"``, ``"starting"`` (spawned, no hello yet), ``"ready"`` or ``"error"``
        (the last server died or could not start; the next request restarts it unless
        :attr:`last_error` is a :class:`BackendUnavailable`). Never starts anything."""
        s = self._session
        if self._unavailable is not None:
            return "error"
        if s is None:
            return "not_started"
        if s.failure is not None or s.proc.poll() is not None:
            return "error"
        return "ready" if s.hello is not None else "starting"

    @property
    def last_error(self) -> BackendError | None:
        """Why the backend is not usable (crash / unavailable), or None."""
        if self._unavailable is not None:
            return self._unavailable
        s = self._session
        return s.failure if s is not None and s.failure is not None and not s.closing else None

    @property
    def crash_count(self) -> int:
        """Consecutive crashes without a successful request (2 stops automatic restarts)."""
        return self._crashes.count

    def stderr_tail(self) -> list[str]:
        """The last lines the server wrote to stderr."""
        s = self._session
        return list(s.stderr_tail) if s is not None else []

    @property
    def array_dir(self) -> str | None:
        """The running session's private temp folder: arrays written there with
        ``dposer_core.protocol.Array.to_file`` may be sent as ``{"$array": ..., "file": ...}`` (None: not started)."""
        s = self._session
        return s.work_dir if s is not None and s.alive else None

    @property
    def log_path_text(self) -> str:
        """The server log's path as quoted in messages (``log_path``, else the default one)."""
        return str(self.log_path) if self.log_path else str(default_log_path())

    def server_argv(self, python: str) -> list[str]:
        """The command line that starts the server with ``python`` (tests replace it to start a stub)."""
        # -B: never write .pyc files (into the installed extension's backend/ folder above all)
        argv = [python, "-B", "-m", "backend.server", "--device", self.device, "--parent-pid", str(os.getpid())]
        if self.weights:
            argv += ["--weights", str(self.weights)]
        if self.log_path:
            argv += ["--log", str(self.log_path)]
        if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
            argv.append("--pdeathsig")  # only safe when the starting thread lives as long as we do
        return argv + list(self.server_args)

    def _session_for_request(self) -> Session:
        """The live session, starting one if needed (restart-once policy after crashes)."""
        with self._lock:
            s = self._session
            if s is not None and s.alive:
                return s
            if self._unavailable is not None:
                raise self._unavailable
            if s is not None and s.failure is not None and isinstance(s.failure, BackendUnavailable):
                raise s.failure
            if self._crashes.count >= 2:
                raise BackendUnavailable(
                    UNAVAILABLE, "the DPoser backend crashed twice in a row, so it is not restarted "
                    f"automatically; see the log at {self.log_path_text} and use Restart backend. "
                    f"Last error: {s.failure.message if s and s.failure else 'unknown'}")
            try:
                py = find_python(self.python).executable
            except PythonNotFound as exc:
                raise BackendUnavailable(UNAVAILABLE, str(exc)) from None
            root = backend_root()
            env = clean_env()
            env.update({"PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8",
                        "PYTHONDONTWRITEBYTECODE": "1"})
            env.update(self.extra_env)
            # A private working folder outside the extension (nothing the server or a library writes
            # to its cwd lands in the installed add-on); it is also the only --array-dir.
            try:
                work = tempfile.mkdtemp(prefix="dposer-backend-")
            except OSError as exc:
                raise BackendUnavailable(UNAVAILABLE, f"cannot create a temporary folder for the backend: {exc}") from None
            argv = self.server_argv(py) + ["--array-dir", work]  # type: ignore[arg-type]
            log.info("starting backend: %s", " ".join(argv))
            S.allow_array_files(work)  # the client validates file arrays like the server
            try:
                s = Session(argv, env, work, ids=self._ids, crashes=self._crashes, log_path=self.log_path_text,
                            numpy=self.numpy, work_dir=work, liveness_interval=self.liveness_interval,
                            liveness_timeout=self.liveness_timeout)
            except OSError as exc:
                S.disallow_array_files(work)
                shutil.rmtree(work, ignore_errors=True)
                raise BackendUnavailable(UNAVAILABLE, f"cannot start the backend with {py}: {exc}") from None
            self._session = s
            # Introduce ourselves: the server checks our protocol major version.
            fut = RequestFuture(next(self._ids), "hello")
            s.send(fut, S.HelloRequest(id=fut.id, protocol=S.PROTOCOL_VERSION,
                                       client="dposer_blender").to_line())
            fut.add_done_callback(self._check_hello_reply)
            return s

    def _check_hello_reply(self, fut: RequestFuture) -> None:
        err = fut.exception(0)
        if err is not None and err.code == S.BAD_REQUEST:
            self._unavailable = BackendUnavailable(UNAVAILABLE, err.message)
            s = self._session
            if s is not None:
                s.fail(self._unavailable)
                s.terminate(grace=0.5)

    def start(self, timeout: float | None = 180.0) -> dict:
        """Start the server now (if needed) and wait for its hello; returns the hello dict."""
        s = self._session_for_request()
        if not s.hello_event.wait(timeout):
            raise BackendError(TIMEOUT, f"the DPoser backend did not start within {timeout:g} s; "
                                        f"see the log at {self.log_path_text}")
        if s.hello is None:
            raise s.failure or BackendCrashed(CRASHED, "the DPoser backend stopped before it said hello")
        return s.hello

    def restart(self) -> None:
        """Stop the server (if any) and forget past crashes; the next request starts a fresh one."""
        self.close()
        with self._lock:
            self._crashes.count = 0
            self._unavailable = None

    def close(self, timeout: float = 2.0) -> None:
        """Ask the server to shut down (stdin close fallback, then kill); pending requests fail."""
        with self._lock:
            s, self._session = self._session, None
        if s is None:
            return
        s.closing = True
        if s.proc.poll() is None:
            try:
                s.write(S.ShutdownRequest(id=next(self._ids)).to_line())
            except Exception:  # noqa: BLE001
                pass
            s.terminate(grace=timeout)
        s.fail(BackendError(UNAVAILABLE, "the DPoser backend was shut down"))

    def __enter__(self) -> "BackendClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------------
    def submit(self, request_type: str, /, *, progress: ProgressCallback | None = None,
               **params: Any) -> RequestFuture:
        """Send a request without waiting; returns its :class:`RequestFuture`.

        ``params`` mirror the task API (numpy arrays or lists for arrays). Invalid parameters
        raise :class:`BackendError` (``bad_request`` / ``bad_input``) here, before anything is sent.
        Starts the server if needed (process spawn only; the request waits in the pipe).
        """
        if request_type in ("hello",):
            raise BackendError(S.BAD_REQUEST, "hello is sent by the client itself")
        rid = next(self._ids)
        try:
            req = S.make_request(request_type, rid, **params)
        except S.ProtocolError as exc:
            raise BackendError(exc.code, exc.message, request_type, rid) from None
        line = req.to_line()
        fut = RequestFuture(rid, request_type, send_cancel=self._send_cancel)
        if progress is not None:
            fut.add_progress_callback(progress)
        s = self._session_for_request()
        try:
            s.send(fut, line)
        except BackendError as exc:
            fut.finish(error=exc)
        return fut

    def call(self, request_type: str, /, *, timeout: float | None = None,
             progress: ProgressCallback | None = None, **params: Any) -> Any:
        """Send a request and block for its typed result (``dposer_core.protocol.REQUESTS[type].result``).

        Raises :class:`BackendError` (with ``.code``) on any failure.
        """
        return self.submit(request_type, progress=progress, **params).result(timeout)

    def _send_cancel(self, target: int) -> None:
        s = self._session
        if s is None or not s.alive:
            return
        s.send_control("cancel", target=target)

    # -- conveniences --------------------------------------------------------------------------
    def ping(self, timeout: float | None = 30.0) -> float:
        """Round-trip time of a ``ping`` in seconds (starts the server if needed)."""
        t0 = time.perf_counter()
        self.call("ping", timeout=timeout)
        return time.perf_counter() - t0

    def load(self, path: str | None = None, device: str = "auto", timeout: float | None = None) -> Any:
        """Load (or keep) weights; returns ``LoadResult`` (path, sha256, device, joint names)."""
        return self.call("load", path=path, device=device, timeout=timeout)

    def shutdown(self) -> None:
        """Alias of :meth:`close`."""
        self.close()
