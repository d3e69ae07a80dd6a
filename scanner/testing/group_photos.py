"""Group photos built from the shared faces: several dataset images pasted at chosen sizes onto one
photo-like canvas, each with its pasted square and its label (tests, bench/faces_bench.py and
tools/measure_faces.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class PastedFace:
    path: Path  # the dataset image
    label: str  # its folder in the dataset: "real" or "fake"
    square: tuple[int, int, int, int]  # x0, y0, x1, y1 where it was pasted, resized to a square

    def to_canvas(self, box: tuple[float, ...], source_size: tuple[int, int]) -> tuple[float, ...]:
        """A box in the source image's pixels, moved to where that image lies on the canvas."""
        x0, y0, x1, y1 = self.square
        sx, sy = (x1 - x0) / source_size[0], (y1 - y0) / source_size[1]
        return (x0 + box[0] * sx, y0 + box[1] * sy, x0 + box[2] * sx, y0 + box[3] * sy)


def photo_background(width: int, height: int, seed: int = 0) -> Image.Image:
    """A face-free stand-in for a photo: soft colour patches (a coarse random grid, enlarged
    smoothly) with a little sensor-like noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(40, 220, (6, 8, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), np.int16)
    noise = rng.integers(-6, 7, (height, width, 1), dtype=np.int16)  # one grain for all channels
    return Image.fromarray(np.clip(smooth + noise, 0, 255).astype(np.uint8))


def group_photo(
    sources: list[Path],
    sizes: list[int],
    canvas: tuple[int, int] = (1600, 1200),
    seed: int = 0,
) -> tuple[Image.Image, list[PastedFace]]:
    """Each source image resized to its size x size and pasted where it overlaps no other
    (positions drawn with `seed`, largest first so that they fit). ValueError when they cannot
    all be placed."""
    if len(sources) != len(sizes):
        raise ValueError(f"{len(sources)} sources but {len(sizes)} sizes")
    rng = np.random.default_rng(seed)
    photo = photo_background(*canvas, seed=seed)
    pasted: dict[int, PastedFace] = {}
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        taken = [p.square for p in pasted.values()]
        square = _free_square(sizes[index], canvas, taken, rng)
        with Image.open(sources[index]) as source:
            face = source.convert("RGB").resize((sizes[index],) * 2, Image.Resampling.LANCZOS)
        photo.paste(face, square[:2])
        pasted[index] = PastedFace(sources[index], sources[index].parent.name, square)
    return photo, [pasted[i] for i in range(len(sources))]


def _free_square(
    size: int,
    canvas: tuple[int, int],
    taken: list[tuple[int, int, int, int]],
    rng: np.random.Generator,
    gap: int = 8,
) -> tuple[int, int, int, int]:
    for _ in range(1000):
        x = int(rng.integers(0, canvas[0] - size + 1))
        y = int(rng.integers(0, canvas[1] - size + 1))
        square = (x, y, x + size, y + size)
        if all(_apart(square, other, gap) for other in taken):
            return square
    raise ValueError(f"no room for a {size}-px face on a {canvas[0]}x{canvas[1]} canvas")


def _apart(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: int) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]
