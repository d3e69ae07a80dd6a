"""The decompression-bomb and file-size guards, with their defaults, and the sizes face detection
may run at (no Pillow import: the CLI shows the defaults in --help and checks its options)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_PIXELS = 100_000_000  # 108-MP phone photos pass; a 40000 x 40000 "bomb" does not
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
SIZE_MULTIPLE = 32  # the detector's input height and width must be multiples of 32
MAX_DETECT_SIZE = 4096


@dataclass(frozen=True)
class DecodeLimits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES


def valid_detect_size(size: int) -> bool:
    return SIZE_MULTIPLE <= size <= MAX_DETECT_SIZE and size % SIZE_MULTIPLE == 0
