"""The HTML report's pictures of one image: its thumbnail and a crop of each face, as JPEG data
URIs, from one read of the file.

A face crop is cut from the photo itself, not from the thumbnail: a face 5 px wide in a
3000x4000 photo is a dot on a 160-px thumbnail and its own pixels in the crop. Each picture is
decoded only as finely as it needs (`scanner.faces.FacePhoto`): a JPEG's thumbnail at 1/8
scale, a small face's crop at full scale.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scanner.results import FaceResult

if TYPE_CHECKING:
    from PIL import Image

    from scanner.faces import FacePhoto

# A crop is the box and a quarter of its size around it, at most 128 px a side; a smaller face
# keeps its own pixels (the page enlarges them), so the crop shows all the photo has of it.
FACE_CROP_PX = 128
FACE_CROP_MARGIN = 0.25
# 5.5 KB in the page on average, 10.3 KB at most (a 128-px crop of each of the 488 photos of the
# shared faces test split, the face's box taken as the middle of the picture).
FACE_CROP_QUALITY = 80


def pictures(
    path: str, faces: Sequence[FaceResult], size: int, quality: int, sha256: str | None = None
) -> tuple[str | None, list[str | None]]:
    """The thumbnail (upright, at most `size` px a side) and a crop of each of `faces` (boxes in
    the upright image's pixels). None for all when the file cannot be read again (it may have
    changed since it was scored); `sha256`, when known, saves hashing it again."""
    from scanner.decode import read_file  # Pillow: only when a thumbnail is made
    from scanner.faces import FacePhoto

    try:
        photo = FacePhoto(read_file(path), detect_size=size, sha256=sha256)
        image = photo.detection_image.copy()  # the coarsest decode at least `size` px long
        image.thumbnail((size, size))
        return data_uri(image, quality), [face_crop(photo, face) for face in faces]
    except Exception:  # a thumbnail is a convenience: never let it stop the report
        return None, [None] * len(faces)


def face_crop(photo: FacePhoto, face: FaceResult) -> str:
    from scanner.faces import Face
    from scanner.preprocess import FaceCropSpec

    x0, y0, x1, y1 = face.box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * FACE_CROP_MARGIN)
    size = min(FACE_CROP_PX, max(8, math.ceil(side)))  # 8: FaceCropSpec's smallest
    spec = FaceCropSpec(margin=FACE_CROP_MARGIN, align=False, output_size=size)
    crop = photo.crop(Face(face.box, face.detection, ()), spec)
    # A crop of a small face is its own few pixels: 4:4:4 keeps each one's colour.
    return data_uri(crop, FACE_CROP_QUALITY, subsampling=0 if size < FACE_CROP_PX else -1)


def best_faces(faces: Sequence[FaceResult]) -> list[int]:
    """The faces' indices, highest score first, unscored faces (under --min-face) last."""

    def rank(i: int) -> float:
        score = faces[i].score
        return 1.0 if score is None else -score

    return sorted(range(len(faces)), key=rank)


def data_uri(image: Image.Image, quality: int, subsampling: int = -1) -> str:
    """A JPEG data URI; `subsampling` as Pillow's (-1: its default, 4:2:0)."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, subsampling=subsampling)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
