"""The server's byte streams: protocol lines out (stdout protected from stray prints), lines in (bounded),
and the checks on files that requests name (regular files only, refused before queueing).

Torch-free; used by :mod:`backend.server.dispatch` and the handlers.
"""

from __future__ import annotations

import logging
import math
import os
import stat
import sys
import threading
from typing import Any, BinaryIO, Iterator

from dposer_core import protocol as S

log = logging.getLogger("dposer.server")

TOO_LONG = b"\x00toolong"
"""Stands in for an input line longer than ``S.MAX_LINE_BYTES`` (its bytes are drained, not kept)."""
MAX_INPUT_FILE_BYTES = 2 << 30
"""The largest BVH / AMASS file a request may name (read into memory)."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's text (its class name when empty), at most 1000 characters."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:1000]


# ------------------------------------------------------------------------------------------
# Output
# ------------------------------------------------------------------------------------------

def protect_stdout() -> int:
    """Keep the real stdout for protocol lines and point fd 1 (and ``sys.stdout``) at stderr, so stray
    prints (ours, a library's, C code's) cannot corrupt the stream. Returns the saved fd."""
    sys.stdout.flush()
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out_fd


class Output:
    """Writes protocol lines to ``out_fd`` (the saved real stdout), one whole line at a time."""

    def __init__(self, out_fd: int) -> None:
        self.out_fd = out_fd
        self.lock = threading.Lock()

    def send(self, obj: dict) -> None:
        """Write one protocol line (thread-safe). A dead reader ends the process."""
        try:
            data = S.dumps(obj)
        except (ValueError, TypeError) as exc:  # NaN in a result or an unencodable value: a bug
            log.error("cannot encode reply %r: %s", {k: obj[k] for k in ("id", "type") if k in obj}, exc)
            data = S.dumps({"id": obj.get("id"), "type": "error", "code": S.INTERNAL,
                            "message": f"the backend produced a reply it cannot encode ({one_line(exc)})"})
        with self.lock:
            view = memoryview(data)
            try:
                while view:
                    n = os.write(self.out_fd, view)
                    view = view[n:]
            except OSError:  # BrokenPipe: the client is gone
                log.info("stdout closed; exiting")
                os._exit(0)

    def send_error(self, rid: Any, code: str, message: str) -> None:
        """Send the final ``error`` reply for ``rid`` (the message cut to ``S.MAX_MESSAGE_CHARS``)."""
        if len(message) > S.MAX_MESSAGE_CHARS:
            message = message[:S.MAX_MESSAGE_CHARS - 3] + "..."
        self.send({"id": rid, "type": "error", "code": code, "message": message})

    def send_result(self, req: S.Request, values: dict, run_ms: float | None = None) -> None:
        """Send the final ``result`` reply for ``req`` (``values`` encoded through its typed result class)."""
        msg = {"id": req.id, "type": "result", "data": S.encode_result(req.TYPE, values)}
        if run_ms is not None:
            msg["run_ms"] = round(run_ms, 3)
        self.send(msg)


def nonfinite_fields(values: dict) -> list[str]:
    """Names of result values holding NaN or infinity."""
    bad = []
    for k, v in values.items():
        if v is None or isinstance(v, (str, bool, list, dict)):
            continue
        if isinstance(v, S.Array):
            ok = v.is_finite()
        elif hasattr(v, "dtype"):
            import numpy as np

            a = np.asarray(v)
            ok = a.dtype.kind not in "fc" or bool(np.isfinite(a).all())
        elif isinstance(v, (int, float)):
            ok = math.isfinite(float(v))
        else:
            continue
        if not ok:
            bad.append(k)
    return bad


# ------------------------------------------------------------------------------------------
# Input
# ------------------------------------------------------------------------------------------

def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """The lines of ``stream`` until EOF; a line longer than ``S.MAX_LINE_BYTES`` is drained and yielded
    as :data:`TOO_LONG`."""
    while True:
        try:
            line = stream.readline(S.MAX_LINE_BYTES + 1)
        except (OSError, ValueError):
            line = b""
        except MemoryError:
            line = TOO_LONG
        if not line:
            return
        if len(line) > S.MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # drain the rest of the oversized line
                rest = stream.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            line = TOO_LONG
        yield line


def open_regular(path: str, what: str, code: str = S.BAD_INPUT, bad_code: str | None = None) -> int:
    """An fd of ``path`` opened without blocking (O_NONBLOCK: a FIFO cannot hang us) that must be a
    regular file (not a FIFO, device, socket or directory). Raises ``S.ProtocolError`` with ``code``
    when it does not exist, else ``bad_code`` (default ``code``)."""
    shown = S.clip(path, 200)
    bad_code = bad_code or code
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise S.ProtocolError(code, f"{what} {shown} does not exist") from None
    except OSError as exc:
        raise S.ProtocolError(bad_code, f"{what} {shown} cannot be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise S.ProtocolError(bad_code, f"{what} {shown} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a pipe (FIFO)" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise S.ProtocolError(bad_code, f"{what} {shown} is {kind}, not a regular file; choose a file on disk")
    return fd


def read_regular(path: str, what: str) -> bytes:
    """The bytes of a regular file (see :func:`open_regular`), at most :data:`MAX_INPUT_FILE_BYTES`."""
    fd = open_regular(path, what)
    try:
        size = os.fstat(fd).st_size
        if size > MAX_INPUT_FILE_BYTES:
            raise S.ProtocolError(S.BAD_INPUT, f"{what} {S.clip(path, 200)} is larger than "
                                               f"{MAX_INPUT_FILE_BYTES >> 30} GB; split it")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(MAX_INPUT_FILE_BYTES + 1)
    except OSError as exc:
        raise S.ProtocolError(S.BAD_INPUT, f"{what} {S.clip(path, 200)} cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


INPUT_FILES: dict[str, tuple[str, str, str]] = {
    S.RetargetBvhRequest.TYPE: ("BVH file", S.BAD_INPUT, S.BAD_INPUT),
    S.ReadAmassRequest.TYPE: ("AMASS file", S.BAD_INPUT, S.BAD_INPUT),
    S.LoadRequest.TYPE: ("weights file", S.WEIGHTS_MISSING, S.WEIGHTS_INVALID),
    S.FitImageRequest.TYPE: ("image file", S.BAD_INPUT, S.BAD_INPUT)}
"""Requests naming an input file in their ``path`` field -> (what, code when missing, code when not a regular
file): the file must be a readable regular file before the request is queued (checked with a non-blocking
open, so a FIFO cannot hang the reader)."""


def check_paths(req: S.Request) -> None:
    """Refuse ``req`` (``S.ProtocolError`` carrying its id) when the file it names is not a readable regular
    file, or, for ``fit_image``, not an image file (by its magic bytes)."""
    spec = INPUT_FILES.get(req.TYPE)
    path = None if spec is None else req.path  # type: ignore[attr-defined]
    if path is None:
        return
    what, code, bad_code = spec
    try:
        os.close(open_regular(os.path.expanduser(path), what, code, bad_code))
    except S.ProtocolError as exc:
        exc.request_id = req.id
        raise
    if isinstance(req, S.FitImageRequest):
        from backend.photo.image_io import ImageError, check_image_file

        try:
            check_image_file(os.path.expanduser(path))
        except ImageError as exc:
            raise S.ProtocolError(S.BAD_INPUT, one_line(exc), req.id) from None
