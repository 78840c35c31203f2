"""``Session``: one server process, its four threads and its pending requests.

* a **writer** thread sends request lines (so ``submit`` never blocks on a full pipe);
* a **reader** thread parses reply lines into each request's :class:`RequestFuture`
  (its progress queue and its final result/error);
* a **stderr** thread keeps the last lines of the server's stderr for error messages;
* a **liveness** thread pings a server that has been silent for ``liveness_interval`` seconds while a
  request is pending, and kills one that answers nothing at all (no progress, no pong) for
  ``liveness_timeout`` seconds (stopped with SIGSTOP, hung in C code), so a ``result()`` without a
  timeout cannot wait forever.

When the process dies, every pending request fails with :class:`BackendCrashed` (a sentence with the
exit status, the last stderr lines and the log path) and the shared :class:`CrashCount` goes up; a
successful task request (not a hello or a pong) sets it back to 0.
"""

from __future__ import annotations

import collections
import itertools
import logging
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..dposer_core import protocol as S
from .errors import CRASHED, UNAVAILABLE, BackendCrashed, BackendError, BackendUnavailable
from .futures import RequestFuture

__all__ = ["CONTROL_TYPES", "LIVENESS_INTERVAL_S", "LIVENESS_TIMEOUT_S", "CrashCount", "Session"]

log = logging.getLogger("dposer.client")

DIRECT_WRITE_MAX = 16 * 1024
CONTROL_TYPES = frozenset({"hello", "ping", "cancel", "shutdown"})
LIVENESS_INTERVAL_S = 5.0
"""A server silent this long while a request is pending gets a ``ping``."""
LIVENESS_TIMEOUT_S = 30.0
"""A server silent this long while a request is pending (no progress, no pong) is killed as hung."""


@dataclass
class CrashCount:
    """Consecutive crashes without a successful task request, shared by a client's sessions."""

    count: int = 0


class Session:
    """One server process with its threads and pending requests.

    ``ids`` hands out request ids (shared with the client); ``log_path`` is only quoted in messages.
    """

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str, *, ids: "itertools.count[int]",
                 crashes: CrashCount, log_path: str, numpy: bool = True, work_dir: str | None = None,
                 liveness_interval: float = LIVENESS_INTERVAL_S, liveness_timeout: float = LIVENESS_TIMEOUT_S) -> None:
        self.ids = ids
        self.crashes = crashes
        self.log_path = log_path
        self.numpy = numpy
        self.liveness_interval = liveness_interval
        self.liveness_timeout = liveness_timeout
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
            fut.set_progress(float(msg.get("fraction", 0.0)), str(msg.get("message", "")))
        elif kind == "result":
            with self.lock:
                self.pending.pop(rid, None)
            try:
                res = S.parse_result(fut.type, msg.get("data") or {}, as_numpy=self.numpy)
            except S.ProtocolError as exc:
                fut.finish(error=BackendError(S.INTERNAL, f"the backend's {fut.type} result is malformed: "
                                                          f"{exc.message}", fut.type, rid))
                return
            if fut.type not in CONTROL_TYPES:  # a hello or pong does not prove the server can work
                self.crashes.count = 0
            run_ms = msg.get("run_ms")
            fut.server_run_ms = float(run_ms) if isinstance(run_ms, (int, float)) else None
            fut.finish(result=res)
        elif kind == "error":
            with self.lock:
                self.pending.pop(rid, None)
            code = msg.get("code") if msg.get("code") in S.ERROR_CODES else S.INTERNAL
            fut.finish(error=BackendError(code, str(msg.get("message", "")), fut.type, rid))

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
            self.crashes.count += 1
            err = BackendCrashed(CRASHED, self.crash_message(code, self.busy_request()))
            log.error("%s", err.message)
        self.fail(err)
        self.out_queue.put(None)
        self.remove_work_dir()

    def crash_message(self, code: int | None, busy: str | None = None) -> str:
        """One sentence: how the process ended, when, whether it will be restarted, its last output."""
        if self.unresponsive:
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
        if self.hello is None:
            when = "before it finished starting"
        else:
            when = f"while running {busy}" if busy else "while idle"
        tail = [ln for ln in self.stderr_tail if ln.strip()][-5:]
        detail = f" Last output: {' | '.join(tail)[-600:]}." if tail else ""
        again = ("It will be restarted on the next request." if self.crashes.count < 2 else
                 "It crashed twice in a row and will not be restarted automatically.")
        return f"The DPoser backend {how} {when}. {again}{detail} Log: {self.log_path}"

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
            S.disallow_array_files(self.work_dir)
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def _liveness_loop(self) -> None:
        """Ping a silent server while requests are pending; kill one that stays silent (SIGSTOP, hang)."""
        last_ping = 0.0
        while self.proc.poll() is None and self.failure is None and not self.closing:
            time.sleep(max(0.05, min(self.liveness_interval, self.liveness_timeout) / 4))
            if self.hello is None or self.busy_request() is None:
                continue
            now = time.monotonic()
            silent = now - self.last_heard
            if silent > self.liveness_timeout:
                self.unresponsive = True
                log.error("the backend (pid %s) answered nothing for %.1f s; killing it", self.proc.pid, silent)
                try:
                    self.proc.kill()  # SIGKILL also ends a stopped (SIGSTOP) process
                except OSError:
                    pass
                return
            if silent > self.liveness_interval and now - last_ping > self.liveness_interval:
                last_ping = now
                self.send_control("ping")

    # -- control -------------------------------------------------------------------------------
    def fail(self, err: BackendError) -> None:
        """Mark the session unusable and fail everything pending with ``err``."""
        if self.failure is None:
            self.failure = err
        self.hello_event.set()
        with self.lock:
            futures, self.pending = list(self.pending.values()), {}
        for fut in futures:
            fut.finish(error=type(err)(err.code, err.message, fut.type, fut.id))

    def send(self, fut: RequestFuture, line: bytes) -> None:
        """Register ``fut`` as pending and send its line (raises the session's failure if any)."""
        with self.lock:
            if self.failure is not None:
                raise self.failure
            self.pending[fut.id] = fut
            if fut.type not in CONTROL_TYPES:
                self.last_heard = max(self.last_heard, time.monotonic())
        self.write(line)

    def send_control(self, kind: str, **params: Any) -> None:
        """Send a control request (cancel / ping), nobody waiting for its reply."""
        fut = RequestFuture(next(self.ids), kind)
        try:
            self.send(fut, S.make_request(kind, fut.id, **params).to_line())
        except BackendError:
            pass

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
