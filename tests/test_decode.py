"""Decoding: content sniffing, orientation, colour modes, frames, and every kind of bad file."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from images import (
    animated_gif,
    bad_files,
    cmyk_jpeg,
    good_files,
    jpeg_bytes,
    palette_png_with_transparency,
    png16_grey,
    png_bomb,
    png_bytes,
    rotated_jpeg,
    two_colour,
)
from PIL import Image

from scanner.decode import ImageError, decode, load, read_file

EXPECTED_ERRORS = {
    "empty.jpg": "empty file (0 bytes)",
    "truncated.jpg": "corrupt or truncated JPEG data",
    "truncated.png": "corrupt or truncated PNG data",
    "page.jpg": "not a supported image: content is HTML",
    "notes.webp": "not a supported image: content is text",
    "bomb.png": "image too large: 40000x40000 = 1,600,000,000 pixels",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_bad_files_raise_a_clear_image_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(bad_files()[name])
    with pytest.raises(ImageError) as caught:
        load(path)
    assert EXPECTED_ERRORS[name] in str(caught.value)


@pytest.mark.parametrize("name", sorted(good_files()))
def test_awkward_valid_files_decode_to_rgb(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(good_files()[name])
    decoded = load(path)
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (decoded.width, decoded.height)


def test_content_decides_not_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "actually_a_jpeg.png"
    path.write_bytes(jpeg_bytes(Image.new("RGB", (8, 8), (0, 255, 0))))
    assert load(path).format == "JPEG"


def test_exif_orientation_is_applied() -> None:
    decoded = decode(rotated_jpeg(orientation=6))  # "rotate 90 degrees clockwise to view"
    expected = np.asarray(two_colour().transpose(Image.Transpose.ROTATE_270))
    assert (decoded.width, decoded.height) == (20, 40)
    diff = np.abs(np.asarray(decoded.image).astype(int) - expected)
    assert diff[:16].max() < 10 and diff[24:].max() < 10  # away from the blurred red/blue edge


def test_first_frame_of_an_animation() -> None:
    assert decode(animated_gif()).image.getpixel((8, 8)) == (255, 0, 0)


def test_cmyk_becomes_rgb() -> None:
    r, g, b = decode(cmyk_jpeg()).image.getpixel((8, 8))
    assert r > 240 and g < 15 and b < 15


def test_16_bit_grey_is_scaled_not_clipped() -> None:
    assert decode(png16_grey(0x8000)).image.getpixel((4, 4)) == (128, 128, 128)


def test_transparency_is_composited_on_white() -> None:
    image = decode(palette_png_with_transparency()).image
    assert image.getpixel((0, 0)) == (255, 0, 0)
    assert image.getpixel((5, 5)) == (255, 255, 255)


def test_bomb_is_refused_from_the_header_without_decoding() -> None:
    with pytest.raises(ImageError, match="decompression-bomb guard"):
        decode(png_bomb())
    with pytest.raises(ImageError, match="over the limit of 100"):
        decode(jpeg_bytes(Image.new("RGB", (20, 10))), max_pixels=100)


def test_our_pixel_limit_decides_even_above_pillows_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses over 2,000 pixels
    image = Image.new("RGB", (60, 50), (1, 2, 3))  # 3,000 pixels
    for data in (png_bytes(image), jpeg_bytes(image)):
        assert decode(data, max_pixels=10_000).image.size == (60, 50)
        with pytest.raises(ImageError, match="60x50 = 3,000 pixels is over the limit of 2,500"):
            decode(data, max_pixels=2500)
    # Pillow checks a TIFF again while loading it: there its limit stays, with a clear message.
    tiff = io.BytesIO()
    image.save(tiff, "TIFF")
    with pytest.raises(ImageError, match="image too large"):
        decode(tiff.getvalue(), max_pixels=10_000)
    assert Image.MAX_IMAGE_PIXELS == 1000  # Pillow's limit is put back
    with warnings.catch_warnings():  # a caller who turns warnings into errors (over 1,000)
        warnings.simplefilter("error")
        small = png_bytes(Image.new("RGB", (40, 40)))  # 1,600 pixels: Pillow would warn
        assert decode(small, max_pixels=10_000).image.size == (40, 40)


def test_draft_mode_reduces_decoding_but_reports_the_stored_size() -> None:
    data = jpeg_bytes(Image.new("RGB", (800, 600), (10, 200, 30)))
    decoded = decode(data, draft_size=100)
    assert (decoded.width, decoded.height) == (800, 600)
    assert decoded.image.size == (200, 150)  # libjpeg scale 1/4 keeps both sides >= 100


def test_read_file_refuses_oversized_and_missing_files(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(b"x" * 101)
    with pytest.raises(ImageError, match="larger than 100 bytes"):
        read_file(str(big), max_bytes=100)
    with pytest.raises(ImageError, match="file not found"):
        read_file(str(tmp_path / "gone.jpg"))
    exact = tmp_path / "exact.jpg"
    exact.write_bytes(b"y" * 100)
    assert read_file(str(exact), max_bytes=100) == b"y" * 100


def test_read_file_reads_on_when_a_file_grew_since_its_size_was_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grown = tmp_path / "grown.jpg"
    grown.write_bytes(b"g" * 6000)
    real_fstat = os.fstat
    monkeypatch.setattr(
        os, "fstat", lambda fd: os.stat_result((*real_fstat(fd)[:6], 1000, 0, 0, 0))
    )
    assert os.fstat(0).st_size == 1000  # the size a writer had reached when it was taken
    assert read_file(str(grown)) == b"g" * 6000
    with pytest.raises(ImageError, match="larger than 5,000 bytes"):
        read_file(str(grown), max_bytes=5000)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_read_file_refuses_what_is_not_a_regular_file_without_opening_it(
    tmp_path: Path, kind: str
) -> None:
    """A named pipe would block the open until a writer came (for ever, in a scan), and
    /dev/zero would be read to --max-bytes: both are refused at once, by their stat."""
    if kind == "fifo":
        path = tmp_path / "pipe.jpg"
        os.mkfifo(path)
        message = "not a regular file: a named pipe (FIFO); not read"
    else:
        path = Path("/dev/zero")
        message = "not a regular file: a character device; not read"
    with pytest.raises(ImageError) as refused:
        read_file(str(path))
    assert str(refused.value) == message


def test_sha256_is_of_the_file_bytes(tmp_path: Path) -> None:
    import hashlib

    data = jpeg_bytes(Image.new("RGB", (8, 8)))
    assert decode(data).sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGBA", "I", "F", "YCbCr", "CMYK"])
def test_every_mode_becomes_8_bit_rgb(mode: str) -> None:
    from scanner.decode import to_rgb

    image = Image.new(mode, (4, 4))
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == (4, 4)
