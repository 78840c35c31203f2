"""Stable error codes and the exceptions that carry them across the process boundary.

One definition for the server, the tasks, the CLI, the client and the test stubs: the server maps an
exception to its code by class, never by name (``BadInput`` -> ``bad_input``, ``TaskCancelled`` ->
``cancelled``; both are defined in the leaf :mod:`dposer_core.errors` and re-exported here).
"""

from __future__ import annotations

__all__ = ["MAX_MESSAGE_CHARS", "BAD_REQUEST", "BAD_INPUT", "WEIGHTS_MISSING", "WEIGHTS_INVALID", "CANCELLED",
           "OUT_OF_MEMORY", "INTERNAL", "FEATURE_UNAVAILABLE", "ERROR_CODES", "ProtocolError", "BadInput",
           "TaskCancelled", "clip", "bad_request", "bad_input"]

from ..errors import BadInput, TaskCancelled, clip

MAX_MESSAGE_CHARS = 1000
"""Error messages are cut to this many characters; echoed input is cut much shorter (:func:`clip`)."""

BAD_REQUEST = "bad_request"      # not a well-formed request: JSON, unknown type, missing/unknown field, wrong type
BAD_INPUT = "bad_input"          # well-formed but unusable values: shape, NaN/inf, range, joint name, path
WEIGHTS_MISSING = "weights_missing"  # no weights loaded / weights file not found
WEIGHTS_INVALID = "weights_invalid"  # weights file exists but is not a usable checkpoint
CANCELLED = "cancelled"          # the request was cancelled (queued or running)
OUT_OF_MEMORY = "out_of_memory"  # CPU or GPU memory ran out during this request
INTERNAL = "internal"            # a bug: the traceback is in the server log
FEATURE_UNAVAILABLE = "feature_unavailable"  # an optional feature lacks its dependency (message: how to install it)

ERROR_CODES: frozenset[str] = frozenset(
    {BAD_REQUEST, BAD_INPUT, WEIGHTS_MISSING, WEIGHTS_INVALID, CANCELLED, OUT_OF_MEMORY, INTERNAL,
     FEATURE_UNAVAILABLE})


class ProtocolError(ValueError):
    """A message that cannot be accepted, with its stable error ``code`` and a human sentence.

    ``request_id`` is the id of the offending request when it could be read, else ``None``.
    """

    def __init__(self, code: str, message: str, request_id: int | str | None = None) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[:MAX_MESSAGE_CHARS - 3] + "..."
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def bad_request(message: str) -> ProtocolError:
    """A ``bad_request`` error: the message is not well formed (JSON type, unknown or missing field)."""
    return ProtocolError(BAD_REQUEST, message)


def bad_input(message: str) -> ProtocolError:
    """A ``bad_input`` error: well formed, but a value is unusable (shape, range, NaN, joint name)."""
    return ProtocolError(BAD_INPUT, message)
