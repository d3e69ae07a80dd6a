"""Faces in a photo: the shipped detector (CenterFace) and the crop a classifier sees.

`FaceDetector` owns one onnxruntime session on models/centerface.onnx (origin and licence in
models/README-centerface.md) and turns an upright RGB image into `Face`s: a box, a score and five
landmarks, in that image's pixels. `face_crop` cuts the square the classifier scores, levelled by
the eyes when asked; `FaceCropSpec` holds every choice behind it, so the trainer and the scanner
crop alike. `FacePhoto` decodes a camera JPEG only as finely as each step needs.

Coordinates are continuous pixels: the image spans [0, width] x [0, height] and pixel (i, j) covers
[j, j + 1) x [i, i + 1), so scaling a box between two decodes of one image is a multiplication.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from scanner.decode import DEFAULT_MAX_PIXELS, DecodedImage, accepted_formats, decode
from scanner.metadata import InvalidModelError
from scanner.preprocess import (  # FaceCropSpec lives with the rest of the preprocessing
    RESIZE_FILTERS,
    SIZE_MULTIPLE,
    FaceCropSpec,
    valid_detect_size,
)
from scanner.shipped import models_folder

MODEL_NAME = "centerface.onnx"
STRIDE = 4  # CenterFace's output maps have one cell per 4 x 4 input pixels
# Landmark order as CenterFace gives it (left and right as the image shows them).
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
DEFAULT_THRESHOLD = 0.5  # heatmap peak a face needs
NMS_IOU = 0.3  # two boxes overlapping more than this are one face
# A crop is cut from a decode where its square is at least this many times the output size, so
# the final resize always shrinks. `tools/measure_faces.py draft`: such crops differ from crops of
# the full decode by 0.22/255 on average; at 1-2x by 0.49/255, under 1x by 3.7/255 (max 17.7).
OVERSAMPLE = 2.0
# CenterFace finds 93 % of the faces whose box is 29 px at its input, 97 % at 35 px (measured on
# the shared test faces, tools/measure_faces.py min-face): detection runs at the resolution
# where the smallest face worth scoring (min_face) is this large.
RELIABLE_FACE_PX = 32
# A face that fills the frame (a close-up, an avatar, a tight crop) is often not found: CenterFace
# learnt faces with some scene around them. When nothing is found, detection runs again with the
# image framed in mid grey, this fraction of its longer side on each side, at the same scale (so
# the framed copy costs 4 x the first try, capped at detect_size). On faces3's test images cut to
# their central half, 933 of 975 get a face of min_face, not 734 (tools/measure_faces.py found).
# Grey, not the edge pixels repeated outward: in a one-off trial those smeared the face and found
# 10 more faces where grey found 198.
CLOSE_UP_FRAME = 0.5
FRAME_GREY = 128
# Which faces a photo yields, for the result cache's key: a row cached before a change of what the
# detector finds (2: close-ups found in the grey frame) is a miss, not a stale score.
DETECTION_VERSION = 2


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float  # the heatmap peak, 0..1
    landmarks: tuple[tuple[float, float], ...]  # (x, y) per LANDMARKS entry

    @property
    def size(self) -> float:
        """The box's longer side: the face's size in pixels."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0)

    def scaled(self, sx: float, sy: float) -> Face:
        """The same face in a copy of the image resized by (sx, sy)."""
        x0, y0, x1, y1 = self.box
        points = tuple((x * sx, y * sy) for x, y in self.landmarks)
        return Face((x0 * sx, y0 * sy, x1 * sx, y1 * sy), self.score, points)

    def shifted(self, dx: float, dy: float) -> Face:
        """The same face in a copy of the image moved by (dx, dy)."""
        x0, y0, x1, y1 = self.box
        points = tuple((x + dx, y + dy) for x, y in self.landmarks)
        return Face((x0 + dx, y0 + dy, x1 + dx, y1 + dy), self.score, points)

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


def default_detector_path() -> Path:
    """The CenterFace model shipped inside the package (models/ in the source tree)."""
    return models_folder() / MODEL_NAME


@functools.cache
def shared_detector(detect_size: int, provider: str, pid: int) -> FaceDetector:
    """One detector per process, detect size and provider, shared by the decode threads
    (onnxruntime sessions run concurrently from several threads). One intra-op thread each:
    the decode workers are the parallelism. `pid`: a forked process builds its own."""
    return FaceDetector(provider=provider, threads=1, detect_size=detect_size)


class FaceDetector:
    """CenterFace on onnxruntime: upright RGB images in, faces out."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        provider: str = "auto",
        threads: int | None = None,
        detect_size: int = FaceCropSpec.detect_size,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        from scanner.session import open_session  # onnxruntime loads with it, not at import

        if not valid_detect_size(detect_size):
            raise ValueError(f"detect_size {detect_size} is not a multiple of 32 in 32..4096")
        if not 0 < threshold < 1:
            raise ValueError(f"threshold {threshold} is not between 0 and 1")
        self.path = Path(model_path) if model_path is not None else default_detector_path()
        if not self.path.is_file():
            raise InvalidModelError(f"face detector model not found: {self.path}")
        self._session = open_session(self.path, provider, threads)
        self.provider = self._session.get_providers()[0]
        self._input = self._session.get_inputs()[0].name
        # heatmap, scale, offset, landmarks: the order tools/prepare_centerface.py checked
        self._outputs = [output.name for output in self._session.get_outputs()]
        if len(self._outputs) != 4:
            raise InvalidModelError(f"{self.path} is not CenterFace: {self._outputs} outputs")
        self.detect_size = detect_size
        self.threshold = threshold

    def detect(
        self, image: Image.Image, max_side: int | None = None, close_ups: bool = True
    ) -> list[Face]:
        """Faces in an upright RGB image, in its pixels, best score first. The network sees the
        image shrunk to `max_side` (default detect_size) on its longer side, never enlarged.
        When none is found, and `close_ups`, it looks again with the image framed in grey
        (CLOSE_UP_FRAME): a face that fills the picture is found there."""
        if image.mode != "RGB":
            raise ValueError(f"detect needs an RGB image, got mode {image.mode}")
        side = max_side or self.detect_size
        faces = self._detect(image, side, frame=0.0)
        if faces or not close_ups:
            return faces
        # The framed copy at the same scale, unless that exceeds detect_size: then smaller.
        side = min(side, math.floor(self.detect_size / (1 + 2 * CLOSE_UP_FRAME)))
        return self._detect(image, side, CLOSE_UP_FRAME)

    def _detect(self, image: Image.Image, side: int, frame: float) -> list[Face]:
        """detect's network pass: the image at `side` px, framed by `frame` of it in grey.
        A face the frame holds more of than the image (its centre outside) is dropped."""
        tensor, scale, offset = self._input_tensor(image, side, frame)
        heatmap, sizes, offsets, landmarks = self._session.run(self._outputs, {self._input: tensor})
        faces = decode_outputs(heatmap[0], sizes[0], offsets[0], landmarks[0], self.threshold)
        width, height = image.size
        faces = [face.shifted(-offset, -offset).scaled(*scale) for face in faces]
        inside = [f for f in faces if 0 <= f.centre[0] <= width and 0 <= f.centre[1] <= height]
        return [clip_face(face, width, height) for face in inside]

    def _input_tensor(
        self, image: Image.Image, max_side: int, frame: float = 0.0
    ) -> tuple[np.ndarray, tuple[float, float], int]:
        """float32 [1, 3, H, W], 0..255 RGB, the factors from its pixels back to the image's,
        and where the image starts in it (the grey frame's width, 0 without one). A large
        image is shrunk to max_side; a small one is not enlarged. Either way the bottom and
        right are padded with black to a multiple of 32 (black adds no face)."""
        width, height = image.size
        ratio = min(1.0, max_side / max(width, height))
        if ratio < 1:
            size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
            # reducing_gap: a box reduce first (4000 x 3000 to 640 x 480: 28 ms, not 54)
            image = image.resize(size, RESIZE_FILTERS["bilinear"], reducing_gap=2.0)
        w, h = image.size
        pad = round(max(w, h) * frame)
        padded = np.zeros((3, _round_up(h + 2 * pad), _round_up(w + 2 * pad)), np.float32)
        if pad:
            padded[:, : h + 2 * pad, : w + 2 * pad] = FRAME_GREY
        # cast while copying: 3 ms, not 7
        padded[:, pad : pad + h, pad : pad + w] = np.asarray(image).transpose(2, 0, 1)
        return padded[None], (width / w, height / h), pad


def _round_up(n: int) -> int:
    return -(-n // SIZE_MULTIPLE) * SIZE_MULTIPLE


def decode_outputs(
    heatmap: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    landmarks: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Face]:
    """Faces from one image's CenterFace maps ([1|2|2|10, h, w]), in network-input pixels.

    Each cell whose heatmap value passes the threshold proposes a face centred at
    (cell + 0.5 + offset) * STRIDE, with height and width exp(scale) * STRIDE; landmarks are
    fractions of the box from its top-left corner, stored (y, x). Overlapping proposals of one
    face are merged by NMS, keeping the highest score.
    """
    rows, cols = np.nonzero(heatmap[0] > threshold)
    scores = heatmap[0, rows, cols]
    h, w = np.exp(scale[:, rows, cols]) * STRIDE
    cy = (rows + offset[0, rows, cols] + 0.5) * STRIDE
    cx = (cols + offset[1, rows, cols] + 0.5) * STRIDE
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    marks = landmarks[:, rows, cols].reshape(5, 2, -1)  # (point, y|x, proposal)
    xs = boxes[:, 0] + marks[:, 1] * w
    ys = boxes[:, 1] + marks[:, 0] * h
    return [
        Face(
            tuple(float(v) for v in boxes[i]),  # type: ignore[arg-type]
            float(scores[i]),
            tuple((float(x), float(y)) for x, y in zip(xs[:, i], ys[:, i], strict=True)),
        )
        for i in nms(boxes, scores, NMS_IOU)
    ]


def nms(boxes: np.ndarray, scores: np.ndarray, max_iou: float) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression, highest score first."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        best, order = order[0], order[1:]
        keep.append(int(best))
        if order:
            overlaps = box_iou(boxes[best], boxes[order])
            order = [i for i, iou in zip(order, overlaps, strict=True) if iou <= max_iou]
    return keep


def box_iou(box: np.ndarray | tuple[float, ...], others: np.ndarray) -> np.ndarray:
    """Intersection over union of one x0, y0, x1, y1 box with each row of `others`."""
    box, others = np.asarray(box, np.float64), np.atleast_2d(np.asarray(others, np.float64))
    lo = np.maximum(box[:2], others[:, :2])
    hi = np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(others[:, 2:] - others[:, :2], axis=1)
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-12))


def clip_face(face: Face, width: int, height: int) -> Face:
    """The face with its box cut to the image (landmarks stay where the network put them)."""
    x0, y0, x1, y1 = face.box
    box = (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
    return Face(box, face.score, face.landmarks)


# --- crop geometry -----------------------------------------------------------------------------


def crop_square(face: Face, margin: float, align: bool) -> tuple[float, float, float, float]:
    """(centre x, centre y, side, angle in radians) of the square a crop takes from the image.
    The angle turns the image so that the eyes (landmarks 0 and 1) end up level."""
    x0, y0, x1, y1 = face.box
    side = face.size * (1 + 2 * margin)
    angle = 0.0
    if align:
        (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
        angle = math.atan2(ry - ly, rx - lx) if (lx, ly) != (rx, ry) else 0.0
    return (x0 + x1) / 2, (y0 + y1) / 2, side, angle


def face_crop(
    image: Image.Image,
    face: Face,
    size: int = FaceCropSpec.output_size,
    margin: float = FaceCropSpec.margin,
    align: bool = FaceCropSpec.align,
) -> Image.Image:
    """The size x size RGB crop of `face` (in `image`'s pixels) that FaceCropSpec describes.

    Steps: cut the square's bounding box (mirroring the photo where the box leaves it: a mirror
    continues the picture without the hard edge a black or smeared border adds), shrink it by a
    whole factor while it stays at least OVERSAMPLE x size (a cheap box average), turn it
    (bilinear affine) when aligning, and resize it to size x size (bilinear, antialiased).
    """
    cx, cy, side, angle = crop_square(face, margin, align)
    reach = side / 2 * (abs(math.cos(angle)) + abs(math.sin(angle))) + 1  # +1: bilinear taps
    left, top = math.floor(cx - reach), math.floor(cy - reach)
    region = mirrored_region(image, (left, top, math.ceil(cx + reach), math.ceil(cy + reach)))
    factor = max(1, int(side / (OVERSAMPLE * size)))
    if factor > 1:
        region = region.reduce(factor)
    cx, cy, side = (cx - left) / factor, (cy - top) / factor, side / factor
    if angle:
        region = _turned_square(region, cx, cy, side, angle)
        cx = cy = region.width / 2
        side = region.width  # the turned square fills it, up to a sub-pixel scale
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    return region.resize((size, size), RESIZE_FILTERS["bilinear"], box=box)


def _turned_square(
    image: Image.Image, cx: float, cy: float, side: float, angle: float
) -> Image.Image:
    """The side x side square centred at (cx, cy) and turned by `angle`, upright, at the image's
    own scale (rounded up to whole pixels). Pillow's AFFINE maps each output point to an input
    point: input = centre + R(angle) (s (output - n / 2))."""
    n = max(1, math.ceil(side))
    s = side / n
    cos, sin = math.cos(angle) * s, math.sin(angle) * s
    coeffs = (cos, -sin, cx - (cos - sin) * n / 2, sin, cos, cy - (sin + cos) * n / 2)
    return image.transform((n, n), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR)


def mirrored_region(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """image.crop(box), with the parts of the box outside the image mirrored from inside it."""
    left, top, right, bottom = box
    width, height = image.size
    inside = image.crop((max(left, 0), max(top, 0), min(right, width), min(bottom, height)))
    pad = ((max(0, -top), max(0, bottom - height)), (max(0, -left), max(0, right - width)))
    if not any(any(p) for p in pad):
        return inside
    # numpy's "symmetric" repeats the edge pixel, as a mirror at the pixel boundary would.
    pixels = np.pad(np.asarray(inside), (*pad, (0, 0)), mode="symmetric")
    return Image.fromarray(pixels)


# --- camera photos: decode only as finely as each step needs -----------------------------------


class FacePhoto:
    """One photo's bytes, decoded at reduced scale for detection and only as finely as each face
    needs for its crop. libjpeg decodes a JPEG at 1/8, 1/4, 1/2 or full scale (Image.draft);
    every decode is kept for the next face. Other formats decode once, at full size.

    Faces are in the photo's full-size pixels (upright, as a viewer shows it), whichever decode
    found them.
    """

    def __init__(
        self,
        data: bytes,
        detect_size: int = FaceCropSpec.detect_size,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        sha256: str | None = None,
    ) -> None:
        self._data, self._max_pixels = data, max_pixels
        stored = _stored_size(data)  # EXIF orientation may swap the sides, never their lengths
        # (None: the header alone is not enough; a full decode copes, or says what is wrong)
        draft = _draft_size(min(stored), detect_size / max(stored)) if stored else None
        sha256 = sha256 or hashlib.sha256(data).hexdigest()
        self.decoded = decode(data, max_pixels, draft, sha256)
        self.width, self.height = self.decoded.width, self.decoded.height
        self._decodes = [self.decoded.image]

    @classmethod
    def of_image(cls, image: Image.Image) -> FacePhoto:
        """An image already in memory (upright RGB): its one full-size decode serves detection
        and every crop, so an in-memory image is cut as a file holding it would be."""
        photo = cls.__new__(cls)
        photo._data, photo._max_pixels = b"", image.width * image.height
        photo.decoded = DecodedImage(image, image.width, image.height, "", "")
        photo.width, photo.height = image.size
        photo._decodes = [image]
        return photo

    @property
    def detection_image(self) -> Image.Image:
        """The first decode: longer side at least detect_size, or the coarsest libjpeg allows."""
        return self._decodes[0]

    def image_at(self, scale: float) -> Image.Image:
        """The coarsest decode at least `scale` times the full size (decoding only when none
        of those made so far is fine enough)."""
        fine = [image for image in self._decodes if image.width >= scale * self.width - 1]
        if fine:
            return min(fine, key=lambda image: image.width)
        draft = _draft_size(min(self.width, self.height), scale)
        image = decode(self._data, self._max_pixels, draft, self.decoded.sha256).image
        self._decodes.append(image)
        return image

    def detect(
        self, detector: FaceDetector, min_face: int = FaceCropSpec.min_face, close_ups: bool = True
    ) -> list[Face]:
        """Every face found in the photo (full-size pixels), best first, on the coarsest decode
        that shows a face of `min_face` pixels at RELIABLE_FACE_PX (`detection_side`)."""
        side = detection_side(max(self.width, self.height), detector.detect_size, min_face)
        image = self.image_at(side / max(self.width, self.height))
        sx, sy = self.width / image.width, self.height / image.height
        return [face.scaled(sx, sy) for face in detector.detect(image, side, close_ups)]

    def crops(self, faces: Sequence[Face], spec: FaceCropSpec) -> list[Image.Image]:
        """`crop` of each face, after `decode_for` them."""
        self.decode_for(faces, spec)
        return [self.crop(face, spec) for face in faces]

    def decode_for(self, faces: Sequence[Face], spec: FaceCropSpec) -> None:
        """Make the finest decode these faces' crops need, so that one decode serves them all:
        a photo with a small and a mid-sized face costs a full decode, not a half-scale one and
        then a full one (12-MP JPEG: 69 ms and 117 ms)."""
        if faces:
            self.image_at(max(crop_scale(face, spec) for face in faces))

    def crop(self, face: Face, spec: FaceCropSpec) -> Image.Image:
        """face_crop of a full-size face, cut from a decode where its square is at least
        OVERSAMPLE x output_size pixels (or the full decode)."""
        image = self.image_at(crop_scale(face, spec))
        local = face.scaled(image.width / self.width, image.height / self.height)
        return face_crop(image, local, spec.output_size, spec.margin, spec.align)


def crop_scale(face: Face, spec: FaceCropSpec) -> float:
    """The decode scale at which a full-size face's crop square is OVERSAMPLE x output_size."""
    side = face.size * (1 + 2 * spec.margin)
    return min(1.0, OVERSAMPLE * spec.output_size / max(side, 1e-6))


def detection_side(longest: int, detect_size: int, min_face: int) -> int:
    """The longer side detection runs at: large enough that a face of `min_face` pixels is
    RELIABLE_FACE_PX there, never more than detect_size or the photo itself. Smaller faces
    are not scored, so finding them does not pay for the pixels: a 256-px portrait is detected
    at 128 px with the default min_face of 64, four times cheaper than at 256."""
    wanted = math.ceil(longest * RELIABLE_FACE_PX / max(min_face, 1))
    return max(SIZE_MULTIPLE, min(detect_size, longest, wanted))


def _draft_size(short_side: int, scale: float) -> int | None:
    """decode()'s draft_size for a decode at least `scale` of full size: it drafts to at least
    draft_size on both sides, so ask it of the shorter one. None: the full decode."""
    return math.ceil(short_side * scale) if scale < 1 else None


def _stored_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header (before EXIF orientation), or None if Pillow's plain
    open refuses the bytes."""
    try:
        with Image.open(io.BytesIO(data), formats=accepted_formats()) as image:
            return image.size
    except Exception:  # decode() reports the problem with facescan's own message
        return None
