"""The client's exception, with a stable ``code``: a protocol code or one of the client's own three."""

from __future__ import annotations

__all__ = ["CRASHED", "UNAVAILABLE", "TIMEOUT", "BackendError", "BackendCrashed", "BackendUnavailable"]

# Client-side error codes (in addition to the protocol's ``dposer_core.protocol.ERROR_CODES``)
CRASHED = "backend_crashed"
UNAVAILABLE = "backend_unavailable"
TIMEOUT = "timeout"


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
