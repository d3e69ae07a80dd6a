"""Generators for the awkward files a real photo pile contains (tests only)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from conftest import noise_image, save_image
from PIL import Image


def jpeg_bytes(image: Image.Image, **save: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", **save)
    return buf.getvalue()


def png_bytes(image: Image.Image, **save: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **save)
    return buf.getvalue()


def png_bomb(width: int = 40_000, height: int = 40_000) -> bytes:
    """A valid-looking PNG header declaring a huge image, with almost no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def two_colour(width: int = 40, height: int = 20) -> Image.Image:
    """Left half red, right half blue: any rotation or flip is visible."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = (255, 0, 0)
    pixels[:, width // 2 :] = (0, 0, 255)
    return Image.fromarray(pixels)


def rotated_jpeg(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg_bytes(two_colour(), exif=exif.tobytes(), quality=95)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buf.getvalue()


def cmyk_jpeg() -> bytes:
    return jpeg_bytes(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), quality=95)  # red


def png16_grey(value: int = 0x8000) -> bytes:
    return png_bytes(Image.fromarray(np.full((8, 8), value, np.uint16)))


def palette_png_with_transparency() -> bytes:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((0, 0), 1)  # one red pixel, the rest palette 0 = transparent
    return png_bytes(image, transparency=0)


def bad_files() -> dict[str, bytes]:
    """Every invalid input of the scanner issue, by file name."""
    jpeg = jpeg_bytes(noise_image(64), quality=90)
    png = png_bytes(noise_image(64))
    return {
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 2],
        "page.jpg": b"<!DOCTYPE html><html><body>not a photo</body></html>",
        "notes.webp": b"just some text, named like an image\n",
        "bomb.png": png_bomb(),
    }


def good_files() -> dict[str, bytes]:
    """Every valid-but-awkward input of the scanner issue, by file name."""
    return {
        "one_pixel.png": png_bytes(Image.new("RGB", (1, 1), (255, 0, 0))),
        "large_3000.jpg": jpeg_bytes(noise_image(3000), quality=70),
        "animated.gif": animated_gif(),
        "cmyk.jpg": cmyk_jpeg(),
        "grey16.png": png16_grey(),
        "palette_alpha.png": palette_png_with_transparency(),
        "rotated.jpg": rotated_jpeg(),
    }


def write_all(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def generated_png(colour: tuple[int, int, int] = (0, 0, 0), size: int = 24) -> bytes:
    """A PNG whose text chunk says Stable Diffusion made it (Automatic1111's `parameters`):
    labelled ai by its metadata, whatever any model scores it."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a face, Steps: 20, Sampler: Euler a")
    return png_bytes(Image.new("RGB", (size, size), colour), pnginfo=info)


# File names a report must carry unharmed: markup, control characters, URI syntax, non-ASCII,
# XML's two forbidden non-characters, and (added by `hostile_pile`) bytes that are not UTF-8.
HOSTILE_NAMES = [
    "markup <b>&amp;\"'.png",
    "new\nline.png",
    "tab\there.png",
    "esc\x1b[31mred.png",
    "bell\x07.png",
    "100% #frag?q=1.png",
    "back\\slash.png",
    "ünïcødé 顔.png",
    "nonchar \uffff\ufffe.png",
]


def hostile_pile(folder: Path) -> dict[str, str]:
    """Flagged (red), real (blue) and unreadable files with hostile names: {path: kind}."""
    kinds = {}
    raw = os.fsdecode(b"raw \xff\xfe.png")  # not UTF-8
    for i, name in enumerate([*HOSTILE_NAMES, raw]):
        path = str(folder / name)
        kind = ("flagged", "real", "error")[i % 3]
        if kind == "error":
            folder.mkdir(parents=True, exist_ok=True)
            Path(path).write_text("not an image")
        else:
            save_image(Path(path), (255, 0, 0) if kind == "flagged" else (0, 0, 255))
        kinds[path] = kind
    return kinds


ODD_NAMES = [
    "comma, name.png",
    'quote"name.png',
    "new\nline.png",
    "=SUM(A1).png",
    "@at.png",
    "+plus.png",
    "-minus.png",
    "ünïcødé 顔.png",
    "space name.png",
]


def awkward_pile(tmp_path: Path) -> Path:
    """tmp_path/pile: a folder holding every bad and awkward input of the scanner issue."""
    folder = tmp_path / "pile"
    write_all(folder, bad_files())
    write_all(folder / "awkward", good_files())
    for name in ODD_NAMES:
        save_image(folder / "names" / name, (0, 0, 200))
    (folder / "loop").mkdir()
    (folder / "loop" / "back").symlink_to(folder)
    (folder / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    return folder
