"""Reading one file into an upright RGB image, or a clear reason why it cannot be read.

The content decides, never the extension: Pillow sniffs the bytes, and only the formats below are
let through (so no EPS/Ghostscript or other exotic decoder ever runs on untrusted files). Every
failure is an `ImageError` whose message goes into the report as it is.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import threading
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import (  # importing a plugin registers it; Image.open(formats=...) needs them loaded
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    Image,
    ImageFile,
    ImageOps,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    UnidentifiedImageError,
    WebPImagePlugin,  # noqa: F401
    features,
)

from scanner import provenance
from scanner.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from scanner.walk import not_regular

# Decoders let loose on untrusted bytes. (Multi-picture phone JPEGs open through JPEG as "MPO".)
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
try:  # the [heic] extra: phones shoot HEIC
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORT = True
except ImportError:
    HEIF_SUPPORT = False
try:  # Pillow >= 11.3 wheels decode AVIF themselves
    from PIL import AvifImagePlugin  # noqa: F401

    AVIF_SUPPORT = bool(features.check("avif"))
except ImportError:
    AVIF_SUPPORT = False
# What an undecodable HEIF/AVIF file's error row says (keyed by `describe_content`).
MISSING_DECODER = {
    "HEIC/HEIF": "HEIC/HEIF image: install facescan[heic] to scan it",
    "AVIF": "AVIF image: this Pillow has no AVIF decoder; upgrade Pillow to 11.3 or later",
}
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


class ImageError(Exception):
    """A file that cannot be scored. The message is written to the report as it is."""


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # RGB, upright (EXIF orientation applied), first frame
    width: int  # as the viewer shows it, before any draft-mode reduction
    height: int
    format: str
    sha256: str
    evidence: str = ""  # provenance evidence from the file's metadata (scanner.provenance)


def read_file(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's bytes, refusing empty and oversized files before they reach a decoder, and
    files that are not regular files before they are opened (a FIFO would block the open)."""
    try:
        if special := not_regular(os.stat(path).st_mode):
            raise ImageError(special)
        with open(path, "rb") as f:
            data = _read_bounded(f, max_bytes)
    except FileNotFoundError:
        raise ImageError("file not found (it vanished during the scan?)") from None
    except IsADirectoryError:
        raise ImageError("is a directory, not a file") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except OSError as e:
        raise ImageError(f"cannot read file: {e.strerror or e}") from None
    return checked_bytes(data, max_bytes)


def checked_bytes(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """`data`, or the error a file of those bytes gets: empty, or over `max_bytes`. (Uploads to
    the HTTP service are checked here too, so they fail with the same messages.)"""
    if not data:
        raise ImageError("empty file (0 bytes)")
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def _read_bounded(f: BinaryIO, max_bytes: int) -> bytes:
    """At most max_bytes + 1 bytes (one more than allowed says the file is too large), read by
    the file's own size: read(max_bytes + 1) allocates max_bytes up front, which made reading a
    small file three times slower. A file that grew since fstat is read on; size 0 is a file that
    does not say its size (/proc)."""
    size = os.fstat(f.fileno()).st_size
    if size > max_bytes:
        raise _too_large(max_bytes)  # refused unread
    data = f.read(size + 1) if size else b""
    if not size or len(data) > size:
        data += f.read(max_bytes + 1 - len(data))
    return data


def _too_large(max_bytes: int) -> ImageError:
    return ImageError(f"file larger than {max_bytes:,} bytes (raise --max-bytes to scan it)")


def describe_content(head: bytes) -> str:
    """A short guess at what a non-image file is, for the error message."""
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "HTML"
    if text.startswith((b"<?xml", b"<svg")):
        return "XML/SVG"
    if text.startswith(b"%pdf"):
        return "PDF"
    if head[4:8] == b"ftyp" and (head[8:12] in (b"avif", b"avis") or b"avif" in head[16:64]):
        return "AVIF"
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return "HEIC/HEIF"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unknown binary data starting " + head[:8].hex(" ")


def decode(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: int | None = None,
    sha256: str | None = None,
) -> DecodedImage:
    """Decode bytes into an upright RGB image (first frame), or raise ImageError. `sha256` is
    the bytes' digest when the caller already has it (a cache lookup hashes first)."""
    sha256 = sha256 or hashlib.sha256(data).hexdigest()
    image = _open(data, max_pixels)
    fmt = image.format or "unknown"
    stored_size = image.size  # before any draft-mode reduction
    try:
        if draft_size and fmt in ("JPEG", "MPO"):
            # libjpeg scales by 1/2, 1/4 or 1/8 while decoding; never below draft_size.
            image.draft("RGB", (draft_size, draft_size))
        image.load()
        upright_image = upright(image)
        rgb = to_rgb(upright_image)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"image too large: {e}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:
        raise ImageError(f"corrupt or truncated {fmt} data: {e}") from None
    w, h = stored_size[::-1] if _orientation(image) in (5, 6, 7, 8) else stored_size
    evidence = provenance.inspect(data, image)
    return DecodedImage(rgb, w, h, fmt, sha256, evidence)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        try:
            image = Image.open(io.BytesIO(data), formats=accepted_formats())
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            # Over Pillow's own limit (twice it, or once where warnings are errors). Ours decides:
            # read the header without Pillow's; the check below refuses or lets it through.
            image = _open_without_pillow_limit(data)
    except UnidentifiedImageError:
        kind = describe_content(data[:64])
        message = MISSING_DECODER.get(kind, f"not a supported image: content is {kind}")
        raise ImageError(message) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"corrupt image header: {e}") from None
    w, h = image.size
    if w < 1 or h < 1:
        raise ImageError(f"image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageError(
            f"image too large: {w}x{h} = {w * h:,} pixels is over the limit of "
            f"{max_pixels:,} (decompression-bomb guard; raise --max-pixels to scan it)"
        )
    return image


# Decode threads do not swap process-wide settings (Pillow's pixel limit, the warnings filters)
# around each file: with several threads, one thread's restore undoes another's change, and the
# change outlives the scan in the caller's process. Only the rare over-limit header read lifts
# Pillow's limit, briefly and under this lock. (Pillow checks TIFFs again when loading them;
# those stay under Pillow's limit, twice MAX_IMAGE_PIXELS, whatever --max-pixels says.)
_PILLOW_LIMIT_LOCK = threading.Lock()


def _open_without_pillow_limit(data: bytes) -> ImageFile.ImageFile:
    with _PILLOW_LIMIT_LOCK:
        pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(io.BytesIO(data), formats=accepted_formats())
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit


@functools.cache  # once per process: each call would also reset the "already shown" registry
def silence_pillow_warnings() -> None:
    """For a facescan process (CLI, Ray worker): Pillow's warnings about odd files (corrupt
    EXIF, large images) would flood stderr on an untrusted folder, and the report already says
    what could not be read. Library callers keep Pillow's warnings: this is never called there."""
    warnings.filterwarnings("ignore", module=r"PIL(\.|$)")


def accepted_formats() -> tuple[str, ...]:
    """ACCEPTED_FORMATS plus the HEIF/AVIF decoders this installation has."""
    return ACCEPTED_FORMATS + ("HEIF",) * HEIF_SUPPORT + ("AVIF",) * AVIF_SUPPORT


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # malformed EXIF: treat as upright rather than refuse the pixels
        return 1


def upright(image: Image.Image) -> Image.Image:
    """The image as a viewer shows it: EXIF orientation applied (malformed EXIF is ignored)."""
    if _orientation(image) == 1:
        return image
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB. Transparency is composited onto white, as a viewer shows it."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit (or 32-bit integer) grey: scale to 8 bits instead of clipping at 255.
        wide = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode != "I" or wide.max() > 255 else 255.0
        grey = np.clip(np.rint(wide * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        grey = np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if mode == "RGB" else image.convert("RGB")


def load(
    path: str | os.PathLike[str],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    draft_size: int | None = None,
) -> DecodedImage:
    """Read and decode one file (see `decode`)."""
    return decode(read_file(os.fspath(path), max_bytes), max_pixels, draft_size)
