"""The line format: the protocol version, one JSON object per line, and :class:`Message`, the base of
every request, reply and result dataclass (it parses and encodes fields by their specs, see ``fields``).

Wire format (one JSON object per line, UTF-8, ``\\n``-terminated):

* server -> client, once at start: ``{"type": "hello", "protocol": "1.1", ...}`` (``Hello``)
* client -> server: ``{"id": 7, "type": "sample", "n": 4, ...}`` (a ``Request`` subclass)
* server -> client, per request: zero or more ``{"id": 7, "type": "progress", "fraction": 0.5,
  "message": "..."}`` then exactly one ``{"id": 7, "type": "result", "data": {...}}`` or
  ``{"id": 7, "type": "error", "code": "bad_input", "message": "..."}``. A line that cannot be
  read as a request at all is answered with an error whose ``id`` is ``null``.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from typing import Any, ClassVar, Mapping

from .errors import BAD_REQUEST, ProtocolError, bad_request, clip
from .fields import any_value

__all__ = ["PROTOCOL_VERSION", "MAX_LINE_BYTES", "protocol_major", "check_protocol", "Message", "dumps", "loads"]

PROTOCOL_VERSION = "1.1"
"""``MAJOR.MINOR``. A different major version is incompatible; minor versions only add fields
(1.1: ``inbetween`` takes and returns ``trans``)."""

MAX_LINE_BYTES = 256 * 1024 * 1024
"""The longest request line the server reads (longer ones are drained and answered bad_request)."""


def protocol_major(version: str) -> int:
    """The major number of a ``MAJOR.MINOR`` version string (``-1`` if unparsable)."""
    try:
        return int(str(version).split(".", 1)[0])
    except (TypeError, ValueError):
        return -1


def check_protocol(theirs: str, side: str) -> None:
    """Raise :class:`ProtocolError` (``bad_request``) when ``theirs`` has another major version.

    ``side`` names the other party ("server" or "client") for the message.
    """
    if protocol_major(theirs) != protocol_major(PROTOCOL_VERSION):
        fix = ("update the DPoser extension and its backend together (they ship as one zip); "
               "if you run the backend from a git checkout, check out the same version as the extension")
        raise ProtocolError(
            BAD_REQUEST,
            f"protocol version mismatch: this {'client' if side == 'server' else 'server'} speaks "
            f"{PROTOCOL_VERSION}, the {side} speaks {theirs}; {fix}")


class Message:
    """Shared JSON conversion for all message dataclasses (fields carry parser metadata)."""

    TYPE: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """The wire object (``type`` first). Array fields are encoded (lists or base64)."""
        out: dict[str, Any] = {"type": self.TYPE} if self.TYPE else {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            enc = f.metadata.get("encode")
            out[f.name] = enc(v) if (enc and v is not None) else v
        return out

    def to_line(self) -> bytes:
        """One protocol line (UTF-8, newline-terminated)."""
        return dumps(self.to_json())

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, strict: bool = True) -> "Message":
        """Build and validate from a decoded JSON object.

        ``strict`` rejects unknown fields (requests); replies are read leniently so that a
        newer minor version may add fields.
        """
        if not isinstance(obj, Mapping):
            raise bad_request(f"a {cls.TYPE or cls.__name__} message must be a JSON object")
        kwargs: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        if strict:
            unknown = set(obj) - known - {"type"}
            if unknown:
                names = sorted(map(str, unknown))
                more = f" and {len(names) - 5} more" if len(names) > 5 else ""
                raise bad_request(f"{cls.TYPE or cls.__name__}: unknown field(s) "
                                  f"{', '.join(clip(n, 40) for n in names[:5])}{more}; known: {', '.join(sorted(known))}")
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in obj:
                parse = f.metadata.get("parse", any_value)
                kwargs[f.name] = parse(obj[f.name], f.name)
            elif f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
                raise bad_request(f"{cls.TYPE or cls.__name__}: missing field {f.name!r}")
        msg = cls(**kwargs)
        msg.validate()
        return msg

    def validate(self) -> None:
        """Cross-field checks (override)."""


def dumps(obj: Any) -> bytes:
    """Compact JSON line (NaN is never written: it is not JSON)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"


def _json_constant(name: str) -> float:
    """JSON extension literals (NaN, Infinity) are read as floats; validation rejects them."""
    return float(name.replace("Infinity", "inf"))


def loads(line: bytes | str) -> Any:
    """Parse one JSON line; raises ``bad_request`` on malformed input."""
    try:
        return json.loads(line, parse_constant=_json_constant)
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"not a valid JSON line ({str(exc)[:120]})") from None
