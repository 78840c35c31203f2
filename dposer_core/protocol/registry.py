"""The one registry: message type -> request class, result class and the request's bounds.

``REQUESTS[type].request`` / ``.result`` are the classes; ``bounds(type, field)`` the ``(lo, hi)`` of a
numeric request field (written once, in the field's declaration in ``requests.py``). Everything that
builds or reads a message goes through here: :func:`make_request` (client, CLI), :func:`parse_request`
(server), :func:`encode_result` (server), :func:`parse_result` and :func:`parse_reply` (client).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from .arrays import Array
from .errors import BAD_REQUEST, ProtocolError, bad_request
from .fields import array_encode, id_parser
from .message import Message, loads
from .requests import (CancelRequest, CompleteRequest, DenoiseRequest, FitImageRequest, HelloRequest,
                       InbetweenRequest, LoadRequest, PingRequest, ReadAmassRequest, Request, RetargetBvhRequest,
                       SampleRequest, ScoreRequest, ShutdownRequest, VariationsRequest)
from .results import (CancelResult, CompleteResult, DenoiseResult, Error, FitImageResult, Hello, HelloResult,
                      InbetweenResult, LoadResult, MotionResult, PingResult, PosesResult, Progress, Result,
                      ResultData, ScoreResult, ShutdownResult)

__all__ = ["RequestSpec", "REQUESTS", "REQUEST_TYPES", "REPLY_TYPES", "bounds", "make_request", "parse_request",
           "parse_reply", "parse_result", "encode_result"]


@dataclass(frozen=True)
class RequestSpec:
    """One message type: the request class the client sends and the result class the server answers with."""

    request: type[Request]
    result: type[Message]

    @property
    def type(self) -> str:
        """The wire ``type``."""
        return self.request.TYPE

    def bounds(self, field: str) -> tuple[Any, Any]:
        """``(lo, hi)`` of the numeric request field ``field`` (KeyError if it has none)."""
        for f in fields(self.request):
            if f.name == field and f.metadata.get("bounds") is not None:
                return f.metadata["bounds"]
        raise KeyError(f"{self.type} has no numeric field {field!r}")


REQUESTS: dict[str, RequestSpec] = {s.type: s for s in (
    RequestSpec(HelloRequest, HelloResult),
    RequestSpec(LoadRequest, LoadResult),
    RequestSpec(SampleRequest, PosesResult),
    RequestSpec(VariationsRequest, PosesResult),
    RequestSpec(InbetweenRequest, InbetweenResult),
    RequestSpec(CompleteRequest, CompleteResult),
    RequestSpec(DenoiseRequest, DenoiseResult),
    RequestSpec(ScoreRequest, ScoreResult),
    RequestSpec(RetargetBvhRequest, MotionResult),
    RequestSpec(ReadAmassRequest, MotionResult),
    RequestSpec(CancelRequest, CancelResult),
    RequestSpec(PingRequest, PingResult),
    RequestSpec(ShutdownRequest, ShutdownResult),
    RequestSpec(FitImageRequest, FitImageResult),
)}
"""Every request type by its wire ``type``."""

REQUEST_TYPES: dict[str, type[Request]] = {t: s.request for t, s in REQUESTS.items()}
"""The request class of each type (a view of :data:`REQUESTS`)."""

REPLY_TYPES: dict[str, type[Message]] = {c.TYPE: c for c in (Hello, Progress, Result, Error)}
"""The four reply lines by their wire ``type``."""


def bounds(request_type: str, field: str) -> tuple[Any, Any]:
    """``(lo, hi)`` of a numeric request field, e.g. ``bounds("complete", "n_hypotheses") == (1, 1000)``."""
    return REQUESTS[request_type].bounds(field)


def _request_class(rtype: str, rid: int | str | None) -> type[Request]:
    spec = REQUESTS.get(rtype)
    if spec is None:
        raise ProtocolError(BAD_REQUEST, f"unknown request type {rtype[:60]!r}; known: {', '.join(REQUESTS)}", rid)
    return spec.request


def parse_request(line_or_obj: bytes | str | Mapping[str, Any]) -> Request:
    """A validated :class:`Request` from one protocol line (or its decoded object).

    Raises :class:`ProtocolError` with ``request_id`` set whenever the id could be read.
    """
    obj = line_or_obj if isinstance(line_or_obj, Mapping) else loads(line_or_obj)
    if not isinstance(obj, Mapping):
        raise bad_request(f"a request must be a JSON object, got {type(obj).__name__}")
    rid: int | str | None = None
    try:
        if "id" not in obj:
            raise bad_request('a request needs an "id"')
        rid = id_parser(obj["id"], "id")
        rtype = obj.get("type")
        if not isinstance(rtype, str):
            raise bad_request('a request needs a string "type"')
        return _request_class(rtype, rid).from_json(obj)  # type: ignore[return-value]
    except ProtocolError as exc:
        exc.request_id = rid
        raise
    except RecursionError:
        raise ProtocolError(BAD_REQUEST, "request nested too deeply", rid) from None


def make_request(type_: str, id_: int | str, **params: Any) -> Request:
    """Build a request from Python values (numpy arrays allowed) and validate it like the server."""
    if not isinstance(type_, str):
        raise ProtocolError(BAD_REQUEST, f"request type must be a string, got {type(type_).__name__}", id_)
    cls = _request_class(type_, id_)
    wire = dict(params)
    wire["id"] = id_
    try:
        # array parsers accept numpy arrays / Array objects as well as wire forms
        return cls.from_json(wire)  # type: ignore[return-value]
    except ProtocolError as exc:
        exc.request_id = id_
        raise


def parse_reply(line_or_obj: bytes | str | Mapping[str, Any]) -> Message:
    """A reply (hello / progress / result / error) from one server line; unknown fields are ignored."""
    obj = line_or_obj if isinstance(line_or_obj, Mapping) else loads(line_or_obj)
    if not isinstance(obj, Mapping):
        raise bad_request("a reply must be a JSON object")
    cls = REPLY_TYPES.get(obj.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise bad_request(f"unknown reply type {str(obj.get('type'))[:60]!r}")
    return cls.from_json(obj, strict=False)


def parse_result(request_type: str, data: Mapping[str, Any], as_numpy: bool = True) -> Message:
    """The typed result of a ``request_type`` request from a result's ``data``.

    With ``as_numpy`` the array fields become numpy arrays (float32), else :class:`Array`.
    """
    res = REQUESTS[request_type].result.from_json(data, strict=False)
    if as_numpy and isinstance(res, ResultData):
        res.arrays_to_numpy()
    return res


def encode_result(request_type: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The wire ``data`` of a result from Python values (numpy arrays allowed), via the typed class."""
    cls = REQUESTS[request_type].result
    kw: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in values:
            v = values[f.name]
            if f.metadata.get("encode") is array_encode and v is not None:
                v = Array.from_value(v, f.name)
            elif v is not None and hasattr(v, "item") and not hasattr(v, "__len__"):
                v = v.item()  # numpy scalar
            kw[f.name] = v
    return cls(**kw).to_json()  # type: ignore[call-arg]
