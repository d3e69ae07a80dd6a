"""Every training setting, with its default, in one dataclass; saved whole to RUN/config.json.

The command line starts from RECIPE (the shipped model's recipe) and overrides fields by name
(`--epochs 3`, or `--set p_jpeg=0.2` for the ones without a flag of their own), so a run is
reproduced from its config.json alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from scanner.errors import Exit, FacescanError
from scanner.preprocess import FaceCropSpec, PreprocessSpec
from trainer import pretrained as backbones

AUGMENTATIONS = ("flip", "brightness", "contrast", "rescale", "jpeg", "blur")
# Ranges outside which a setting cannot work. Batches of 1 give BatchNorm no batch statistics;
# a learning rate above 1 diverges with Adam; more than 1,000 epochs is a typo for a run that
# early-stops anyway.
LIMITS = {"epochs": (1, 1000), "batch_size": (2, 1024), "patience": (1, 1000)}


class TrainerError(FacescanError):
    """A problem the user can fix (bad data, bad option, bad run folder): one clear message,
    exit 2 (the command could not run)."""


class CheckFailed(TrainerError):
    """The command ran, and a check it exists to make failed (export parity, a run whose
    calibration found no signal): exit 1."""

    exit = Exit.CHECK_FAILED


@dataclass(frozen=True)
class Augment:
    """Which augmentations run, and how strongly. Each fires with its own probability."""

    enabled: tuple[str, ...] = AUGMENTATIONS
    p_flip: float = 0.5
    p_brightness: float = 0.5
    brightness: float = 0.2  # factor drawn from 1 +- this (the notebook's RandomBrightness)
    p_contrast: float = 0.5
    contrast: float = 0.2
    # Down- and up-scaling with a random filter: a large photo resized for scanning, or a small
    # one upscaled, must look like training data.
    p_rescale: float = 0.5
    rescale: tuple[float, float] = (0.5, 1.5)
    p_jpeg: float = 0.5
    jpeg_quality: tuple[int, int] = (50, 95)
    p_blur: float = 0.2
    blur_radius: float = 1.0

    def problems(self) -> list[str]:
        unknown = [a for a in self.enabled if a not in AUGMENTATIONS]
        found = [f"unknown augmentation(s) {', '.join(unknown)} ({', '.join(AUGMENTATIONS)})"]
        found = found if unknown else []
        found += [
            f"{f.name} {getattr(self, f.name)}: a probability, 0 to 1"
            for f in fields(self)
            if f.name.startswith("p_") and not 0 <= getattr(self, f.name) <= 1
        ]
        if not (0 <= self.brightness < 1 and 0 <= self.contrast < 1):
            found.append("brightness and contrast must be in [0, 1)")
        rescale, quality = self.rescale, self.jpeg_quality
        if len(rescale) != 2 or not 0 < rescale[0] <= rescale[1]:
            found.append(f"rescale={_listed(rescale)}: needs low,high with 0 < low <= high")
        if len(quality) != 2 or not 1 <= quality[0] <= quality[1] <= 100:
            found.append(f"jpeg_quality={_listed(quality)}: needs 1 <= low <= high <= 100")
        if self.blur_radius < 0:
            found.append(f"blur_radius {self.blur_radius}: must be 0 or more")
        return found


@dataclass(frozen=True)
class TrainConfig:
    data: str = "../shared/datasets/faces"
    arch: str = "lean"
    # 0: the architecture's own input size (its ImageNet resolution for the pretrained
    # backbones, trainer/pretrained.py), else the notebook's 256; resolved on construction.
    image_size: int = 0
    preprocess: str = "resize"  # "resize" (the notebook) or "crop" (native-resolution crops)
    crop_grid: int = 1  # crop: k x k crops at evaluation and scan time, scores averaged
    resize_filter: str = "bilinear"
    # resize: let libjpeg decode large JPEGs at 1/2, 1/4 or 1/8 scale (several times faster on
    # camera-sized photos, slightly different pixels); training decodes the same way.
    jpeg_draft: bool = False
    reducing_gap: float = 0.0  # resize: box-reduce by whole factors first (PreprocessSpec)
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3  # peak of a cosine decay over all steps
    patience: int = 6  # early stopping on val ROC-AUC
    seed: int = 1337
    val_fraction: float = 0.1  # flat DATA/{real,fake} layout only: stratified split
    test_fraction: float = 0.1
    # MANIFEST.csv `kind` values to drop; DATA without a manifest has no kinds, nothing to drop.
    exclude_kind: tuple[str, ...] = ()
    # Sources (data.source_of: a generator such as stylegan, or a real photo's origin) left out
    # of every split: a leave-one-generator-out run, scored on that generator afterwards.
    exclude_source: tuple[str, ...] = ()
    limit: int = 0  # at most this many images per split (stratified, seeded); 0 = all
    workers: int = 0  # decoding threads; 0 = one per core
    augment: Augment = field(default_factory=Augment)
    pretrained: str = ""  # "imagenet": start from the backbone's ImageNet weights; "": random
    # Face crops: train on the face the scanner's detector finds (the largest, when several),
    # cut as FaceCropSpec says; the scan then scores every face. Off: the whole image.
    faces: bool = False
    # Test-time augmentation: "flip" scores each face as it is and mirrored and averages the two
    # logits (trainer/archs.py with_tta); the model is wrapped after training, so the validation
    # calibration, every reported figure and the exported ONNX all include it. Twice the cost.
    tta: str = ""
    face_margin: float = FaceCropSpec.margin
    face_align: bool = FaceCropSpec.align
    min_face: int = FaceCropSpec.min_face

    def __post_init__(self) -> None:
        if self.image_size == 0:  # frozen: set once, here, before anyone reads it
            size = backbones.default_input_size(self.arch) or 256
            object.__setattr__(self, "image_size", size)
        if self.pretrained not in ("", *backbones.PRETRAINED):
            raise TrainerError(f"pretrained {self.pretrained!r} is not one of: imagenet, ''")
        if self.pretrained and self.arch not in backbones.BACKBONES:
            raise TrainerError(
                f"--pretrained {self.pretrained} needs --arch {' | '.join(backbones.BACKBONES)}"
            )

    def spec(self) -> PreprocessSpec:
        """The preprocessing this run trains with and the exported model is scanned with."""
        return PreprocessSpec(
            input_size=self.image_size,
            geometry=self.preprocess,
            crop_grid=self.crop_grid,
            resize_filter=self.resize_filter,
            jpeg_draft=self.jpeg_draft,
            reducing_gap=self.reducing_gap,
            faces=self.face_crop(),
            **backbones.normalisation(self.arch),
        )

    def face_crop(self) -> FaceCropSpec | None:
        if not self.faces:
            return None
        return FaceCropSpec(
            margin=self.face_margin,
            align=self.face_align,
            min_face=self.min_face,
            output_size=self.image_size,  # the crop is the model's input: no second resize
        )

    def problems(self) -> list[str]:
        """Why these settings cannot work (ranges only: the architecture's minimum input size
        and the data's size are checked where they are known), or [] when they can."""
        found = [
            f"--{name.replace('_', '-')} {getattr(self, name)}: must be {low} to {high}"
            for name, (low, high) in LIMITS.items()
            if not low <= getattr(self, name) <= high
        ]
        if not 0 < self.lr <= 1:
            found.append(f"--lr {self.lr:g}: must be above 0 and at most 1")
        if not (0 < self.val_fraction < 1 and 0 <= self.test_fraction < 1):
            found.append("val_fraction must be in (0, 1) and test_fraction in [0, 1)")
        elif self.val_fraction + self.test_fraction >= 1:
            found.append("val_fraction + test_fraction must leave images to train on (< 1)")
        if self.limit < 0 or self.workers < 0:
            found.append("--limit and workers must be 0 (all, one per core) or more")
        if self.tta not in ("", "flip"):
            found.append(f"tta {self.tta!r}: '' (none) or flip")
        return found + self.augment.problems()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def recipe(cls) -> TrainConfig:
        """What `facescan-train train DATA` trains when told nothing else (RECIPE)."""
        return cls().override(RECIPE)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        values = dict(values)
        aug = values.pop("augment", {})
        return _build(cls, {**values, "augment": _build(Augment, aug)})

    def override(self, settings: dict[str, Any]) -> TrainConfig:
        """A copy with `settings` applied; augmentation fields may be named directly."""
        top = {f.name for f in fields(self)}
        aug = {k: v for k, v in settings.items() if k not in top}
        new = {k: v for k, v in settings.items() if k in top}
        if aug:
            new["augment"] = _build(Augment, {**asdict(self.augment), **aug})
        if new.get("arch", self.arch) != self.arch:
            if "image_size" not in new:
                new["image_size"] = 0  # the new architecture's own size, not the old one's
            if "pretrained" not in new and new["arch"] not in backbones.BACKBONES:
                new["pretrained"] = ""  # no weights to start from: from scratch
        return dataclasses.replace(self, **{k: _coerce(self, k, v) for k, v in new.items()})


# The shipped `accurate` model's recipe (models/README.md), the command line's defaults. The
# dataclass keeps the neutral defaults (from scratch, whole image, no TTA), which are what a
# config.json written before a field existed meant.
RECIPE: dict[str, Any] = {
    "arch": "efficientnet-lite0",
    "pretrained": "imagenet",
    "faces": True,
    "image_size": 128,
    "epochs": 8,
    "batch_size": 32,
    "lr": 3e-4,
    "patience": 3,
    "exclude_kind": ("manipulated",),  # photoshopped faces are not AI generation
    "tta": "flip",
}


def _listed(values: tuple[Any, ...]) -> str:
    return ",".join(str(v) for v in values)


def _build(cls: Any, values: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise TrainerError(f"unknown setting(s): {', '.join(unknown)} (known: {', '.join(names)})")
    default = cls()
    return cls(**{k: _coerce(default, k, v) for k, v in values.items()})


def _coerce(default: Any, name: str, value: Any) -> Any:
    """Give a value from JSON or the command line the type of the field's default."""
    current = getattr(default, name)
    if isinstance(current, Augment | TrainConfig) or isinstance(value, Augment):
        return value
    if isinstance(current, tuple):
        items = value.split(",") if isinstance(value, str) else list(value)
        items = [i for i in items if i != ""]
        kind = type(current[0]) if current else str
        return tuple(kind(i) for i in items)
    if isinstance(current, bool) and isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise TrainerError(f"setting {name}: {value!r} is not true or false")
        return value.lower() in ("true", "1", "yes")  # bool("false") would be True
    try:
        return type(current)(value)
    except (TypeError, ValueError):
        raise TrainerError(f"setting {name}: {value!r} is not a {type(current).__name__}") from None


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """`key=value` strings (the --set option) to a dict."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TrainerError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out
