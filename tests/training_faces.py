"""Tiny face-like training sets for the trainer tests: JPEGs where "ai" is noisy and "real" is
smooth, so even a one-epoch model has something to learn."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def face(label: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    side = int(rng.integers(36, 57))
    if label in ("fake", "ai", "generated"):
        pixels = rng.integers(0, 256, (side, side, 3))
    else:
        ramp = np.linspace(0, 255, side)[None, :, None] * rng.uniform(0.5, 1, 3)
        pixels = ramp + rng.normal(0, 4, (side, side, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_faces(
    root: Path,
    per_class: int = 10,
    splits: tuple[str, ...] = ("train", "val", "test"),
    names: tuple[str, str] = ("real", "fake"),
    manifest: bool = False,
) -> Path:
    """DATA/{split}/{real,fake}/*.jpg (or flat DATA/{real,fake} when splits is empty); fakes
    alternate between an ai generator and photoshop (kind=manipulated) in the MANIFEST.csv."""
    rows = []
    seed = 0
    for split in splits or ("",):
        for name in names:
            for i in range(per_class):
                seed += 1
                rel = Path(split, name, f"{name}_{i}.jpg")
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                face(name, seed).save(root / rel, quality=90)
                ai = name != names[0]
                kind = ("manipulated" if i % 3 == 2 else "ai-generated") if ai else "real"
                generator = {"manipulated": "photoshop", "ai-generated": "stylegan"}.get(
                    kind, "ffhq"
                )
                rows.append({"path": rel.as_posix(), "kind": kind, "generator": generator})
    if manifest:
        with open(root / "MANIFEST.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, ["path", "kind", "generator"])
            writer.writeheader()
            writer.writerows(rows)
    return root
