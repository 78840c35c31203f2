"""Which files photo fitting accepts: PNG / JPEG / WebP / BMP by content; one-line errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.photo.image_io import ImageError, check_image_file, sniff_image_format

REPO = Path(__file__).resolve().parents[3]
PHOTOS = REPO / "tests" / "data" / "photos"

HEADS = {
    "PNG": b"\x89PNG\r\n\x1a\n" + b"\x00" * 24,
    "JPEG": b"\xff\xd8\xff\xe0" + b"\x00" * 28,
    "WebP": b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 16,
    "BMP": b"BM" + b"\x00" * 30,
}


@pytest.mark.parametrize("fmt", sorted(HEADS))
def test_sniff_known_formats(fmt: str, tmp_path: Path) -> None:
    assert sniff_image_format(HEADS[fmt]) == fmt
    f = tmp_path / "picture.dat"  # the extension does not matter, the content does
    f.write_bytes(HEADS[fmt])
    assert check_image_file(f) == fmt


@pytest.mark.parametrize("head", [b"GIF89a" + b"\x00" * 26, b"%PDF-1.7\n", b"hello world, not an image",
                                  b"RIFF\x10\x00\x00\x00WAVEfmt ", b"\x89PNX\r\n\x1a\n"])
def test_other_files_are_refused(head: bytes, tmp_path: Path) -> None:
    f = tmp_path / "photo.png"  # named like an image, but is not one
    f.write_bytes(head)
    with pytest.raises(ImageError, match="not an image file") as e:
        check_image_file(f)
    assert "\n" not in str(e.value) and "photo.png" in str(e.value)


def test_missing_empty_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="does not exist"):
        check_image_file(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="not a file"):
        check_image_file(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        check_image_file(tmp_path / "empty.png")


def test_unreadable_file(tmp_path: Path) -> None:
    import os

    f = tmp_path / "locked.png"
    f.write_bytes(HEADS["PNG"])
    f.chmod(0)
    try:
        if os.access(f, os.R_OK):  # root reads anything
            pytest.skip("running as a user who can read a mode-0 file (root)")
        with pytest.raises(ImageError, match="cannot be read"):
            check_image_file(f)
    finally:
        f.chmod(0o644)


def test_shipped_photos_pass() -> None:
    assert check_image_file(PHOTOS / "mannequin_front.png") == "PNG"
    assert check_image_file(PHOTOS / "mannequin_three_quarter.jpg") == "JPEG"


def test_truncated_image_is_reported_when_decoding(tmp_path: Path) -> None:
    pytest.importorskip("cv2", reason="decoding needs OpenCV (installed with requirements/photo.txt)")
    from backend.photo.image_io import read_image_rgb

    f = tmp_path / "cut.png"
    f.write_bytes((PHOTOS / "mannequin_front.png").read_bytes()[:200])
    with pytest.raises(ImageError, match="could not be decoded"):
        read_image_rgb(f)
    img = read_image_rgb(PHOTOS / "mannequin_front.png")
    assert img.shape == (640, 480, 3) and img.dtype.name == "uint8"
