"""Arrays on the wire: the float32 :class:`Array` codec and the ``file`` transport.

Always float32, C order. Small arrays travel as nested JSON lists; large ones as
``{"$array": "float32", "shape": [T, 63], "base64": "..."}`` (little-endian); a request may also point
at a raw float32 file inside the session's array folder (:func:`allow_array_files`). The measurements
behind that choice are in ``README.md``. Value checks use numpy when the process has it loaded.
"""

from __future__ import annotations

import base64
import math
import os
import stat
import sys
from array import array
from typing import Any, Sequence

from .errors import bad_input, bad_request, clip

__all__ = ["INLINE_MAX", "MAX_ARRAY_ELEMENTS", "MAX_ROTATION_RAD", "MAX_POSITION_M", "Shape", "Array",
           "allow_array_files", "disallow_array_files", "encode_array", "decode_array"]

INLINE_MAX = 256
"""Arrays with at most this many elements travel as JSON lists, larger ones as base64."""

MAX_ARRAY_ELEMENTS = 32_000_000
"""The largest array (in elements) any message may carry."""

MAX_ROTATION_RAD = 4.0 * math.pi
"""The largest axis-angle rotation (norm of one joint's 3 values) any request may carry. Any
rotation can be written with an angle of at most pi; 4 pi leaves room for unwrapped animation
curves, and anything larger is not axis-angle radians (degrees, or garbage that would overflow)."""

MAX_POSITION_M = 10_000.0
"""The largest absolute joint position / translation coordinate (metres) any request may carry."""

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
            raise bad_input(f"array shape {self.shape} does not match its {len(data)} values")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_value(cls, value: Any, name: str = "array") -> "Array":
        """An ``Array`` from a numpy array, an ``Array``, or (nested) lists/tuples of numbers."""
        if isinstance(value, Array):
            return value
        if _is_numpy(value):
            shape = tuple(int(s) for s in value.shape)
            if math.prod(shape) > MAX_ARRAY_ELEMENTS:
                raise bad_input(f"{name}: array of shape {shape} is too large")
            kind = getattr(value.dtype, "kind", "f")
            if kind not in "fiub":
                raise bad_request(f"{name}: expected a numeric array, got dtype {value.dtype}")
            buf = value.astype("<f4", order="C", copy=False).tobytes(order="C")
            data = array("f")
            data.frombytes(buf)
            if sys.byteorder == "big":
                data.byteswap()
            return cls(data, shape)
        if isinstance(value, (list, tuple)):
            return cls._from_nested(value, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise bad_request(f"{name}: expected an array, got a single number")
        raise bad_request(f"{name}: expected an array (list of numbers), got {type(value).__name__}")

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
                raise bad_request(f"{name}: array nested deeper than 8 levels")
        if 0 in shape:
            raise bad_input(f"{name}: array has an empty dimension (shape {tuple(shape)})")
        if math.prod(shape) > MAX_ARRAY_ELEMENTS:
            raise bad_input(f"{name}: array of shape {tuple(shape)} is too large")
        flat: list[Any] = list(value)
        for depth in range(1, len(shape)):
            n = shape[depth]
            nxt: list[Any] = []
            for row in flat:
                if not isinstance(row, (list, tuple)) or len(row) != n:
                    raise bad_input(f"{name}: ragged array (expected rows of length {n} at depth {depth})")
                nxt.extend(row)
            flat = nxt
        for v in flat:
            if type(v) is not float and (type(v) is not int):
                raise bad_request(f"{name}: array values must be numbers, got {type(v).__name__}")
        try:
            data = array("f", flat)
        except (TypeError, OverflowError) as exc:
            raise bad_request(f"{name}: array values must be numbers ({exc})") from None
        return cls(data, shape)

    @classmethod
    def from_json(cls, obj: Any, name: str = "array") -> "Array":
        """Decode the wire form (JSON lists or a ``{"$array": ...}`` object)."""
        if isinstance(obj, dict):
            if obj.get("$array") != "float32":
                raise bad_request(f'{name}: an encoded array needs "$array": "float32"')
            unknown = set(obj) - {"$array", "shape", "base64", "file"}
            if unknown:
                raise bad_request(f"{name}: unknown keys in encoded array: "
                                   f"{', '.join(clip(k, 40) for k in sorted(unknown)[:5])}")
            shape = obj.get("shape")
            if (not isinstance(shape, list) or not 1 <= len(shape) <= 8
                    or not all(type(s) is int for s in shape)):
                raise bad_request(f"{name}: shape must be a list of 1..8 integers")
            if any(s <= 0 for s in shape):
                raise bad_input(f"{name}: shape {tuple(shape)} has a non-positive dimension")
            n = math.prod(shape)
            if n > MAX_ARRAY_ELEMENTS:
                raise bad_input(f"{name}: array of shape {tuple(shape)} is too large")
            if "base64" in obj:
                b64 = obj["base64"]
                if not isinstance(b64, str):
                    raise bad_request(f"{name}: base64 must be a string")
                if len(b64) != 4 * ((4 * n + 2) // 3):
                    raise bad_input(f"{name}: base64 data does not hold {n} float32 values for shape {tuple(shape)}")
                try:
                    raw = base64.b64decode(b64, validate=True)
                except (ValueError, TypeError):
                    raise bad_request(f"{name}: invalid base64 data") from None
            elif "file" in obj:
                path = obj["file"]
                if not isinstance(path, str) or not path or "\x00" in path or len(path) > 4096:
                    raise bad_request(f"{name}: file must be a path string")
                raw = _read_array_file(path, 4 * n, name, tuple(shape))
            else:
                raise bad_request(f'{name}: an encoded array needs "base64" or "file"')
            if len(raw) != 4 * n:
                raise bad_input(f"{name}: the array data does not hold {n} float32 values for shape {tuple(shape)}")
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
            raise bad_input(f"{name} must have shape {want}, got {_shape_str(self.shape)}")
        if not self.is_finite():
            raise bad_input(f"{name} contains NaN or infinite values")
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
            raise bad_input(f"{name} holds an axis-angle rotation of {norm:.4g} rad ({where}{joint}); rotations "
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
            raise bad_input(f"{name} holds the coordinate {float(self.data[bad]):.4g} ({self._where(bad, per_row)}); "
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
        raise bad_input(f'{name}: this server does not accept "file" arrays (it was started without '
                         '--array-dir); send the data as "base64"')
    real = os.path.realpath(path)
    if not any(os.path.dirname(real) == d or os.path.dirname(real).startswith(d + os.sep)
               for d in _ARRAY_FILE_DIRS):
        raise bad_input(f"{name}: array file {clip(path)} is outside the session's array folder; "
                         'write it there, or send the data as "base64"')
    flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise bad_input(f"{name}: cannot open array file {clip(path)}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise bad_input(f"{name}: array file {clip(path)} is not a regular file")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise bad_input(f"{name}: array file {clip(path)} belongs to another user")
        if st.st_size != nbytes:
            raise bad_input(f"{name}: array file {clip(path)} holds {st.st_size} bytes, shape {shape} "
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
        raise bad_input(f"{name}: cannot read array file {clip(path)}: {exc.strerror}") from None
    finally:
        os.close(fd)


def encode_array(value: Any, inline_max: int = INLINE_MAX) -> list | dict:
    """Wire form of a numpy array / nested list / :class:`Array` (float32)."""
    return Array.from_value(value).to_json(inline_max)


def decode_array(obj: Any, as_numpy: bool = True) -> Any:
    """Decode a wire array into numpy (``as_numpy``) or an :class:`Array`."""
    arr = Array.from_json(obj)
    return arr.to_numpy() if as_numpy else arr
