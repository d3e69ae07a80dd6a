"""Model architectures. Each builder takes the input size and returns a Keras model whose output
is ONE LOGIT per image (no sigmoid: the loss takes logits, the exporter adds the calibrated
sigmoid). Add an architecture by writing a builder and naming it in ARCHS.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import keras
from keras import layers

from trainer import efficientnet_lite
from trainer.pretrained import PRETRAINED


def seed_cnn(size: int) -> keras.Model:
    """The original notebook's layout: Conv/MaxPool x3, Flatten, Dense with dropout."""
    x = inputs = keras.Input((size, size, 3), name="images")
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, layers.Dense(1, name="logit")(x), name="seed_cnn")


def lean(size: int) -> keras.Model:
    """FLOP-lean default: strided 3x3 conv blocks with BatchNorm, global average pooling.
    About 0.16 G multiply-adds (0.31 GFLOP) and 0.21 M parameters at
    256 px. No pooling before the first convolutions,
    so the high-frequency traces of a generator reach the filters; global pooling makes the
    model indifferent to where in the face they are."""
    x = inputs = keras.Input((size, size, 3), name="images")
    for filters, stride in ((16, 2), (32, 2), (32, 1), (64, 2), (64, 1), (96, 2), (96, 1)):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        # momentum 0.9, not 0.99: the moving statistics keep up with fast early training, so
        # validation (inference mode) is not judged on stale ones in short runs.
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(inputs, layers.Dense(1, name="logit")(x), name="lean")


def lean_wide(size: int) -> keras.Model:
    """`lean` with pairs of blocks per scale and channels doubling from 24 to 192: more capacity
    at a low input size. About 0.10 G multiply-adds (0.20 GFLOP) and 0.33 M parameters at 128 px
    (four times that at 256). At 128 px it generalised better than `lean` at 256 px on the shared
    data (models/README.md), where 256-px training overfitted."""
    x = inputs = keras.Input((size, size, 3), name="images")
    blocks = ((24, 2), (24, 1), (48, 2), (48, 1), (96, 2), (96, 1), (192, 2))
    for filters, stride in blocks:
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)  # see `lean`
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    return keras.Model(inputs, layers.Dense(1, name="logit")(x), name="lean_wide")


ARCHS: dict[str, Callable[[int], keras.Model]] = {
    "seed-cnn": seed_cnn,
    "lean": lean,
    "lean-wide": lean_wide,
    # ImageNet-pretrainable backbones (trainer/efficientnet_lite.py, trainer/pretrained.py)
    **{name: partial(efficientnet_lite.build, name) for name in efficientnet_lite.VARIANTS},
}


def build(name: str, size: int, pretrained: str = "") -> keras.Model:
    """Architecture `name` at `size` px; `pretrained="imagenet"` loads its ImageNet weights
    (all but the classifier, which the logit head replaces)."""
    if name not in ARCHS:
        raise KeyError(name)
    if pretrained not in ("", *PRETRAINED):
        raise ValueError(f"pretrained {pretrained!r}: choose from {', '.join(PRETRAINED)}")
    model = ARCHS[name](size)
    if pretrained:
        efficientnet_lite.load_imagenet(model, name)
    return model


@keras.saving.register_keras_serializable(package="facescan")
class HorizontalFlip(layers.Layer):
    """The image mirrored left to right (NHWC): a face and its mirror image are the same
    face, so scoring both and averaging is a free second opinion."""

    def call(self, images):
        return keras.ops.flip(images, axis=2)


TTA = ("", "flip")  # test-time augmentation a run can be wrapped in


def with_tta(model: keras.Model, tta: str) -> keras.Model:
    """`model` scoring each image as it is and mirrored, its logit the mean of the two ("flip"),
    or `model` itself (""). The wrapper is what gets calibrated, evaluated and exported, so every
    figure of a run is the model as it scans."""
    if tta not in TTA:
        raise ValueError(f"tta {tta!r}: choose from {', '.join(repr(t) for t in TTA)}")
    if not tta:
        return model
    images = keras.Input(model.input_shape[1:], name="images")
    logits = (model(images) + model(HorizontalFlip(name="mirror")(images))) / 2
    return keras.Model(images, logits, name=f"{model.name}_flip_tta")


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates per image of the conv and dense layers (the bulk of the cost)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D | layers.DepthwiseConv2D | layers.Dense):
            out = layer.output.shape  # (None, h, w, c) or (None, c)
            kernel = layer.kernel.shape  # (kh, kw, in, out|mult) or (in, out)
            spatial = int(out[1]) * int(out[2]) if len(out) == 4 else 1
            per_output = int(kernel[0]) * int(kernel[1]) if len(kernel) == 4 else int(kernel[0])
            if len(kernel) == 4 and not isinstance(layer, layers.DepthwiseConv2D):
                per_output *= int(kernel[2])
            total += spatial * int(out[-1]) * per_output
    return total


# The last convolutional feature map must be at least this many pixels a side: at 1 x 1 a
# network that downsamples by 16 sees the whole face as one position and learns nothing spatial.
MIN_FEATURE_MAP = 2


def feature_map_side(name: str, size: int) -> int:
    """The shorter side of the last image-like (4-D) output of `name` built for `size` px:
    what its global pooling or flattening receives; 0 when the input is too small to build."""
    try:
        model = build(name, size)
    except ValueError:  # a valid convolution or pooling of a map smaller than its kernel
        return 0
    maps = [layer.output.shape for layer in model.layers if len(layer.output.shape) == 4]
    return min(int(maps[-1][1]), int(maps[-1][2]))


def smallest_input(name: str, step: int = 8, largest: int = 1024) -> int:
    """The smallest multiple of `step` whose last feature map has MIN_FEATURE_MAP a side."""
    return next(
        (s for s in range(step, largest + 1, step) if feature_map_side(name, s) >= MIN_FEATURE_MAP),
        largest,
    )
