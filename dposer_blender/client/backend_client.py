"""``BackendClient``: starts ``python -m backend.server`` lazily and talks JSON lines to it.

bpy-free and torch-free (numpy is used when available, as in Blender). Thread model:

* a **writer** thread sends request lines (so ``submit`` never blocks on a full pipe);
* a **reader** thread parses reply lines into each request's :class:`RequestFuture`
  (its progress queue and its final result/error);
* a **stderr** thread keeps the last lines of the server's stderr for error messages.

Callbacks registered on futures run on the reader thread: in Blender, do not touch ``bpy``
from them; poll ``future.done()`` / ``future.progress`` from a timer or modal operator instead.

Crashes: when the server dies, every pending request fails with :class:`BackendCrashed` (a clear
sentence with the exit status, the last stderr lines and the log path). The next request starts a
fresh server; if that one crashes too before any request succeeded, the client stops restarting
and raises until :meth:`BackendClient.restart` is called.

Liveness: while a request is pending, a **liveness** thread pings a server that has been silent
for ``liveness_interval`` seconds; one that answers nothing at all (no progress, no pong) for
``liveness_timeout`` seconds (stopped with SIGSTOP, hung in C code) is killed and reported as a
crash, so a ``result()`` without a timeout cannot wait forever.

Each server runs with ``-B`` / ``PYTHONDONTWRITEBYTECODE=1`` (no ``.pyc`` files in the installed
extension) in a private per-session temp folder as its working directory; the same folder is its
``--array-dir``, the only place ``{"$array": ..., "file": ...}`` arrays are read from.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import Any, Callable

from ..dposer_core import protocol as S
from .locate import backend_root
from .discovery import PythonNotFound, clean_env, find_python

log = logging.getLogger("dposer.client")


# Client-side error codes (in addition to the protocol's, see schema.ERROR_CODES)
CRASHED = "backend_crashed"
UNAVAILABLE = "backend_unavailable"
TIMEOUT = "timeout"

ProgressCallback = Callable[[float, str], None]
DIRECT_WRITE_MAX = 16 * 1024
CONTROL_TYPES = frozenset({"hello", "ping", "cancel", "shutdown"})
LIVENESS_INTERVAL_S = 5.0
"""A server silent this long while a request is pending gets a ``ping``."""
LIVENESS_TIMEOUT_S = 30.0
"""A server silent this long while a request is pending (no progress, no pong) is killed as hung."""


class BackendError(RuntimeError):
    """A request failed. ``code`` is a protocol error code (``bad_input``, ``cancelled``, ...) or
    one of ``backend_crashed`` / ``backend_unavailable`` / ``timeout``; ``message`` a sentence."""

    def __init__(self, code: str, message: str, request_type: str | None = None,
                 request_id: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_type = request_type
        self.request_id = request_id


class BackendCrashed(BackendError):
    """The server process died while requests were pending (or before it said hello)."""


class BackendUnavailable(BackendError):
    """The backend cannot be started: no usable Python, incompatible protocol, or it crashed twice."""


class RequestFuture:
    """The pending reply to one request: progress, cancel, and finally a typed result or an error."""

    def __init__(self, client: "BackendClient", request_id: int, request_type: str) -> None:
        self.id = request_id
        self.type = request_type
        self._client = client
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._result: Any = None
        self._error: BackendError | None = None
        self._progress: tuple[float, str] = (0.0, "")
        self._progress_queue: "collections.deque[tuple[float, str]]" = collections.deque(maxlen=1000)
        self._callbacks: list[Callable[["RequestFuture"], None]] = []
        self._progress_callbacks: list[ProgressCallback] = []
        self.submitted_at = time.monotonic()
        self.finished_at: float | None = None
        self.server_run_ms: float | None = None
        """How long the server spent running this request (from its result), for overhead measurements."""

    # -- state ---------------------------------------------------------------------------------
    def done(self) -> bool:
        """True once a result or error arrived."""
        return self._event.is_set()

    @property
    def progress(self) -> tuple[float, str]:
        """The latest (fraction in [0, 1], message)."""
        return self._progress

    def drain_progress(self) -> list[tuple[float, str]]:
        """All progress events received since the last drain (oldest first)."""
        out = []
        while True:
            try:
                out.append(self._progress_queue.popleft())
            except IndexError:
                return out

    def result(self, timeout: float | None = None) -> Any:
        """Block until done; the typed result (arrays as numpy) or raise :class:`BackendError`.

        On ``timeout`` the request is cancelled and ``BackendError(code="timeout")`` is raised.
        """
        if not self._event.wait(timeout):
            self.cancel()
            raise BackendError(TIMEOUT, f"{self.type} request {self.id} got no reply within {timeout:g} s "
                                        "(it was cancelled)", self.type, self.id)
        if self._error is not None:
            raise self._error
        return self._result

    def exception(self, timeout: float | None = None) -> BackendError | None:
        """Block until done; the error, or None on success."""
        self._event.wait(timeout)
        return self._error

    def cancel(self) -> bool:
        """Ask the server to cancel this request (queued: dropped; running: stops within one step).

        The future then completes with ``BackendError(code="cancelled")`` (or with its result if
        it finished first). Returns False when it was already done.
        """
        if self.done():
            return False
        self._client._send_cancel(self.id)
        return True

    def add_done_callback(self, fn: Callable[["RequestFuture"], None]) -> None:
        """Call ``fn(future)`` when done (on the reader thread; at once if already done)."""
        with self._lock:
            if not self.done():
                self._callbacks.append(fn)
                return
        fn(self)

    def add_progress_callback(self, fn: ProgressCallback) -> None:
        """Call ``fn(fraction, message)`` for each progress event (on the reader thread)."""
        self._progress_callbacks.append(fn)

    # -- completion (reader thread) ------------------------------------------------------------
    def _set_progress(self, fraction: float, message: str) -> None:
        self._progress = (fraction, message)
        self._progress_queue.append((fraction, message))
        for fn in list(self._progress_callbacks):
            try:
                fn(fraction, message)
            except Exception:  # noqa: BLE001
                log.exception("progress callback failed")

    def _finish(self, result: Any = None, error: BackendError | None = None) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._result, self._error = result, error
            self.finished_at = time.monotonic()
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            try:
                fn(self)
            except Exception:  # noqa: BLE001
                log.exception("done callback failed")

    def __repr__(self) -> str:
        state = "done" if self.done() else f"{self._progress[0]:.0%}"
        return f"<RequestFuture {self.type} #{self.id} {state}>"


class _Session:
    """One server process with its threads and pending requests."""

    def __init__(self, client: "BackendClient", argv: list[str], env: dict[str, str], cwd: str,
                 work_dir: str | None = None) -> None:
        self.client = client
        self.work_dir = work_dir             # private temp folder (cwd + --array-dir); removed at the end
        self.last_heard = time.monotonic()   # last line from the server, or the last request sent
        self.unresponsive = False            # set by the liveness thread before it kills the server
        self.pending: dict[int, RequestFuture] = {}
        self.lock = threading.Lock()
        self.hello: dict | None = None
        self.hello_event = threading.Event()
        self.failure: BackendError | None = None   # set when the session can no longer serve
        self.closing = False
        self.stderr_tail: "collections.deque[str]" = collections.deque(maxlen=40)
        self.out_queue: "queue.SimpleQueue[bytes | None]" = queue.SimpleQueue()
        self.write_lock = threading.Lock()
        self.queued = 0                  # lines handed to the writer thread and not yet written
        self.stdin_closed = False
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=cwd, bufsize=1 << 16, close_fds=True, **kwargs)
        # buffered pipes: a raw pipe's readline() reads one byte per system call (MB lines!)
        self.started_at = time.monotonic()
        self.threads = {name: threading.Thread(target=target, name=f"dposer-client-{name}", daemon=True)
                        for target, name in ((self._stderr_loop, "stderr"), (self._write_loop, "writer"),
                                             (self._liveness_loop, "liveness"), (self._read_loop, "reader"))}
        # the reader starts last: when the server dies at once, its _on_exit joins the stderr thread
        for t in self.threads.values():
            t.start()

    @property
    def alive(self) -> bool:
        """The process runs and nothing marked the session failed."""
        return self.failure is None and self.proc.poll() is None

    # -- threads -------------------------------------------------------------------------------
    def _write_all(self, data: bytes) -> None:
        """Write all of ``data`` to the server's stdin and flush (caller holds write_lock)."""
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(data)
        stdin.flush()

    def write(self, line: bytes) -> None:
        """Send one line. Small lines go straight into the pipe from the calling thread when nothing
        is queued (one thread hop less); large ones, and any before hello, go via the writer thread
        so the caller (Blender's UI thread) never blocks on a full pipe."""
        if self.hello is not None and len(line) <= DIRECT_WRITE_MAX:
            with self.write_lock:
                if self.queued == 0 and not self.stdin_closed:
                    try:
                        self._write_all(line)
                    except (OSError, ValueError):
                        self.stdin_closed = True  # the reader notices the exit and fails what is pending
                    return
        with self.write_lock:
            self.queued += 1
        self.out_queue.put(line)

    def _write_loop(self) -> None:
        while True:
            line = self.out_queue.get()
            if line is None:
                break
            with self.write_lock:
                self.queued -= 1
                if self.stdin_closed:
                    continue
                try:
                    self._write_all(line)
                except (OSError, ValueError):
                    self.stdin_closed = True
        with self.write_lock:
            self.stdin_closed = True
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass

    def _stderr_loop(self) -> None:
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(line)
            log.debug("server stderr: %s", line)

    def _read_loop(self) -> None:
        assert self.proc.stdout is not None
        try:
            for raw in iter(self.proc.stdout.readline, b""):
                self.last_heard = time.monotonic()
                try:
                    self._handle(raw)
                except Exception:  # noqa: BLE001  a bad line must not kill the reader
                    log.exception("cannot handle server line %r", raw[:200])
        finally:
            self._on_exit()

    def _handle(self, raw: bytes) -> None:
        msg = S.loads(raw)
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "hello":
            hello = S.Hello.from_json(msg, strict=False).to_json()
            try:
                S.check_protocol(hello["protocol"], side="server")
            except S.ProtocolError as exc:
                self.fail(BackendUnavailable(UNAVAILABLE, exc.message))
                self.terminate()
                return
            self.hello = hello
            self.hello_event.set()
            return
        rid = msg.get("id")
        fut = self.pending.get(rid) if isinstance(rid, int) else None
        if fut is None:
            if kind == "error":
                log.warning("server error without a pending request: %s", msg.get("message"))
            return
        if kind == "progress":
            fut._set_progress(float(msg.get("fraction", 0.0)), str(msg.get("message", "")))
        elif kind == "result":
            with self.lock:
                self.pending.pop(rid, None)
            try:
                res = S.parse_result(fut.type, msg.get("data") or {}, as_numpy=self.client.numpy)
            except S.ProtocolError as exc:
                fut._finish(error=BackendError(S.INTERNAL, f"the backend's {fut.type} result is malformed: "
                                                           f"{exc.message}", fut.type, rid))
                return
            if fut.type not in CONTROL_TYPES:  # a hello or pong does not prove the server can work
                self.client._crashes = 0
            run_ms = msg.get("run_ms")
            fut.server_run_ms = float(run_ms) if isinstance(run_ms, (int, float)) else None
            fut._finish(result=res)
        elif kind == "error":
            with self.lock:
                self.pending.pop(rid, None)
            code = msg.get("code") if msg.get("code") in S.ERROR_CODES else S.INTERNAL
            fut._finish(error=BackendError(code, str(msg.get("message", "")), fut.type, rid))

    def _on_exit(self) -> None:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self.threads["stderr"].join(timeout=1.0)  # its last lines go into the crash message
        if self.closing:
            err: BackendError = BackendError(UNAVAILABLE, "the DPoser backend was shut down")
        elif self.failure is not None:
            err = self.failure
        else:
            self.client._crashes += 1
            err = BackendCrashed(CRASHED, self.client._crash_message(self, code, self.busy_request()))
            log.error("%s", err.message)
        self.fail(err)
        self.out_queue.put(None)
        self.remove_work_dir()

    def busy_request(self) -> str | None:
        """"denoise request 7" for the oldest pending non-control request (the running one), else None."""
        with self.lock:
            busy = sorted((f for f in self.pending.values() if f.type not in CONTROL_TYPES), key=lambda f: f.id)
        if not busy:
            return None
        more = f" (and {len(busy) - 1} more queued)" if len(busy) > 1 else ""
        return f"{busy[0].type} request {busy[0].id}{more}"

    def remove_work_dir(self) -> None:
        """Delete the private temp folder (after the process is gone)."""
        if self.work_dir and self.proc.poll() is not None:
            self.client._unregister_array_dir(self.work_dir)
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def _liveness_loop(self) -> None:
        """Ping a silent server while requests are pending; kill one that stays silent (SIGSTOP, hang)."""
        c = self.client
        last_ping = 0.0
        while self.proc.poll() is None and self.failure is None and not self.closing:
            time.sleep(max(0.05, min(c.liveness_interval, c.liveness_timeout) / 4))
            if self.hello is None or self.busy_request() is None:
                continue
            now = time.monotonic()
            silent = now - self.last_heard
            if silent > c.liveness_timeout:
                self.unresponsive = True
                log.error("the backend (pid %s) answered nothing for %.1f s; killing it", self.proc.pid, silent)
                try:
                    self.proc.kill()  # SIGKILL also ends a stopped (SIGSTOP) process
                except OSError:
                    pass
                return
            if silent > c.liveness_interval and now - last_ping > c.liveness_interval:
                last_ping = now
                c._send_control(self, "ping")

    # -- control -------------------------------------------------------------------------------
    def fail(self, err: BackendError) -> None:
        """Mark the session unusable and fail everything pending with ``err``."""
        if self.failure is None:
            self.failure = err
        self.hello_event.set()
        with self.lock:
            futures, self.pending = list(self.pending.values()), {}
        for fut in futures:
            fut._finish(error=type(err)(err.code, err.message, fut.type, fut.id))

    def send(self, fut: RequestFuture, line: bytes) -> None:
        """Register ``fut`` as pending and send its line (raises the session's failure if any)."""
        with self.lock:
            if self.failure is not None:
                raise self.failure
            self.pending[fut.id] = fut
            if fut.type not in CONTROL_TYPES:
                self.last_heard = max(self.last_heard, time.monotonic())
        self.write(line)

    def terminate(self, grace: float = 2.0) -> None:
        """Close stdin (the server exits within 1 s), then terminate/kill if it lingers."""
        self.closing = self.closing or self.failure is None
        self.out_queue.put(None)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        self.remove_work_dir()


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
        numpy: return result arrays as numpy (True) or as ``schema.Array`` (False).
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
        if device not in S.DEVICES:
            raise ValueError(f"device must be one of {S.DEVICES}, got {device!r}")
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
        self._session: _Session | None = None
        self._crashes = 0
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
        return self._crashes

    def stderr_tail(self) -> list[str]:
        """The last lines the server wrote to stderr."""
        s = self._session
        return list(s.stderr_tail) if s is not None else []

    @property
    def array_dir(self) -> str | None:
        """The running session's private temp folder: arrays written there with
        ``schema.Array.to_file`` may be sent as ``{"$array": ..., "file": ...}`` (None: not started)."""
        s = self._session
        return s.work_dir if s is not None and s.alive else None

    def _unregister_array_dir(self, folder: str) -> None:
        try:
            S.disallow_array_files(folder)
        except Exception:  # noqa: BLE001  an older schema without array folders
            pass

    def _argv(self, python: str) -> list[str]:
        # -B: never write .pyc files (into the installed extension's backend/ folder above all)
        argv = [python, "-B", "-m", "backend.server", "--device", self.device, "--parent-pid", str(os.getpid())]
        if self.weights:
            argv += ["--weights", str(self.weights)]
        if self.log_path:
            argv += ["--log", str(self.log_path)]
        if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
            argv.append("--pdeathsig")  # only safe when the starting thread lives as long as we do
        return argv + list(self.server_args)

    def _session_for_request(self) -> _Session:
        """The live session, starting one if needed (restart-once policy after crashes)."""
        with self._lock:
            s = self._session
            if s is not None and s.alive:
                return s
            if self._unavailable is not None:
                raise self._unavailable
            if s is not None and s.failure is not None and isinstance(s.failure, BackendUnavailable):
                raise s.failure
            if self._crashes >= 2:
                raise BackendUnavailable(
                    UNAVAILABLE, "the DPoser backend crashed twice in a row, so it is not restarted "
                    f"automatically; see the log at {self._log_path_str()} and use Restart backend. "
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
            argv = self._argv(py) + ["--array-dir", work]  # type: ignore[arg-type]
            log.info("starting backend: %s", " ".join(argv))
            try:
                S.allow_array_files(work)  # the client validates file arrays like the server
            except Exception:  # noqa: BLE001
                pass
            try:
                s = _Session(self, argv, env, work, work_dir=work)
            except OSError as exc:
                self._unregister_array_dir(work)
                shutil.rmtree(work, ignore_errors=True)
                raise BackendUnavailable(UNAVAILABLE, f"cannot start the backend with {py}: {exc}") from None
            self._session = s
            # Introduce ourselves: the server checks our protocol major version.
            fut = RequestFuture(self, next(self._ids), "hello")
            s.send(fut, S.HelloRequest(id=fut.id, protocol=S.PROTOCOL_VERSION,
                                       client="dposer_blender").to_line())
            fut.add_done_callback(self._check_hello_reply)
            return s

    def _check_hello_reply(self, fut: RequestFuture) -> None:
        err = fut._error
        if err is not None and err.code == S.BAD_REQUEST:
            self._unavailable = BackendUnavailable(UNAVAILABLE, err.message)
            s = self._session
            if s is not None:
                s.fail(self._unavailable)
                s.terminate(grace=0.5)

    def _log_path_str(self) -> str:
        if self.log_path:
            return str(self.log_path)
        if sys.platform == "win32":
            base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        elif sys.platform == "darwin":
            base = os.path.expanduser("~/Library/Caches")
        else:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        return os.path.join(base, "dposer", "server.log")

    def _crash_message(self, s: _Session, code: int | None, busy: str | None = None) -> str:
        if s.unresponsive:
            how = (f"stopped responding (no reply, not even to a ping, for {self.liveness_timeout:g} s: it was "
                   "suspended or hung) and was stopped")
        elif code is None:
            how = "stopped responding"
        elif code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        if s.hello is None:
            when = "before it finished starting"
        else:
            when = f"while running {busy}" if busy else "while idle"
        tail = [ln for ln in s.stderr_tail if ln.strip()][-5:]
        detail = f" Last output: {' | '.join(tail)[-600:]}." if tail else ""
        again = ("It will be restarted on the next request." if self._crashes < 2 else
                 "It crashed twice in a row and will not be restarted automatically.")
        return f"The DPoser backend {how} {when}. {again}{detail} Log: {self._log_path_str()}"

    def start(self, timeout: float | None = 180.0) -> dict:
        """Start the server now (if needed) and wait for its hello; returns the hello dict."""
        s = self._session_for_request()
        if not s.hello_event.wait(timeout):
            raise BackendError(TIMEOUT, f"the DPoser backend did not start within {timeout:g} s; "
                                        f"see the log at {self._log_path_str()}")
        if s.hello is None:
            raise s.failure or BackendCrashed(CRASHED, "the DPoser backend stopped before it said hello")
        return s.hello

    def restart(self) -> None:
        """Stop the server (if any) and forget past crashes; the next request starts a fresh one."""
        self.close()
        with self._lock:
            self._crashes = 0
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
            s0 = self._session
            names = s0.hello.get("joint_names") if s0 is not None and s0.hello else None
            if names and request_type == "complete":
                req.validate(names)
        except S.ProtocolError as exc:
            raise BackendError(exc.code, exc.message, request_type, rid) from None
        line = req.to_line()
        fut = RequestFuture(self, rid, request_type)
        if progress is not None:
            fut.add_progress_callback(progress)
        s = self._session_for_request()
        try:
            s.send(fut, line)
        except BackendError as exc:
            fut._finish(error=exc)
        return fut

    def call(self, request_type: str, /, *, timeout: float | None = None,
             progress: ProgressCallback | None = None, **params: Any) -> Any:
        """Send a request and block for its typed result (see ``schema.RESULT_TYPES``).

        Raises :class:`BackendError` (with ``.code``) on any failure.
        """
        return self.submit(request_type, progress=progress, **params).result(timeout)

    def _send_cancel(self, target: int) -> None:
        s = self._session
        if s is None or not s.alive:
            return
        self._send_control(s, "cancel", target=target)

    def _send_control(self, s: _Session, kind: str, **params: Any) -> None:
        """Send a control request (cancel / ping) on session ``s``, nobody waiting for its reply."""
        fut = RequestFuture(self, next(self._ids), kind)
        try:
            s.send(fut, S.make_request(kind, fut.id, **params).to_line())
        except BackendError:
            pass

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
