"""``RequestFuture``: the pending reply to one request (progress, cancel, then a typed result or an error).

The session's reader thread completes it (:meth:`RequestFuture.set_progress`, :meth:`RequestFuture.finish`);
callbacks run on that thread, so in Blender they must not touch ``bpy``.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable

from .errors import TIMEOUT, BackendError

__all__ = ["ProgressCallback", "RequestFuture"]

log = logging.getLogger("dposer.client")

ProgressCallback = Callable[[float, str], None]


class RequestFuture:
    """The pending reply to one request: progress, cancel, and finally a typed result or an error.

    ``send_cancel(id)`` asks the server to cancel it (None: control requests, never cancelled)."""

    def __init__(self, request_id: int, request_type: str,
                 send_cancel: Callable[[int], None] | None = None) -> None:
        self.id = request_id
        self.type = request_type
        self._send_cancel = send_cancel
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
        if self._send_cancel is not None:
            self._send_cancel(self.id)
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

    # -- completion (the session's reader thread) ----------------------------------------------
    def set_progress(self, fraction: float, message: str) -> None:
        """Record a progress event and run the progress callbacks."""
        self._progress = (fraction, message)
        self._progress_queue.append((fraction, message))
        for fn in list(self._progress_callbacks):
            try:
                fn(fraction, message)
            except Exception:  # noqa: BLE001
                log.exception("progress callback failed")

    def finish(self, result: Any = None, error: BackendError | None = None) -> None:
        """Complete with ``result`` or ``error`` (the first call wins) and run the done callbacks."""
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
