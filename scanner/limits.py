"""The decompression-bomb and file-size guards, with their defaults (no Pillow import: the CLI
shows the defaults in --help)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_PIXELS = 100_000_000  # 108-MP phone photos pass; a 40000 x 40000 "bomb" does not
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class DecodeLimits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
