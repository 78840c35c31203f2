"""Field specifications: each message field is a dataclass field whose metadata carries its JSON parser,
its encoder and, for numbers, its bounds ``(lo, hi)`` (read back by :func:`dposer_core.protocol.bounds`).

A parser takes ``(value, field_name)`` and returns the Python value or raises :class:`ProtocolError`:
``bad_request`` for a wrong JSON type, ``bad_input`` for a well-typed but unusable value.

Seeds: a ``seed`` of null means "random" (a fresh draw on every call) in every layer -- the protocol,
the tasks and the CLI; pass an integer for a reproducible result.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, field
from typing import Any, Callable, Sequence

from ..errors import BadInput
from ..keep import parse_keep
from .arrays import Array, Shape
from .errors import bad_input, bad_request, clip

Parser = Callable[[Any, str], Any]

SEED_MAX = 2**63 - 1
"""The largest seed (a seed is an integer 0..2**63-1, or null: random)."""


def field_spec(parse: Parser, encode: Callable[[Any], Any] | None = None, *, default: Any = MISSING,
               doc: str = "", bounds: tuple[float, float] | None = None) -> Any:
    """A dataclass field whose metadata carries its JSON parser, encoder, doc and numeric bounds."""
    meta = {"parse": parse, "encode": encode or (lambda v: v), "doc": doc, "bounds": bounds}
    if default is MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def optional(parse: Parser) -> Parser:
    """``parse``, but null stays None."""
    return lambda v, name: None if v is None else parse(v, name)


# -- parsers ----------------------------------------------------------------------------------
def int_parser(lo: int, hi: int) -> Parser:
    def parse(v: Any, name: str) -> int:
        if type(v) is float and v.is_integer():
            v = int(v)
        if type(v) is not int:
            raise bad_request(f"{name} must be an integer, got {type(v).__name__}")
        if not lo <= v <= hi:
            raise bad_input(f"{name} must be between {lo} and {hi}, got {v}")
        return v
    return parse


def float_parser(lo: float, hi: float) -> Parser:
    def parse(v: Any, name: str) -> float:
        if type(v) not in (int, float):
            raise bad_request(f"{name} must be a number, got {type(v).__name__}")
        try:
            v = float(v)
        except OverflowError:
            raise bad_input(f"{name} is out of range") from None
        if not math.isfinite(v) or not lo <= v <= hi:
            raise bad_input(f"{name} must be between {lo:g} and {hi:g}, got {v:g}")
        return v
    return parse


def choice_parser(choices: Sequence[str]) -> Parser:
    def parse(v: Any, name: str) -> str:
        if not isinstance(v, str):
            raise bad_request(f"{name} must be a string, got {type(v).__name__}")
        if v not in choices:
            raise bad_input(f"{name} must be one of {', '.join(choices)}; got {clip(v, 40)}")
        return v
    return parse


def str_parser(max_len: int = 4096, nonempty: bool = True) -> Parser:
    def parse(v: Any, name: str) -> str:
        if not isinstance(v, str):
            raise bad_request(f"{name} must be a string, got {type(v).__name__}")
        if nonempty and not v:
            raise bad_input(f"{name} must not be empty")
        if len(v) > max_len or "\x00" in v:
            raise bad_input(f"{name} is not a valid string (too long or contains NUL)")
        return v
    return parse


def id_parser(v: Any, name: str) -> int | str:
    """A request id: an integer or a string of 1..128 characters."""
    if type(v) is int or (isinstance(v, str) and 0 < len(v) <= 128):
        return v
    raise bad_request(f"{name} must be an integer or a short string, got {type(v).__name__}")


def array_parser(*shapes: Shape, kind: str | None = None) -> Parser:
    def parse(v: Any, name: str) -> Array:
        return Array.from_json(v, name).check(name, shapes, kind)
    return parse


def array_encode(v: Any) -> Any:
    return None if v is None else Array.from_value(v).to_json()


def keep_parser(v: Any, name: str) -> list[bool] | list[str]:
    """``keep``: 21 booleans (one per body joint) or a non-empty list of distinct joint names, checked by
    :func:`dposer_core.keep.parse_keep` (the one keep parser); the list is passed on as sent."""
    if not isinstance(v, (list, tuple)):
        raise bad_request(f"{name} must be a list of 21 booleans or of joint names")
    v = list(v)
    if v and not (all(type(x) is bool for x in v) or all(isinstance(x, str) for x in v)):
        raise bad_request(f"{name} must be a list of 21 booleans or of joint names, not a mixture")
    if v and isinstance(v[0], str) and len(set(v)) != len(v):
        raise bad_input(f"{name} must list each joint name at most once")
    try:
        parse_keep(v)
    except BadInput as exc:
        raise bad_input(str(exc)) from None
    return v


def names_parser(v: Any, name: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise bad_request(f"{name} must be a list of strings")
    return v


def dict_parser(v: Any, name: str) -> dict:
    if not isinstance(v, dict):
        raise bad_request(f"{name} must be an object")
    return v


def bool_parser(v: Any, name: str) -> bool:
    if type(v) is not bool:
        raise bad_request(f"{name} must be true or false, got {type(v).__name__}")
    return v


def lenient_float(v: Any, name: str) -> float:
    """Any JSON number as a float (replies: the sender already checked the range)."""
    if type(v) not in (int, float):
        raise bad_request(f"{name} must be a number")
    return float(v)


def any_value(v: Any, name: str) -> Any:
    return v


# -- fields used in the message classes -------------------------------------------------------
def array_field(*shapes: Shape, optional: bool = False, doc: str = "", kind: str | None = None) -> Any:
    """A float32 array field of one of ``shapes``; ``kind``: "rotation" or "position" range checks."""
    parse = array_parser(*shapes, kind=kind)
    return field_spec(_maybe_optional(parse, optional), array_encode,
                      default=None if optional else MISSING, doc=doc)


def int_field(lo: int, hi: int, default: Any = MISSING, optional: bool = False, doc: str = "") -> Any:
    """An integer field in ``lo..hi`` (the request's bounds, see :func:`dposer_core.protocol.bounds`)."""
    return field_spec(_maybe_optional(int_parser(lo, hi), optional), default=default, doc=doc, bounds=(lo, hi))


def float_field(lo: float, hi: float, default: Any = MISSING, optional: bool = False, doc: str = "") -> Any:
    """A finite number field in ``[lo, hi]``."""
    return field_spec(_maybe_optional(float_parser(lo, hi), optional), default=default, doc=doc, bounds=(lo, hi))


def seed_field() -> Any:
    """``seed``: an integer 0..2**63-1 for a reproducible result, or null (the default): random."""
    return field_spec(optional(int_parser(0, SEED_MAX)), default=None, doc="random seed (null: random)",
                      bounds=(0, SEED_MAX))


def _maybe_optional(parse: Parser, is_optional: bool) -> Parser:
    return optional(parse) if is_optional else parse
