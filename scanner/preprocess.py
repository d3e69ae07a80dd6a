"""Geometry and value range: an upright RGB image in, the model's input tensor out.

This is the one preprocessing path of facescan. The scanner calls it on every file and the trainer
imports it, so a model sees at training time exactly the pixels it will see when scanning. Every
choice is a field of `PreprocessSpec`, which the exporter writes into the ONNX file's metadata.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from PIL import Image

from scanner.limits import SIZE_MULTIPLE, valid_detect_size  # noqa: F401 (faces.py reads them here)

RESIZE_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
GEOMETRIES = ("resize", "crop")
SMALL_IMAGE_POLICIES = ("pad", "upscale")
LAYOUTS = ("NHWC", "NCHW")
CHANNEL_ORDERS = ("RGB", "BGR")
ADDED_LATER = ("reducing_gap", "faces")  # fields whose default is the behaviour before them
DETECTORS = ("centerface",)


@dataclass(frozen=True)
class FaceCropSpec:
    """How a photo becomes face crops. Stored in a model's metadata so that the trainer and the
    scanner cut the same crop; the classifier's PreprocessSpec then takes the crop as its image.

    The crop is the square centred on the detector's box (cut to the photo) with side
    max(box width, box height) * (1 + 2 * margin), turned by the eyes' angle when `align`,
    resized to output_size x output_size. Where it leaves the photo the photo is mirrored.
    """

    detector: str = "centerface"
    # Detection runs on a copy whose longer side is at most this: at 960 a face of 5 % of a
    # photo's longer side is still about 48 px there, where CenterFace finds 9 in 10
    # (tools/measure_faces.py groups; at 640 half of them were missed).
    detect_size: int = 960
    # Smaller faces (box's longer side, photo pixels) are listed, not scored: the classifier
    # learns from faces of 100 px and more, and detection runs at the resolution that finds
    # faces of this size (scanner.faces.detection_side), so it also sets the detection cost.
    min_face: int = 64
    margin: float = 0.1  # added on each side, as a fraction of the box's longer side
    align: bool = True  # rotate so the eyes are level
    output_size: int = 256  # the crop's side

    def __post_init__(self) -> None:
        problems = []
        if self.detector not in DETECTORS:
            problems.append(f"detector {self.detector!r} is not one of {', '.join(DETECTORS)}")
        if not valid_detect_size(self.detect_size):
            problems.append(f"detect_size {self.detect_size} is not a multiple of 32 in 32..4096")
        if not 0 <= self.min_face <= 100_000:
            problems.append(f"min_face {self.min_face} is not in 0..100000")
        if not 0 <= self.margin <= 2:
            problems.append(f"margin {self.margin} is not in 0..2")
        if not 8 <= self.output_size <= 4096:
            problems.append(f"output_size {self.output_size} is not in 8..4096")
        if problems:
            raise ValueError("invalid face crop: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceCropSpec:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown face crop keys: {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class PreprocessSpec:
    """How pixels become the model's input. Stored in, and read back from, the ONNX metadata."""

    input_size: int = 256  # the model's square input, N x N
    # "resize": the whole image resized to N x N (the original notebook's way).
    # "crop": native-resolution N x N crops, no resampling, so high-frequency artefacts survive.
    geometry: str = "resize"
    resize_filter: str = "bilinear"
    crop_grid: int = (
        1  # crop: k x k crops spread evenly over the image, scores averaged (1 = centre)
    )
    small_image: str = "pad"  # crop: an image smaller than N is "pad"ded (mirrored) or "upscale"d
    jpeg_draft: bool = False  # resize: let libjpeg decode at reduced scale (faster, other pixels)
    # resize: Pillow's reducing_gap. Above 0, shrink first by a whole factor with a box reduce
    # (cheap: a 256-px image to 128 px costs a quarter of a bilinear resize) while the image
    # stays at least reducing_gap times the target, then resample the rest. 0: one resample.
    reducing_gap: float = 0.0
    value_range: tuple[float, float] = (0.0, 1.0)  # where uint8 0 and 255 land
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # subtracted after value_range ...
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)  # ... then divided, per channel
    channel_order: str = "RGB"
    layout: str = "NHWC"
    # Face crops: the detector finds the faces, each becomes one FaceCropSpec crop, and the rest
    # of this spec applies to the crop as it would to a whole image. None: the whole image.
    faces: FaceCropSpec | None = None

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.input_size <= 4096:
            problems.append(f"input_size {self.input_size} is not in 1..4096")
        choices: list[tuple[str, str, tuple[str, ...]]] = [
            ("geometry", self.geometry, GEOMETRIES),
            ("resize_filter", self.resize_filter, tuple(RESIZE_FILTERS)),
            ("small_image", self.small_image, SMALL_IMAGE_POLICIES),
            ("channel_order", self.channel_order, CHANNEL_ORDERS),
            ("layout", self.layout, LAYOUTS),
        ]
        for name, value, allowed in choices:
            if value not in allowed:
                problems.append(f"{name} {value!r} is not one of {', '.join(allowed)}")
        if self.reducing_gap != 0 and not self.reducing_gap >= 1:
            problems.append(f"reducing_gap {self.reducing_gap} must be 0 (off) or at least 1")
        elif self.reducing_gap and (self.geometry != "resize" or self.resize_filter == "nearest"):
            problems.append("reducing_gap needs geometry resize with a filter other than nearest")
        if not 1 <= self.crop_grid <= 8:
            problems.append(f"crop_grid {self.crop_grid} is not in 1..8")
        if len(self.value_range) != 2 or len(self.mean) != 3 or len(self.std) != 3:
            problems.append("value_range needs 2 numbers, mean and std 3 each")
        elif any(s == 0 for s in self.std):
            problems.append("std must not contain 0")
        if self.faces is not None and self.geometry != "resize":
            problems.append("face crops need geometry resize (the crop is the face)")
        if problems:
            raise ValueError("invalid preprocessing: " + "; ".join(problems))

    @property
    def crops_per_image(self) -> int:
        return self.crop_grid**2 if self.geometry == "crop" else 1

    @property
    def draft_size(self) -> int | None:
        """The size libjpeg may decode down to, or None when full decoding is required."""
        return self.input_size if self.jpeg_draft and self.geometry == "resize" else None

    def to_dict(self) -> dict[str, Any]:
        # A field added after the first release is written only when set, so that an older
        # facescan still reads a model that does not use it.
        unset = {
            f.name
            for f in fields(self)
            if f.name in ADDED_LATER and getattr(self, f.name) == f.default
        }
        return {k: v for k, v in asdict(self).items() if k not in unset}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown preprocessing keys: {', '.join(unknown)}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        if values.get("faces") is not None:
            values["faces"] = FaceCropSpec.from_dict(values["faces"])
        return cls(**values)


def crop_offsets(length: int, size: int, count: int) -> list[int]:
    """`count` crop starts spread evenly over `length` (one crop is centred)."""
    if count == 1:
        return [(length - size) // 2]
    return [round(i * (length - size) / (count - 1)) for i in range(count)]


def ensure_min_size(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """The image as uint8 HWC, at least input_size on each side (crop geometry only)."""
    n = spec.input_size
    w, h = image.size
    if (w < n or h < n) and spec.small_image == "upscale":
        scale = n / min(w, h)
        size = (max(n, round(w * scale)), max(n, round(h * scale)))
        image = image.resize(size, RESIZE_FILTERS[spec.resize_filter])
    pixels = np.asarray(image, dtype=np.uint8)
    pad_h, pad_w = max(0, n - pixels.shape[0]), max(0, n - pixels.shape[1])
    if pad_h or pad_w:
        # Mirror padding adds no new edges or flat areas for a residual filter to react to.
        pad = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
        pixels = np.pad(pixels, pad, mode="symmetric")
    return pixels


def fit_geometry(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """uint8 array (crops, N, N, 3) from an upright RGB image, as the spec says."""
    n = spec.input_size
    if spec.geometry == "resize":
        gap = spec.reducing_gap or None
        resized = image.resize((n, n), RESIZE_FILTERS[spec.resize_filter], reducing_gap=gap)
        return np.asarray(resized, dtype=np.uint8)[None]
    pixels = ensure_min_size(image, spec)
    h, w = pixels.shape[:2]
    crops = [
        pixels[y : y + n, x : x + n]
        for y in crop_offsets(h, n, spec.crop_grid)
        for x in crop_offsets(w, n, spec.crop_grid)
    ]
    return np.stack(crops)


def normalize(crops: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """float32 model input from uint8 (batch, N, N, 3) crops: range, mean/std, order, layout."""
    lo, hi = spec.value_range
    std = np.asarray(spec.std, np.float64)
    # ((v / 255) * (hi - lo) + lo - mean) / std, folded into one scale and offset per channel and
    # applied in place: this runs on every batch in the inference thread.
    scale = ((hi - lo) / 255.0 / std).astype(np.float32)
    offset = ((lo - np.asarray(spec.mean, np.float64)) / std).astype(np.float32)
    x: np.ndarray = crops.astype(np.float32)
    x *= scale
    x += offset
    if spec.channel_order == "BGR":
        x = x[..., ::-1]
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)


def preprocess(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """Model input (crops, ...) for one upright RGB image."""
    return normalize(fit_geometry(image, spec), spec)
