"""Image files for photo fitting: accept PNG / JPEG / WebP / BMP only (checked by magic bytes, not by
the file name), report missing, unreadable and non-image files in one line.

``check_image_file`` is numpy/stdlib only (the server calls it while validating a request, before
anything is queued); ``read_image_rgb`` decodes with OpenCV, which mediapipe brings along.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dposer_core.protocol.errors import BadInput

IMAGE_FORMATS = ("PNG", "JPEG", "WebP", "BMP")
MAX_IMAGE_BYTES = 200 * 1024 * 1024
MAX_IMAGE_PIXELS = 100_000_000


class ImageError(BadInput):
    """An image path that cannot be used: missing, unreadable, not an image of a supported format,
    or not decodable. ``str(err)`` is one line naming the file."""


def sniff_image_format(head: bytes) -> str | None:
    """The format of a file from its first bytes ("PNG", "JPEG", "WebP", "BMP"), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head.startswith(b"BM") and len(head) >= 26:
        return "BMP"
    return None


def check_image_file(path: str | os.PathLike) -> str:
    """Raise :class:`ImageError` unless ``path`` is a readable PNG/JPEG/WebP/BMP file; returns its format."""
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise ImageError(f"image {name!r} does not exist")
    if not p.is_file():
        raise ImageError(f"image {name!r} is not a file")
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(32)
    except OSError as exc:
        raise ImageError(f"image {name!r} cannot be read ({exc.strerror or type(exc).__name__})") from None
    if size == 0:
        raise ImageError(f"image {name!r} is empty")
    if size > MAX_IMAGE_BYTES:
        raise ImageError(f"image {name!r} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")
    fmt = sniff_image_format(head)
    if fmt is None:
        raise ImageError(f"{name!r} is not an image file this backend reads "
                         f"(supported: {', '.join(IMAGE_FORMATS)}; checked by content, not by extension)")
    return fmt


def read_image_rgb(path: str | os.PathLike) -> np.ndarray:
    """(H,W,3) uint8 RGB pixels of a checked image file (needs OpenCV, installed with mediapipe)."""
    check_image_file(path)
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - mediapipe brings opencv along
        raise ImageError(f"cannot decode {str(path)!r}: OpenCV is not installed ({exc})") from None
    data = np.fromfile(str(path), dtype=np.uint8)  # (works with non-ASCII paths on Windows, unlike imread)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None or img.ndim != 3 or img.shape[0] < 8 or img.shape[1] < 8:
        raise ImageError(f"image {str(path)!r} could not be decoded (truncated or corrupt file?)")
    if img.shape[0] * img.shape[1] > MAX_IMAGE_PIXELS:
        raise ImageError(f"image {str(path)!r} has more than {MAX_IMAGE_PIXELS // 1_000_000} megapixels")
    return np.ascontiguousarray(img[:, :, ::-1])
