"""The protocol loop: read and validate lines, answer control requests at once, queue the rest for one
worker, cancel, stop, and exit when the parent goes away.

Threads: the **reader** reads stdin from the very start (lines before hello are kept; EOF is seen even
during the torch import) and dispatches each line on its own thread; the **worker** runs the queued
requests in order, exactly one ``result`` or ``error`` each; the **watchdog** exits when the parent
process disappears (re-parenting), next to stdin EOF and the optional Linux ``PR_SET_PDEATHSIG``.
"""

from __future__ import annotations

import collections
import logging
import os
import platform
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, BinaryIO

from backend import __version__ as BACKEND_VERSION
from dposer_core import protocol as S

from .device import free_memory, is_oom, oom_advice
from .handlers import HANDLERS, TaskContext, photo_features
from .transport import TOO_LONG, Output, check_paths, nonfinite_fields, one_line, read_lines
from .weights import Weights

log = logging.getLogger("dposer.server")

EOF_EXIT_S = 0.9
"""Hard exit this long after stdin closes."""
_EOF = object()


@dataclass
class _Job:
    request: S.Request
    cancel_event: threading.Event = field(default_factory=threading.Event)


class Server:
    """One process, one loaded prior, one task at a time.

    ``out``: the protocol output (the saved real stdout); ``weights``: the prior holder; ``tasks``: the
    tasks module the handlers call (``backend.tasks``; None when it failed to import).
    """

    def __init__(self, out: Output, weights: Weights, tasks: ModuleType | None) -> None:
        self.out = out
        self.weights = weights
        self.tasks = tasks
        self.dispatch_lock = threading.Lock()
        self.ready = False                       # hello sent: lines are dispatched as they arrive
        self.early_lines: list[Any] = []         # lines read before hello
        self.done = threading.Event()            # shutdown / EOF handled: main() exits
        self.queue: "collections.deque[_Job]" = collections.deque()
        self.queue_cv = threading.Condition()
        self.running: _Job | None = None
        self.stopping = threading.Event()

    def make_hello(self) -> dict:
        """The ``hello`` message (wire form) for the current state."""
        import torch

        st = self.weights.state
        return S.Hello(protocol=S.PROTOCOL_VERSION, backend_version=BACKEND_VERSION,
                       python_version=platform.python_version(), torch_version=torch.__version__,
                       device=st.device, device_name=st.device_name, device_note=st.device_note,
                       weights_path=st.weights_path, weights_sha256=st.weights_sha256,
                       weights_error=st.weights_error, joint_names=self.weights.joint_names(), pid=os.getpid(),
                       requests=list(S.REQUESTS), features=photo_features()).to_json()

    # -- threads ------------------------------------------------------------------------------
    def start_reader(self, stream: BinaryIO) -> None:
        """Read stdin lines and dispatch them on this thread (buffered until hello); EOF arms the hard exit."""
        def run() -> None:
            for line in read_lines(stream):
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
        cancelled = f"{req.TYPE} request {req.id} was cancelled"
        try:
            if ctx.should_cancel():
                raise S.TaskCancelled()
            values = HANDLERS[req.TYPE](ctx)
            run_ms = 1e3 * (time.perf_counter() - t0)
            if ctx.should_cancel() and not isinstance(req, S.LoadRequest):
                raise S.TaskCancelled()
            bad = nonfinite_fields(values)
            if bad:
                log.warning("%s #%s produced non-finite %s", req.TYPE, req.id, ", ".join(bad))
                raise S.ProtocolError(S.BAD_INPUT, f"{req.TYPE} produced NaN or infinite values ({', '.join(bad)}) "
                                                   "for this input; check that the input is in range (axis-angle "
                                                   "in radians, positions in metres)")
            self.out.send_result(req, values, run_ms)
            log.debug("%s #%s done in %.1f ms", req.TYPE, req.id, 1e3 * (time.perf_counter() - t0))
        except S.TaskCancelled:
            self.out.send_error(req.id, S.CANCELLED, cancelled)
        except S.ProtocolError as exc:
            self.out.send_error(req.id, exc.code, exc.message)
        except S.BadInput as exc:
            self.out.send_error(req.id, S.BAD_INPUT, one_line(exc))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001  one request never takes the server down
            if is_oom(exc):
                log.warning("%s #%s ran out of memory: %s", req.TYPE, req.id, one_line(exc))
                exc = None  # drop frames that hold tensors
                free_memory()
                self.out.send_error(req.id, S.OUT_OF_MEMORY, oom_advice(req.TYPE, self.weights.state.device))
            else:
                log.error("%s #%s failed:\n%s", req.TYPE, req.id, traceback.format_exc())
                self.out.send_error(req.id, S.INTERNAL, f"{req.TYPE} failed with an internal error "
                                                        f"({type(exc).__name__}); the traceback is in the server log")

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
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001
            code = S.OUT_OF_MEMORY if is_oom(exc) else S.INTERNAL
            log.error("dispatch failed:\n%s", traceback.format_exc())
            exc = None
            free_memory()
            why = "out of memory" if code == S.OUT_OF_MEMORY else "internal error; see the server log"
            self.out.send_error(None, code, f"the request could not be read ({why})")

    def dispatch_line(self, line: bytes) -> bool:
        """Handle one input line; returns True when the server should stop reading."""
        if line == TOO_LONG:
            self.out.send_error(None, S.BAD_REQUEST, f"request line longer than {S.MAX_LINE_BYTES} bytes; "
                                                     "send large arrays through a file")
            return False
        if not line.strip():
            return False  # blank lines are ignored (keep-alive)
        req: S.Request | None = None
        try:
            req = S.parse_request(line)
            check_paths(req)
        except S.ProtocolError as exc:
            rid = exc.request_id if exc.request_id is not None or req is None else req.id
            self.out.send_error(rid, exc.code, exc.message)
            return False
        if isinstance(req, S.HelloRequest):
            try:
                S.check_protocol(req.protocol, side="client")
            except S.ProtocolError as exc:
                log.error("%s", exc.message)
                self.out.send_error(req.id, exc.code, exc.message)
                return False
            self.out.send_result(req, self.make_hello())
        elif isinstance(req, S.PingRequest):
            with self.queue_cv:
                busy, queued = self.running is not None, len(self.queue)
            self.out.send_result(req, {"pong": True, "busy": busy, "queued": queued})
        elif isinstance(req, S.CancelRequest):
            self.cancel(req)
        elif isinstance(req, S.ShutdownRequest):
            self.stop("shutdown request", reply_to=req)
            return True
        else:
            with self.queue_cv:
                self.queue.append(_Job(req))
                self.queue_cv.notify_all()
        return False

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
            self.out.send_error(dropped.request.id, S.CANCELLED,
                                f"{dropped.request.TYPE} request {dropped.request.id} was cancelled before it started")
        self.out.send_result(req, {"target": req.target, "state": state})

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
            self.out.send_error(job.request.id, S.CANCELLED, f"{job.request.TYPE} request {job.request.id} was "
                                                             f"cancelled: the server is stopping ({reason})")
        # shutdown: give the running task a moment to answer "cancelled"; EOF: nobody is listening
        deadline = time.monotonic() + (0.6 if reply_to is not None else 0.0)
        with self.queue_cv:
            while self.running is not None and time.monotonic() < deadline:
                self.queue_cv.wait(0.05)
        if reply_to is not None:
            self.out.send_result(reply_to, {})
        log.info("stopping: %s", reason)
