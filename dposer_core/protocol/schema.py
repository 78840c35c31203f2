"""The DPoser backend protocol: every message as a typed, validating dataclass.

This module is **stdlib-only** and self-contained (no relative imports), because it is imported
both by the server (``backend.server``, inside the torch Python) and by the Blender extension's
client, which loads this very file by path so that torch never enters Blender. numpy is used
only lazily, when a caller asks for numpy arrays (``Array.to_numpy``) or hands numpy arrays in.

Wire format (one JSON object per line, UTF-8, ``\\n``-terminated):

* server -> client, once at start: ``{"type": "hello", "protocol": "1.0", ...}`` (:class:`Hello`)
* client -> server: ``{"id": 7, "type": "sample", "n": 4, ...}`` (a :class:`Request` subclass)
* server -> client, per request: zero or more ``{"id": 7, "type": "progress", "fraction": 0.5,
  "message": "..."}`` then exactly one ``{"id": 7, "type": "result", "data": {...}}`` or
  ``{"id": 7, "type": "error", "code": "bad_input", "message": "..."}``. A line that cannot be
  read as a request at all is answered with an error whose ``id`` is ``null``.

Arrays (always float32 on the wire): small ones as nested JSON lists; large ones as
``{"$array": "float32", "shape": [T, 63], "base64": "..."}`` (little-endian float32, C order).
See ``backend/protocol/README.md`` for the measurements behind that choice.
"""

from __future__ import annotations

import base64
import json
import math
import os
import stat
import sys
from array import array
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, ClassVar, Mapping, Sequence

# --------------------------------------------------------------------------------------------
# Versions, limits, error codes
# --------------------------------------------------------------------------------------------

PROTOCOL_VERSION = "1.0"
"""``MAJOR.MINOR``. A different major version is incompatible; minor versions only add fields."""

INLINE_MAX = 256
"""Arrays with at most this many elements travel as JSON lists, larger ones as base64."""

MAX_LINE_BYTES = 256 * 1024 * 1024
"""The longest request line the server reads (longer ones are drained and answered bad_request)."""

MAX_ARRAY_ELEMENTS = 32_000_000
"""The largest array (in elements) any message may carry."""

FLOAT32_MAX = 3.4028234663852886e38

MAX_ROTATION_RAD = 4.0 * math.pi
"""The largest axis-angle rotation (norm of one joint's 3 values) any request may carry. Any
rotation can be written with an angle of at most pi; 4 pi leaves room for unwrapped animation
curves, and anything larger is not axis-angle radians (degrees, or garbage that would overflow)."""

MAX_POSITION_M = 10_000.0
"""The largest absolute joint position / translation coordinate (metres) any request may carry."""

from .errors import MAX_MESSAGE_CHARS  # noqa: E402
MAX_COMPLETE_ROWS = 50_000
"""``complete``: poses x hypotheses handled in one request (memory: ~2 kB per row plus the result)."""

MAX_INBETWEEN_FRAMES = 200_000
"""``inbetween``: the most frames one request may produce."""

MAX_DENOISE_FRAMES = 200_000
"""``denoise``: the most frames one request may carry (about 1.9 hours at 30 fps)."""

from ..constants import DEVICES, EASES, NUM_BODY_JOINTS, POSE_DIM, SAMPLERS  # noqa: E402,F401
from .errors import *  # noqa: E402,F401,F403  (codes and exceptions; split pending)
from .errors import ERROR_CODES, ProtocolError  # noqa: E402,F401


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


def _bad_request(message: str) -> ProtocolError:
    return ProtocolError(BAD_REQUEST, message)


def _bad_input(message: str) -> ProtocolError:
    return ProtocolError(BAD_INPUT, message)


# --------------------------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------------------------

Shape = tuple[int | None, ...]
"""A shape pattern: ``None`` matches any positive length."""


def _shape_str(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("N" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _is_numpy(x: Any) -> bool:
    return hasattr(x, "dtype") and hasattr(x, "shape") and hasattr(x, "tobytes")


class Array:
    """A float32 array in transit: a ``shape`` plus a flat ``array('f')`` in C order.

    Build one with :meth:`from_value` (numpy array, nested lists, ``Array``) or
    :meth:`from_json` (wire form); turn it into numpy with :meth:`to_numpy` or into nested
    lists with :meth:`tolist`.
    """

    __slots__ = ("shape", "data")

    def __init__(self, data: array, shape: Sequence[int]) -> None:
        self.data = data
        self.shape = tuple(int(s) for s in shape)
        if math.prod(self.shape) != len(data):
            raise _bad_input(f"array shape {self.shape} does not match its {len(data)} values")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_value(cls, value: Any, name: str = "array") -> "Array":
        """An ``Array`` from a numpy array, an ``Array``, or (nested) lists/tuples of numbers."""
        if isinstance(value, Array):
            return value
        if _is_numpy(value):
            shape = tuple(int(s) for s in value.shape)
            if math.prod(shape) > MAX_ARRAY_ELEMENTS:
                raise _bad_input(f"{name}: array of shape {shape} is too large")
            kind = getattr(value.dtype, "kind", "f")
            if kind not in "fiub":
                raise _bad_request(f"{name}: expected a numeric array, got dtype {value.dtype}")
            buf = value.astype("<f4", order="C", copy=False).tobytes(order="C")
            data = array("f")
            data.frombytes(buf)
            if sys.byteorder == "big":
                data.byteswap()
            return cls(data, shape)
        if isinstance(value, (list, tuple)):
            return cls._from_nested(value, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise _bad_request(f"{name}: expected an array, got a single number")
        raise _bad_request(f"{name}: expected an array (list of numbers), got {type(value).__name__}")

    @classmethod
    def _from_nested(cls, value: Sequence[Any], name: str) -> "Array":
        shape: list[int] = []
        probe: Any = value
        while isinstance(probe, (list, tuple)):
            shape.append(len(probe))
            if not probe:
                break
            probe = probe[0]
            if len(shape) > 8:
                raise _bad_request(f"{name}: array nested deeper than 8 levels")
        if 0 in shape:
            raise _bad_input(f"{name}: array has an empty dimension (shape {tuple(shape)})")
        if math.prod(shape) > MAX_ARRAY_ELEMENTS:
            raise _bad_input(f"{name}: array of shape {tuple(shape)} is too large")
        flat: list[Any] = list(value)
        for depth in range(1, len(shape)):
            n = shape[depth]
            nxt: list[Any] = []
            for row in flat:
                if not isinstance(row, (list, tuple)) or len(row) != n:
                    raise _bad_input(f"{name}: ragged array (expected rows of length {n} at depth {depth})")
                nxt.extend(row)
            flat = nxt
        for v in flat:
            if type(v) is not float and (type(v) is not int):
                raise _bad_request(f"{name}: array values must be numbers, got {type(v).__name__}")
        try:
            data = array("f", flat)
        except (TypeError, OverflowError) as exc:
            raise _bad_request(f"{name}: array values must be numbers ({exc})") from None
        return cls(data, shape)

    @classmethod
    def from_json(cls, obj: Any, name: str = "array") -> "Array":
        """Decode the wire form (JSON lists or a ``{"$array": ...}`` object)."""
        if isinstance(obj, dict):
            if obj.get("$array") != "float32":
                raise _bad_request(f'{name}: an encoded array needs "$array": "float32"')
            unknown = set(obj) - {"$array", "shape", "base64", "file"}
            if unknown:
                raise _bad_request(f"{name}: unknown keys in encoded array: "
                                   f"{', '.join(clip(k, 40) for k in sorted(unknown)[:5])}")
            shape = obj.get("shape")
            if (not isinstance(shape, list) or not 1 <= len(shape) <= 8
                    or not all(type(s) is int for s in shape)):
                raise _bad_request(f"{name}: shape must be a list of 1..8 integers")
            if any(s <= 0 for s in shape):
                raise _bad_input(f"{name}: shape {tuple(shape)} has a non-positive dimension")
            n = math.prod(shape)
            if n > MAX_ARRAY_ELEMENTS:
                raise _bad_input(f"{name}: array of shape {tuple(shape)} is too large")
            if "base64" in obj:
                b64 = obj["base64"]
                if not isinstance(b64, str):
                    raise _bad_request(f"{name}: base64 must be a string")
                if len(b64) != 4 * ((4 * n + 2) // 3):
                    raise _bad_input(f"{name}: base64 data does not hold {n} float32 values for shape {tuple(shape)}")
                try:
                    raw = base64.b64decode(b64, validate=True)
                except (ValueError, TypeError):
                    raise _bad_request(f"{name}: invalid base64 data") from None
            elif "file" in obj:
                path = obj["file"]
                if not isinstance(path, str) or not path or "\x00" in path or len(path) > 4096:
                    raise _bad_request(f"{name}: file must be a path string")
                raw = _read_array_file(path, 4 * n, name, tuple(shape))
            else:
                raise _bad_request(f'{name}: an encoded array needs "base64" or "file"')
            if len(raw) != 4 * n:
                raise _bad_input(f"{name}: the array data does not hold {n} float32 values for shape {tuple(shape)}")
            data = array("f")
            data.frombytes(raw)
            if sys.byteorder == "big":
                data.byteswap()
            return cls(data, shape)
        if isinstance(obj, list):
            return cls._from_nested(obj, name)
        return cls.from_value(obj, name)

    # -- output -------------------------------------------------------------------------------
    def to_json(self, inline_max: int = INLINE_MAX) -> list | dict:
        """The wire form: nested lists when small, base64 little-endian float32 otherwise."""
        if len(self.data) <= inline_max:
            return self.tolist()
        data = self.data
        if sys.byteorder == "big":
            data = array("f", data)
            data.byteswap()
        return {"$array": "float32", "shape": list(self.shape),
                "base64": base64.b64encode(data.tobytes()).decode("ascii")}

    def to_file(self, path: str) -> dict:
        """Write the raw little-endian float32 data to ``path``; returns the wire form pointing at it."""
        data = self.data
        if sys.byteorder == "big":
            data = array("f", data)
            data.byteswap()
        with open(path, "wb") as f:
            data.tofile(f)
        return {"$array": "float32", "shape": list(self.shape), "file": os.fspath(path)}

    def tolist(self) -> list:
        """Nested Python lists of floats."""
        flat: list[Any] = self.data.tolist()
        for n in reversed(self.shape[1:]):
            flat = [flat[i:i + n] for i in range(0, len(flat), n)]
        return flat

    def to_numpy(self) -> Any:
        """A writable ``numpy.ndarray`` (float32) of this shape (imports numpy lazily)."""
        import numpy as np

        return np.frombuffer(self.data, dtype=np.float32).reshape(self.shape).copy()

    # -- checks -------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of elements."""
        return len(self.data)

    def is_finite(self) -> bool:
        """True when no value is NaN or +-inf.

        float32 values summed in float64 cannot overflow (32e6 * 3.4e38 << 1.8e308), so the sum is
        finite exactly when every value is -- one C-speed pass.
        """
        np = sys.modules.get("numpy")  # use numpy when the process already has it (server, Blender)
        if np is not None and len(self.data) > 1024:
            return bool(np.isfinite(np.frombuffer(self.data, dtype=np.float32)).all())
        return math.isfinite(sum(self.data))

    def check(self, name: str, shapes: Sequence[Shape], kind: str | None = None) -> "Array":
        """Raise ``bad_input`` unless the shape matches one of ``shapes``, all values are finite and,
        by ``kind``, in range: ``"rotation"`` (axis-angle triples of norm <= :data:`MAX_ROTATION_RAD`)
        or ``"position"`` (metres, ``|x|`` <= :data:`MAX_POSITION_M`)."""
        if not any(len(p) == len(self.shape) and all(e is None or e == s for e, s in zip(p, self.shape))
                   for p in shapes):
            want = " or ".join(_shape_str(p) for p in shapes)
            raise _bad_input(f"{name} must have shape {want}, got {_shape_str(self.shape)}")
        if not self.is_finite():
            raise _bad_input(f"{name} contains NaN or infinite values")
        if kind == "rotation":
            self._check_rotations(name)
        elif kind == "position":
            self._check_positions(name)
        return self

    def _where(self, flat_index: int, per_row: int) -> str:
        return f"row {flat_index // per_row}" if len(self.shape) > 1 else "the array"

    def _check_rotations(self, name: str) -> None:
        lim2 = MAX_ROTATION_RAD ** 2
        np = sys.modules.get("numpy")
        bad = -1
        if np is not None:
            a = np.frombuffer(self.data, dtype=np.float32)
            if a.size and float(np.abs(a).max()) > MAX_ROTATION_RAD:
                bad = int(np.argmax(np.abs(a) > MAX_ROTATION_RAD)) // 3
            else:
                n2 = np.square(a.reshape(-1, 3)).sum(1)
                if n2.size and float(n2.max()) > lim2:
                    bad = int(np.argmax(n2 > lim2))
        else:
            d = self.data
            for k in range(0, len(d) - 2, 3):
                x, y, z = d[k], d[k + 1], d[k + 2]
                if abs(x) > MAX_ROTATION_RAD or abs(y) > MAX_ROTATION_RAD or abs(z) > MAX_ROTATION_RAD \
                        or x * x + y * y + z * z > lim2:
                    bad = k // 3
                    break
        if bad >= 0:
            v = self.data[3 * bad:3 * bad + 3]
            norm = math.sqrt(sum(float(x) * float(x) for x in v))
            per_row = max(self.shape[-1] // 3, 1)
            where = self._where(3 * bad, 3 * per_row)
            joint = f", joint {bad % per_row}" if per_row > 1 else ""
            raise _bad_input(f"{name} holds an axis-angle rotation of {norm:.4g} rad ({where}{joint}); rotations "
                             f"must be at most 4 pi = {MAX_ROTATION_RAD:.2f} rad. Send axis-angle in radians "
                             "(not degrees).")

    def _check_positions(self, name: str) -> None:
        np = sys.modules.get("numpy")
        bad = -1
        if np is not None:
            a = np.abs(np.frombuffer(self.data, dtype=np.float32))
            if a.size and float(a.max()) > MAX_POSITION_M:
                bad = int(np.argmax(a > MAX_POSITION_M))
        else:
            bad = next((k for k, x in enumerate(self.data) if abs(x) > MAX_POSITION_M), -1)
        if bad >= 0:
            per_row = math.prod(self.shape[1:]) if len(self.shape) > 1 else len(self.data)
            raise _bad_input(f"{name} holds the coordinate {float(self.data[bad]):.4g} ({self._where(bad, per_row)}); "
                             f"positions must be in metres within +-{MAX_POSITION_M:,.0f}. Convert centimetres "
                             "or millimetres to metres.")

    def __repr__(self) -> str:
        return f"Array(shape={self.shape})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Array) and self.shape == other.shape and self.data == other.data


_ARRAY_FILE_DIRS: set[str] = set()
"""Real paths of the folders from which ``{"$array": ..., "file": ...}`` arrays may be read."""


def allow_array_files(folder: str | os.PathLike) -> str:
    """Accept ``file`` arrays inside ``folder`` (the server's ``--array-dir``: a private temp folder
    the client made for its session). Without one, the ``file`` form is refused. Returns the real path."""
    real = os.path.realpath(os.fspath(folder))
    if not os.path.isdir(real):
        raise ValueError(f"array folder {real!r} is not a folder")
    _ARRAY_FILE_DIRS.add(real)
    return real


def disallow_array_files(folder: str | os.PathLike) -> None:
    """Stop accepting ``file`` arrays from ``folder`` (a session ended)."""
    _ARRAY_FILE_DIRS.discard(os.path.realpath(os.fspath(folder)))


def _read_array_file(path: str, nbytes: int, name: str, shape: tuple) -> bytes:
    """The ``nbytes`` bytes of a ``file`` array, read only from a regular file (never a FIFO, a device,
    a descriptor or a link) inside an allowed folder, without ever blocking on the file."""
    if not _ARRAY_FILE_DIRS:
        raise _bad_input(f'{name}: this server does not accept "file" arrays (it was started without '
                         '--array-dir); send the data as "base64"')
    real = os.path.realpath(path)
    if not any(os.path.dirname(real) == d or os.path.dirname(real).startswith(d + os.sep)
               for d in _ARRAY_FILE_DIRS):
        raise _bad_input(f"{name}: array file {clip(path)} is outside the session's array folder; "
                         'write it there, or send the data as "base64"')
    flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise _bad_input(f"{name}: cannot open array file {clip(path)}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _bad_input(f"{name}: array file {clip(path)} is not a regular file")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise _bad_input(f"{name}: array file {clip(path)} belongs to another user")
        if st.st_size != nbytes:
            raise _bad_input(f"{name}: array file {clip(path)} holds {st.st_size} bytes, shape {shape} "
                             f"needs {nbytes} (float32, little-endian)")
        chunks, left = [], nbytes
        while left > 0:
            block = os.read(fd, min(left, 1 << 24))
            if not block:
                break
            chunks.append(block)
            left -= len(block)
        return b"".join(chunks)
    except OSError as exc:
        raise _bad_input(f"{name}: cannot read array file {clip(path)}: {exc.strerror}") from None
    finally:
        os.close(fd)


def encode_array(value: Any, inline_max: int = INLINE_MAX) -> list | dict:
    """Wire form of a numpy array / nested list / :class:`Array` (float32)."""
    return Array.from_value(value).to_json(inline_max)


def decode_array(obj: Any, as_numpy: bool = True) -> Any:
    """Decode a wire array into numpy (``as_numpy``) or an :class:`Array`."""
    arr = Array.from_json(obj)
    return arr.to_numpy() if as_numpy else arr


# --------------------------------------------------------------------------------------------
# Field specifications
# --------------------------------------------------------------------------------------------

Parser = Callable[[Any, str], Any]


def _spec(parse: Parser, encode: Callable[[Any], Any] | None = None, *, default: Any = MISSING,
          doc: str = "") -> Any:
    """A dataclass field whose metadata carries its JSON parser and encoder."""
    meta = {"parse": parse, "encode": encode or (lambda v: v), "doc": doc}
    if default is MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def _optional(parse: Parser) -> Parser:
    return lambda v, name: None if v is None else parse(v, name)


def _int_parser(lo: int, hi: int) -> Parser:
    def parse(v: Any, name: str) -> int:
        if type(v) is float and v.is_integer():
            v = int(v)
        if type(v) is not int:
            raise _bad_request(f"{name} must be an integer, got {type(v).__name__}")
        if not lo <= v <= hi:
            raise _bad_input(f"{name} must be between {lo} and {hi}, got {v}")
        return v
    return parse


def _float_parser(lo: float, hi: float) -> Parser:
    def parse(v: Any, name: str) -> float:
        if type(v) not in (int, float):
            raise _bad_request(f"{name} must be a number, got {type(v).__name__}")
        try:
            v = float(v)
        except OverflowError:
            raise _bad_input(f"{name} is out of range") from None
        if not math.isfinite(v) or not lo <= v <= hi:
            raise _bad_input(f"{name} must be between {lo:g} and {hi:g}, got {v:g}")
        return v
    return parse


def _choice_parser(choices: Sequence[str]) -> Parser:
    def parse(v: Any, name: str) -> str:
        if not isinstance(v, str):
            raise _bad_request(f"{name} must be a string, got {type(v).__name__}")
        if v not in choices:
            raise _bad_input(f"{name} must be one of {', '.join(choices)}; got {clip(v, 40)}")
        return v
    return parse


def _str_parser(max_len: int = 4096, nonempty: bool = True) -> Parser:
    def parse(v: Any, name: str) -> str:
        if not isinstance(v, str):
            raise _bad_request(f"{name} must be a string, got {type(v).__name__}")
        if nonempty and not v:
            raise _bad_input(f"{name} must not be empty")
        if len(v) > max_len or "\x00" in v:
            raise _bad_input(f"{name} is not a valid string (too long or contains NUL)")
        return v
    return parse


def _id_parser(v: Any, name: str) -> int | str:
    if type(v) is int or (isinstance(v, str) and 0 < len(v) <= 128):
        return v
    raise _bad_request(f"{name} must be an integer or a short string, got {type(v).__name__}")


def _seed_parser(v: Any, name: str) -> int:
    return _int_parser(0, 2**63 - 1)(v, name)


def _array_parser(*shapes: Shape, kind: str | None = None) -> Parser:
    def parse(v: Any, name: str) -> Array:
        return Array.from_json(v, name).check(name, shapes, kind)
    return parse


def _array_encode(v: Any) -> Any:
    return None if v is None else Array.from_value(v).to_json()


def _keep_parser(v: Any, name: str) -> list[bool] | list[str]:
    """``keep``: 21 booleans (one per body joint) or a non-empty list of joint names."""
    if not isinstance(v, (list, tuple)):
        raise _bad_request(f"{name} must be a list of 21 booleans or of joint names")
    v = list(v)
    if v and all(type(x) is bool for x in v):
        if len(v) != NUM_BODY_JOINTS:
            raise _bad_input(f"{name} as booleans must have {NUM_BODY_JOINTS} entries (one per body joint), got {len(v)}")
        return v
    if v and all(isinstance(x, str) for x in v):
        if len(v) > NUM_BODY_JOINTS or len(set(v)) != len(v):
            raise _bad_input(f"{name} must list each joint name at most once")
        return v
    if not v:
        raise _bad_input(f"{name} must not be empty (keep at least one joint)")
    raise _bad_request(f"{name} must be a list of 21 booleans or of joint names, not a mixture")


def _names_parser(v: Any, name: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _bad_request(f"{name} must be a list of strings")
    return v


def _dict_parser(v: Any, name: str) -> dict:
    if not isinstance(v, dict):
        raise _bad_request(f"{name} must be an object")
    return v


def _bool_parser(v: Any, name: str) -> bool:
    if type(v) is not bool:
        raise _bad_request(f"{name} must be true or false, got {type(v).__name__}")
    return v


def _lenient_float(v: Any, name: str) -> float:
    if type(v) not in (int, float):
        raise _bad_request(f"{name} must be a number")
    return float(v)


def _any(v: Any, name: str) -> Any:
    return v


# Field helpers used in the message classes below ---------------------------------------------
def _array_field(*shapes: Shape, optional: bool = False, doc: str = "", kind: str | None = None) -> Any:
    parse = _array_parser(*shapes, kind=kind)
    return _spec(_optional(parse) if optional else parse, _array_encode,
                 default=None if optional else MISSING, doc=doc)


def _int_field(lo: int, hi: int, default: Any = MISSING, optional: bool = False, doc: str = "") -> Any:
    parse = _int_parser(lo, hi)
    return _spec(_optional(parse) if optional else parse, default=default, doc=doc)


def _float_field(lo: float, hi: float, default: Any = MISSING, optional: bool = False, doc: str = "") -> Any:
    parse = _float_parser(lo, hi)
    return _spec(_optional(parse) if optional else parse, default=default, doc=doc)


def _seed_field() -> Any:
    return _spec(_optional(_seed_parser), default=None, doc="random seed (null: nondeterministic)")


# --------------------------------------------------------------------------------------------
# Message base
# --------------------------------------------------------------------------------------------

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
            raise _bad_request(f"a {cls.TYPE or cls.__name__} message must be a JSON object")
        kwargs: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        if strict:
            unknown = set(obj) - known - {"type"}
            if unknown:
                names = sorted(map(str, unknown))
                more = f" and {len(names) - 5} more" if len(names) > 5 else ""
                raise _bad_request(f"{cls.TYPE or cls.__name__}: unknown field(s) "
                                   f"{', '.join(clip(n, 40) for n in names[:5])}{more}; known: {', '.join(sorted(known))}")
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in obj:
                parse = f.metadata.get("parse", _any)
                kwargs[f.name] = parse(obj[f.name], f.name)
            elif f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
                raise _bad_request(f"{cls.TYPE or cls.__name__}: missing field {f.name!r}")
        msg = cls(**kwargs)
        msg.validate()
        return msg

    def validate(self, joint_names: Sequence[str] | None = None) -> None:
        """Cross-field checks (override). ``joint_names``: the 21 body joint names when known."""


def dumps(obj: Any) -> bytes:
    """Compact JSON line (NaN is never written: it is not JSON)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"


# --------------------------------------------------------------------------------------------
# Requests (client -> server)
# --------------------------------------------------------------------------------------------

@dataclass(kw_only=True)
class Request(Message):
    """Base of all requests: ``id`` is echoed in every reply to this request."""

    id: int | str = _spec(_id_parser)

    CONTROL: ClassVar[bool] = False
    """Control requests are answered at once by the reader; others run one at a time, in order."""
    NEEDS_WEIGHTS: ClassVar[bool] = False

    def task_kwargs(self) -> dict[str, Any]:
        """The parameters for the task function (all fields but ``id``; ``None`` left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "id" and getattr(self, f.name) is not None}


@dataclass(kw_only=True)
class HelloRequest(Request):
    """The client introduces itself; the server checks the major protocol version."""

    TYPE: ClassVar[str] = "hello"
    CONTROL: ClassVar[bool] = True
    protocol: str = _spec(_str_parser(32))
    client: str = _spec(_str_parser(200, nonempty=False), default="")


@dataclass(kw_only=True)
class LoadRequest(Request):
    """Load (or keep) the weights. ``path`` null: the shipped default weights."""

    TYPE: ClassVar[str] = "load"
    path: str | None = _spec(_optional(_str_parser()), default=None)
    device: str = _spec(_choice_parser(DEVICES), default="auto")


@dataclass(kw_only=True)
class SampleRequest(Request):
    """``tasks.sample``: ``n`` random poses."""

    TYPE: ClassVar[str] = "sample"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    n: int = _int_field(1, 100_000, default=1)
    sampler: str = _spec(_choice_parser(SAMPLERS), default="ddim")
    steps: int | None = _int_field(1, 5000, default=None, optional=True)
    seed: int | None = _seed_field()


@dataclass(kw_only=True)
class VariationsRequest(Request):
    """``tasks.variations``: ``n`` variations of ``pose`` (63,), ``strength`` in (0, 1]."""

    TYPE: ClassVar[str] = "variations"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    pose: Any = _array_field((POSE_DIM,), (1, POSE_DIM), kind="rotation")
    strength: float = _float_field(1e-6, 1.0, default=0.3)
    n: int = _int_field(1, 100_000, default=1)
    sampler: str = _spec(_choice_parser(("ddim", "em")), default="ddim")
    steps: int | None = _int_field(1, 5000, default=None, optional=True)
    seed: int | None = _seed_field()


@dataclass(kw_only=True)
class InbetweenRequest(Request):
    """``tasks.inbetween``: ``n_frames`` in-between frames per segment through ``keys`` (M, 63), M >= 2.

    The result has (M - 1) (n_frames + 1) + 1 frames; the keys are reproduced exactly.
    """

    TYPE: ClassVar[str] = "inbetween"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    keys: Any = _array_field((None, POSE_DIM), kind="rotation")
    n_frames: int = _int_field(0, 100_000)
    ease: str = _spec(_choice_parser(EASES), default="linear")
    root_orient: Any = _array_field((None, 3), optional=True, kind="rotation")
    steps: int | None = _int_field(1, 5000, default=None, optional=True)
    seed: int | None = _seed_field()

    def validate(self, joint_names: Sequence[str] | None = None) -> None:
        m = self.keys.shape[0]
        if m < 2:
            raise _bad_input(f"keys must hold at least 2 key poses, got {m}")
        total = (m - 1) * (self.n_frames + 1) + 1
        if total > MAX_INBETWEEN_FRAMES:
            raise _bad_input(f"inbetween would produce {total:,} frames, more than the {MAX_INBETWEEN_FRAMES:,} one "
                             "request may; use fewer keys or in-between frames per request")
        if self.root_orient is not None and self.root_orient.shape[0] != m:
            raise _bad_input(f"root_orient must have one row per key ({m}), got {self.root_orient.shape[0]}")


@dataclass(kw_only=True)
class CompleteRequest(Request):
    """``tasks.complete``: fill in the joints not in ``keep`` (21 booleans or joint names)."""

    TYPE: ClassVar[str] = "complete"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    pose: Any = _array_field((POSE_DIM,), (None, POSE_DIM), kind="rotation")
    keep: list = _spec(_keep_parser)
    n_hypotheses: int = _int_field(1, 1000, default=10)
    steps: int = _int_field(1, 5000, default=200)
    root_orient: Any = _array_field((3,), (None, 3), optional=True, kind="rotation")
    seed: int | None = _seed_field()

    def validate(self, joint_names: Sequence[str] | None = None) -> None:
        n_pose = 1 if len(self.pose.shape) == 1 else self.pose.shape[0]
        if n_pose * self.n_hypotheses > MAX_COMPLETE_ROWS:
            raise _bad_input(f"complete of {n_pose:,} poses x {self.n_hypotheses} hypotheses is more than the "
                             f"{MAX_COMPLETE_ROWS:,} one request may; send fewer poses or ask for fewer hypotheses")
        if self.root_orient is not None:
            n_root = 1 if len(self.root_orient.shape) == 1 else self.root_orient.shape[0]
            if n_root != n_pose:
                raise _bad_input(f"root_orient must have one row per pose ({n_pose}), got {n_root}")
        if joint_names is not None and self.keep and isinstance(self.keep[0], str):
            unknown = [k for k in self.keep if k not in joint_names]
            if unknown:
                raise _bad_input(f"keep names unknown joint(s) {', '.join(clip(u, 40) for u in unknown[:5])}; "
                                 f"known body joints: {', '.join(joint_names)}")


@dataclass(kw_only=True)
class DenoiseRequest(Request):
    """``tasks.denoise``: give exactly one of ``joints`` (T, 22, 3) metres or ``poses`` (T, 63).

    ``root_orient`` / ``trans`` (T, 3): known and held fixed when given. ``noise_mm``: noise std
    per coordinate (null: estimated).
    """

    TYPE: ClassVar[str] = "denoise"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    joints: Any = _array_field((None, 22, 3), optional=True, kind="position")
    poses: Any = _array_field((None, POSE_DIM), optional=True, kind="rotation")
    root_orient: Any = _array_field((None, 3), optional=True, kind="rotation")
    trans: Any = _array_field((None, 3), optional=True, kind="position")
    noise_mm: float | None = _float_field(0.0, 1000.0, default=None, optional=True)
    seed: int | None = _seed_field()

    def validate(self, joint_names: Sequence[str] | None = None) -> None:
        if (self.joints is None) == (self.poses is None):
            raise _bad_input("denoise needs exactly one of joints (T, 22, 3) or poses (T, 63)")
        t = (self.joints if self.joints is not None else self.poses).shape[0]
        if t > MAX_DENOISE_FRAMES:
            raise _bad_input(f"denoise of {t:,} frames is more than the {MAX_DENOISE_FRAMES:,} one request may; "
                             "split the motion into parts")
        for name in ("root_orient", "trans"):
            a = getattr(self, name)
            if a is not None and a.shape[0] != t:
                raise _bad_input(f"{name} must have one row per frame ({t}), got {a.shape[0]}")


@dataclass(kw_only=True)
class ScoreRequest(Request):
    """``tasks.score``: plausibility of each pose in ``poses`` (N, 63)."""

    TYPE: ClassVar[str] = "score"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    poses: Any = _array_field((None, POSE_DIM), kind="rotation")
    seed: int | None = _seed_field()


@dataclass(kw_only=True)
class RetargetBvhRequest(Request):
    """Read a BVH file and retarget it to SMPL body poses at ``fps``."""

    TYPE: ClassVar[str] = "retarget_bvh"
    path: str = _spec(_str_parser())
    family: str | None = _spec(_optional(_str_parser(200)), default=None)
    fps: float = _float_field(1.0, 1000.0, default=30.0)


@dataclass(kw_only=True)
class ReadAmassRequest(Request):
    """Read an AMASS ``.npz`` motion (converted to the SMPL native Y-up frame)."""

    TYPE: ClassVar[str] = "read_amass"
    path: str = _spec(_str_parser())
    fps: float | None = _float_field(1.0, 1000.0, default=30.0, optional=True, doc="resample to (null: keep)")


@dataclass(kw_only=True)
class FitImageRequest(Request):
    """Pose from a photo: fit ``n_hypotheses`` ranked SMPL poses to the person in the image at ``path``
    (PNG, JPEG, WebP or BMP, checked by content). Needs mediapipe in the backend (hello
    ``features.fit_image.available``); without it the answer is ``feature_unavailable``.
    ``smpl_model``: optional SMPL model file whose skeleton is fitted; ``focal_px``: the camera's focal
    length in pixels (null: a 50 mm full-frame equivalent)."""

    TYPE: ClassVar[str] = "fit_image"
    NEEDS_WEIGHTS: ClassVar[bool] = True
    path: str = _spec(_str_parser())
    n_hypotheses: int = _int_field(1, 32, default=4)
    smpl_model: str | None = _spec(_optional(_str_parser()), default=None)
    focal_px: float | None = _float_field(1.0, 1e6, default=None, optional=True)
    seed: int | None = _seed_field()


@dataclass(kw_only=True)
class CancelRequest(Request):
    """Cancel request ``target``: a queued one is dropped, a running one stops within one step."""

    TYPE: ClassVar[str] = "cancel"
    CONTROL: ClassVar[bool] = True
    target: int | str = _spec(_id_parser)


@dataclass(kw_only=True)
class PingRequest(Request):
    """Liveness check, answered at once even while a task runs."""

    TYPE: ClassVar[str] = "ping"
    CONTROL: ClassVar[bool] = True


@dataclass(kw_only=True)
class ShutdownRequest(Request):
    """Cancel everything, answer, and exit."""

    TYPE: ClassVar[str] = "shutdown"
    CONTROL: ClassVar[bool] = True


REQUEST_TYPES: dict[str, type[Request]] = {
    cls.TYPE: cls for cls in (
        HelloRequest, LoadRequest, SampleRequest, VariationsRequest, InbetweenRequest, CompleteRequest,
        DenoiseRequest, ScoreRequest, RetargetBvhRequest, ReadAmassRequest, CancelRequest, PingRequest,
        ShutdownRequest, FitImageRequest)
}
"""Every request type by its wire ``type``."""


def _json_constant(name: str) -> float:
    """JSON extension literals (NaN, Infinity) are read as floats; validation rejects them."""
    return float(name.replace("Infinity", "inf"))


def loads(line: bytes | str) -> Any:
    """Parse one JSON line; raises ``bad_request`` on malformed input."""
    try:
        return json.loads(line, parse_constant=_json_constant)
    except (ValueError, RecursionError) as exc:
        raise _bad_request(f"not a valid JSON line ({str(exc)[:120]})") from None


def parse_request(line_or_obj: bytes | str | Mapping[str, Any]) -> Request:
    """A validated :class:`Request` from one protocol line (or its decoded object).

    Raises :class:`ProtocolError` with ``request_id`` set whenever the id could be read.
    """
    obj = line_or_obj if isinstance(line_or_obj, Mapping) else loads(line_or_obj)
    if not isinstance(obj, Mapping):
        raise _bad_request(f"a request must be a JSON object, got {type(obj).__name__}")
    rid: int | str | None = None
    try:
        if "id" not in obj:
            raise _bad_request('a request needs an "id"')
        rid = _id_parser(obj["id"], "id")
        rtype = obj.get("type")
        if not isinstance(rtype, str):
            raise _bad_request('a request needs a string "type"')
        cls = REQUEST_TYPES.get(rtype)
        if cls is None:
            raise _bad_request(f"unknown request type {rtype[:60]!r}; known: {', '.join(REQUEST_TYPES)}")
        return cls.from_json(obj)  # type: ignore[return-value]
    except ProtocolError as exc:
        exc.request_id = rid
        raise
    except RecursionError:
        raise ProtocolError(BAD_REQUEST, "request nested too deeply", rid) from None


def make_request(type_: str, id_: int | str, **params: Any) -> Request:
    """Build a request from Python values (numpy arrays allowed) and validate it like the server."""
    cls = REQUEST_TYPES.get(type_)
    if cls is None:
        raise ProtocolError(BAD_REQUEST, f"unknown request type {type_!r}; known: {', '.join(REQUEST_TYPES)}", id_)
    wire = dict(params)
    wire["id"] = id_
    try:
        # array parsers accept numpy arrays / Array objects as well as wire forms
        return cls.from_json(wire)  # type: ignore[return-value]
    except ProtocolError as exc:
        exc.request_id = id_
        raise


# --------------------------------------------------------------------------------------------
# Replies (server -> client)
# --------------------------------------------------------------------------------------------

@dataclass(kw_only=True)
class Hello(Message):
    """The server's greeting, its first line; also the ``data`` of a ``hello`` request's result."""

    TYPE: ClassVar[str] = "hello"
    protocol: str = _spec(_str_parser(32))
    backend_version: str = _spec(_str_parser(64))
    python_version: str = _spec(_str_parser(200, nonempty=False), default="")
    torch_version: str = _spec(_str_parser(64))
    device: str = _spec(_str_parser(32), doc="the device tasks run on: cpu, cuda, cuda:0, mps")
    device_name: str = _spec(_str_parser(200, nonempty=False), default="")
    device_note: str = _spec(_str_parser(2000, nonempty=False), default="",
                             doc="non-empty when the requested device was not usable (e.g. CUDA fell back to CPU)")
    weights_path: str | None = _spec(_optional(_str_parser()), default=None)
    weights_sha256: str | None = _spec(_optional(_str_parser(64)), default=None)
    weights_error: dict | None = _spec(_optional(_dict_parser), default=None,
                                       doc='{"code", "message"} when loading the weights at start failed')
    joint_names: list | None = _spec(_optional(_names_parser), default=None,
                                     doc="the 21 body joint names (SMPL joints 1..21) in pose order")
    pid: int = _spec(_int_parser(0, 2**31), default=0)
    requests: list | None = _spec(_optional(_names_parser), default=None, doc="request types served")
    features: dict | None = _spec(_optional(_dict_parser), default=None,
                                  doc='optional features: {"fit_image": {"available": bool, "message": str}} '
                                      '(message: the install hint when unavailable)')


@dataclass(kw_only=True)
class Progress(Message):
    """Progress of request ``id``: ``fraction`` in [0, 1] and a short message."""

    TYPE: ClassVar[str] = "progress"
    id: int | str = _spec(_id_parser)
    fraction: float = _spec(_float_parser(0.0, 1.0))
    message: str = _spec(_str_parser(2000, nonempty=False), default="")


@dataclass(kw_only=True)
class Result(Message):
    """The successful, final reply to request ``id``; ``data`` is the typed result's wire form."""

    TYPE: ClassVar[str] = "result"
    id: int | str = _spec(_id_parser)
    data: dict = _spec(_dict_parser, default=None)
    run_ms: float | None = _spec(_optional(_lenient_float), default=None,
                                 doc="time the server spent running the request (queued requests only)")


@dataclass(kw_only=True)
class Error(Message):
    """The failed, final reply to request ``id`` (``null`` when the request was unreadable)."""

    TYPE: ClassVar[str] = "error"
    id: int | str | None = _spec(_optional(_id_parser), default=None)
    code: str = _spec(_choice_parser(sorted(ERROR_CODES)))
    message: str = _spec(_str_parser(4000, nonempty=False))


REPLY_TYPES: dict[str, type[Message]] = {c.TYPE: c for c in (Hello, Progress, Result, Error)}


def parse_reply(line_or_obj: bytes | str | Mapping[str, Any]) -> Message:
    """A reply (hello / progress / result / error) from one server line; unknown fields are ignored."""
    obj = line_or_obj if isinstance(line_or_obj, Mapping) else loads(line_or_obj)
    if not isinstance(obj, Mapping):
        raise _bad_request("a reply must be a JSON object")
    cls = REPLY_TYPES.get(obj.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise _bad_request(f"unknown reply type {str(obj.get('type'))[:60]!r}")
    return cls.from_json(obj, strict=False)


# --------------------------------------------------------------------------------------------
# Typed results (the ``data`` of a ``result``), one per request type
# --------------------------------------------------------------------------------------------

@dataclass(kw_only=True)
class ResultData(Message):
    """Base of typed result payloads. Array fields hold :class:`Array` (or numpy after conversion)."""

    def arrays_to_numpy(self) -> "ResultData":
        """Replace every :class:`Array` field by a numpy array (in place); returns self."""
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Array):
                setattr(self, f.name, v.to_numpy())
        return self


def _result_array(*shapes: Shape, optional: bool = False) -> Any:
    parse = _array_parser(*shapes)
    return _spec(_optional(parse) if optional else parse, _array_encode, default=None if optional else MISSING)


@dataclass(kw_only=True)
class HelloResult(Hello):
    """The ``data`` of a ``hello`` request's result: the hello fields."""

    TYPE: ClassVar[str] = ""


@dataclass(kw_only=True)
class LoadResult(ResultData):
    """What is loaded now, and whether it already was."""

    weights_path: str = _spec(_str_parser())
    weights_sha256: str = _spec(_str_parser(64))
    device: str = _spec(_str_parser(32))
    device_name: str = _spec(_str_parser(200, nonempty=False), default="")
    device_note: str = _spec(_str_parser(2000, nonempty=False), default="")
    joint_names: list | None = _spec(_optional(_names_parser), default=None)
    already_loaded: bool = _spec(_bool_parser, default=False)


@dataclass(kw_only=True)
class PosesResult(ResultData):
    """``sample`` and ``variations``: poses (n, 63)."""

    poses: Any = _result_array((None, POSE_DIM))


@dataclass(kw_only=True)
class InbetweenResult(ResultData):
    """poses ((M-1)(n_frames+1)+1, 63); root_orient (same, 3) when keys had one."""

    poses: Any = _result_array((None, POSE_DIM))
    root_orient: Any = _result_array((None, 3), optional=True)


@dataclass(kw_only=True)
class CompleteResult(ResultData):
    """poses (N, H, 63) best first, scores (N, H)."""

    poses: Any = _result_array((None, None, POSE_DIM))
    scores: Any = _result_array((None, None))
    root_orient: Any = _result_array((None, 3), optional=True)


@dataclass(kw_only=True)
class DenoiseResult(ResultData):
    """poses (T, 63), joints (T, 22, 3) (FK of the result), root_orient / trans (T, 3), noise_mm used."""

    poses: Any = _result_array((None, POSE_DIM))
    joints: Any = _result_array((None, 22, 3))
    root_orient: Any = _result_array((None, 3), optional=True)
    trans: Any = _result_array((None, 3), optional=True)
    noise_mm: float | None = _spec(_optional(_lenient_float), default=None)


@dataclass(kw_only=True)
class ScoreResult(ResultData):
    """pose (N,): per-pose score; joints (N, 21): per-joint scores (lower = more plausible)."""

    pose: Any = _result_array((None,))
    joints: Any = _result_array((None, NUM_BODY_JOINTS))


@dataclass(kw_only=True)
class MotionResult(ResultData):
    """``retarget_bvh`` and ``read_amass``: an SMPL motion (SMPL native frame, Y up)."""

    body_pose: Any = _result_array((None, POSE_DIM))
    root_orient: Any = _result_array((None, 3))
    trans: Any = _result_array((None, 3))
    fps: float = _spec(_lenient_float)
    betas: Any = _result_array((None,), optional=True)
    gender: str | None = _spec(_optional(_str_parser(32, nonempty=False)), default=None)


@dataclass(kw_only=True)
class CancelResult(ResultData):
    """state: "running" (asked to stop), "queued" (removed) or "unknown" (already finished / no such id)."""

    target: int | str = _spec(_id_parser)
    state: str = _spec(_choice_parser(("running", "queued", "unknown")))


@dataclass(kw_only=True)
class PingResult(ResultData):
    """Liveness: whether a task runs and how many wait."""

    pong: bool = _spec(_bool_parser, default=True)
    busy: bool = _spec(_bool_parser, default=False)
    queued: int = _spec(_int_parser(0, 2**31), default=0)


@dataclass(kw_only=True)
class ShutdownResult(ResultData):
    """Empty: the server exits after sending it."""


@dataclass(kw_only=True)
class FitImageResult(ResultData):
    """``fit_image``: H hypotheses, best first (K = 21 keypoints, see ``keypoint_names``).

    poses (H, 63); root_orient (H, 3) in the SMPL world frame of a camera on +Z looking towards -Z
    (a person facing the camera gets about the identity); root_orient_cam / cam_t (H, 3): OpenCV camera
    frame (x right, y down, z forward) with ``focal_px`` and the principal point at the image centre;
    scores (H,) ranking value, lower is better (data_loss + weight * prior_score); projected (H, K, 2)
    fitted keypoints in pixels; keypoints (K, 3) the detections (x px, y px, confidence);
    labels_swapped (H,) 1.0 where the hypothesis reads the detector's left/right labels swapped;
    init: each hypothesis's start; image_size [w, h]; seconds: detection + fit time."""

    poses: Any = _result_array((None, POSE_DIM))
    root_orient: Any = _result_array((None, 3))
    root_orient_cam: Any = _result_array((None, 3))
    cam_t: Any = _result_array((None, 3))
    scores: Any = _result_array((None,))
    data_loss: Any = _result_array((None,), optional=True)
    prior_score: Any = _result_array((None,), optional=True)
    projected: Any = _result_array((None, None, 2), optional=True)
    keypoints: Any = _result_array((None, 3))
    keypoint_names: list | None = _spec(_optional(_names_parser), default=None)
    labels_swapped: Any = _result_array((None,), optional=True)
    init: list | None = _spec(_optional(_names_parser), default=None)
    focal_px: float = _spec(_lenient_float)
    image_size: list | None = _spec(_optional(_any), default=None)
    seconds: float | None = _spec(_optional(_lenient_float), default=None)


RESULT_TYPES: dict[str, type[Message]] = {
    "hello": HelloResult, "load": LoadResult, "sample": PosesResult, "variations": PosesResult,
    "inbetween": InbetweenResult, "complete": CompleteResult, "denoise": DenoiseResult,
    "score": ScoreResult, "retarget_bvh": MotionResult, "read_amass": MotionResult,
    "cancel": CancelResult, "ping": PingResult, "shutdown": ShutdownResult,
    "fit_image": FitImageResult,
}
"""The typed result payload of each request type."""

assert set(RESULT_TYPES) == set(REQUEST_TYPES)


def parse_result(request_type: str, data: Mapping[str, Any], as_numpy: bool = True) -> Message:
    """The typed result of a ``request_type`` request from a result's ``data``.

    With ``as_numpy`` the array fields become numpy arrays (float32), else :class:`Array`.
    """
    cls = RESULT_TYPES[request_type]
    res = cls.from_json(data, strict=False)
    if as_numpy and isinstance(res, ResultData):
        res.arrays_to_numpy()
    return res


def encode_result(request_type: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The wire ``data`` of a result from Python values (numpy arrays allowed), via the typed class."""
    cls = RESULT_TYPES[request_type]
    kw: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in values:
            v = values[f.name]
            if f.metadata.get("encode") is _array_encode and v is not None:
                v = Array.from_value(v, f.name)
            elif v is not None and hasattr(v, "item") and not hasattr(v, "__len__"):
                v = v.item()  # numpy scalar
            kw[f.name] = v
    return cls(**kw).to_json()  # type: ignore[call-arg]


__all__ = [
    "PROTOCOL_VERSION", "INLINE_MAX", "MAX_LINE_BYTES", "MAX_ARRAY_ELEMENTS", "ERROR_CODES",
    "BAD_REQUEST", "BAD_INPUT", "WEIGHTS_MISSING", "WEIGHTS_INVALID", "CANCELLED", "OUT_OF_MEMORY",
    "INTERNAL", "FEATURE_UNAVAILABLE", "ProtocolError", "Array", "encode_array", "decode_array", "protocol_major",
    "MAX_ROTATION_RAD", "MAX_POSITION_M", "MAX_MESSAGE_CHARS", "MAX_COMPLETE_ROWS", "MAX_INBETWEEN_FRAMES",
    "MAX_DENOISE_FRAMES", "clip", "allow_array_files", "disallow_array_files",
    "check_protocol", "Message", "Request", "REQUEST_TYPES", "parse_request", "make_request",
    "Hello", "Progress", "Result", "Error", "parse_reply", "ResultData", "RESULT_TYPES",
    "parse_result", "encode_result", "dumps", "loads",
    *[c.__name__ for c in REQUEST_TYPES.values()],
    *sorted({c.__name__ for c in RESULT_TYPES.values()}),
]
