"""EfficientNet-Lite0/1/2 in Keras, layer for layer the reference PyTorch implementation
(`efficientnet-lite-pytorch`, itself after Google's efficientnet_lite_builder), so that its
ImageNet weights load unchanged; and the map from its state dict onto the Keras layers.

Lite differs from EfficientNet-B*: ReLU6 instead of swish, no squeeze-excitation, and a stem (32)
and head (1280) that are not scaled with the width. TensorFlow's "SAME" padding, which pads the
odd pixel at the bottom/right, is an explicit ZeroPadding2D before a 'valid' convolution: it
matches the reference exactly at any input size and converts to ONNX as a plain Pad.

Each Keras layer that holds reference weights is named after the reference's module, minus the
leading underscores ("blocks.3.expand_conv" is "_blocks.3._expand_conv"), so the name map is one
rule, `torch_prefix`, not a table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import keras
import numpy as np
from keras import layers

from trainer.config import TrainerError
from trainer.pretrained import weights_path
from trainer.torch_legacy import TorchFormatError, read_state_dict

# arch -> (width coefficient, depth coefficient, dropout before the classifier)
VARIANTS = {
    "efficientnet-lite0": (1.0, 1.0, 0.2),
    "efficientnet-lite1": (1.0, 1.1, 0.2),
    "efficientnet-lite2": (1.1, 1.2, 0.3),
}
# One row per stage, before scaling: repeats, kernel, stride, expand ratio, filters in, out.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM, HEAD = 32, 1280  # Lite fixes both, whatever the width
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99  # the reference's PyTorch momentum 0.01, in Keras' convention
DROP_CONNECT = 0.2  # stochastic depth of the last block; block i drops 0.2 * i / blocks
IMAGENET_CLASSES = 1000
IMAGENET_HEAD = ("_fc.weight", "_fc.bias")  # unused when the logit head replaces it

# Reference layout -> Keras layout of each kernel: OIHW -> HWIO, depthwise (C, 1, kh, kw) ->
# (kh, kw, C, 1), linear (out, in) -> (in, out).
KERNEL_AXES: dict[type, tuple[int, ...]] = {
    layers.Conv2D: (2, 3, 1, 0),
    layers.DepthwiseConv2D: (2, 3, 0, 1),
    layers.Dense: (1, 0),
}
BN_NAMES = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """The reference's channel rounding: to a multiple of 8, never more than 10 % down."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def blocks(width: float, depth: float) -> list[tuple[int, int, int, int, int]]:
    """Every MBConv block as (kernel, stride, expand ratio, filters in, filters out). Lite
    scales the repeats of all but the first and last stage, and the first stage's input is
    the fixed stem."""
    out = []
    for i, (repeats, kernel, stride, expand, f_in, f_out) in enumerate(STAGES):
        fixed = i in (0, len(STAGES) - 1)
        n = repeats if fixed else math.ceil(depth * repeats)
        f_in = STEM if i == 0 else round_filters(f_in, width)
        f_out = round_filters(f_out, width)
        out.append((kernel, stride, expand, f_in, f_out))
        out += [(kernel, 1, expand, f_out, f_out)] * (n - 1)
    return out


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME': output ceil(size / stride), the odd padding pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv(x, filters: int | None, kernel: int, stride: int, name: str):
    """Conv2D (or depthwise when `filters` is None) with TF SAME padding, no bias."""
    pad = tuple(same_padding(int(n), kernel, stride) for n in x.shape[1:3])
    if any(pad[0] + pad[1]):
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    if filters is None:
        return layers.DepthwiseConv2D(kernel, stride, use_bias=False, name=name)(x)
    return layers.Conv2D(filters, kernel, stride, use_bias=False, name=name)(x)


def bn(x, name: str, relu6: bool = True):
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu6 else x


def mbconv(x, index: int, block: tuple[int, int, int, int, int], drop: float):
    """Inverted residual: 1x1 expand, depthwise, 1x1 project, identity shortcut when shapes
    allow (with drop-connect: the whole residual branch dropped per sample while training)."""
    kernel, stride, expand, f_in, f_out = block
    name = f"blocks.{index}."
    inputs = x
    if expand != 1:
        x = bn(conv(x, f_in * expand, 1, 1, name + "expand_conv"), name + "bn0")
    x = bn(conv(x, None, kernel, stride, name + "depthwise_conv"), name + "bn1")
    x = bn(conv(x, f_out, 1, 1, name + "project_conv"), name + "bn2", relu6=False)
    if stride != 1 or f_in != f_out:
        return x
    if drop > 0:
        x = layers.Dropout(drop, noise_shape=(None, 1, 1, 1), name=name + "drop_connect")(x)
    return layers.Add(name=name + "add")([x, inputs])


def build(arch: str, size: int, imagenet_head: bool = False) -> keras.Model:
    """EfficientNet-Lite at `size` x `size`. Its output is one logit per image (the trainer's
    contract), or with `imagenet_head` the reference's 1000 ImageNet logits."""
    if arch not in VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite {arch!r} (known: {', '.join(VARIANTS)})")
    width, depth, dropout = VARIANTS[arch]
    x = inputs = keras.Input((size, size, 3), name="images")
    x = bn(conv(x, STEM, 3, 2, "conv_stem"), "bn0")
    all_blocks = blocks(width, depth)
    for i, block in enumerate(all_blocks):
        x = mbconv(x, i, block, DROP_CONNECT * i / len(all_blocks))
    x = bn(conv(x, HEAD, 1, 1, "conv_head"), "bn1")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    if imagenet_head:
        head = layers.Dense(IMAGENET_CLASSES, name="fc")
    else:
        head = layers.Dense(1, name="logit")
    return keras.Model(inputs, head(x), name=arch.replace("-", "_"))


def torch_prefix(layer_name: str) -> str:
    """The reference module of a Keras layer: "blocks.3.bn0" -> "_blocks.3._bn0"."""
    return ".".join(p if p.isdigit() else "_" + p for p in layer_name.split("."))


def weight_map(model: keras.Model) -> list[tuple[str, keras.Variable | None, tuple[int, ...]]]:
    """(reference tensor name, Keras variable, axes from the reference's layout) for every
    reference tensor the model takes: all but the ImageNet classifier when the model has the
    logit head. A BatchNorm's step counter (`num_batches_tracked`) has no Keras variable."""
    rows: list[tuple[str, keras.Variable | None, tuple[int, ...]]] = []
    for layer in model.layers:
        if not layer.weights or layer.name == "logit":
            continue
        prefix = torch_prefix(layer.name)
        for v in layer.weights:
            if v.name == "kernel":
                rows.append((f"{prefix}.weight", v, KERNEL_AXES[type(layer)]))
            elif v.name == "bias":
                rows.append((f"{prefix}.bias", v, (0,)))
            else:
                rows.append((f"{prefix}.{BN_NAMES[v.name]}", v, (0,)))
        if isinstance(layer, layers.BatchNormalization):
            rows.append((f"{prefix}.num_batches_tracked", None, ()))
    return rows


def reference_shapes(model: keras.Model) -> dict[str, tuple[int, ...]]:
    """The shape of every reference tensor the model takes, in the reference's layout."""
    return {
        name: () if v is None else tuple(int(v.shape[a]) for a in np.argsort(axes))
        for name, v, axes in weight_map(model)
    }


def load_reference_weights(model: keras.Model, state: Mapping[str, np.ndarray]) -> None:
    """Copy a reference state dict into the model. Every tensor must be used exactly once (the
    ImageNet classifier may be left over) and have the reference's shape; nothing is assigned
    unless all of them fit."""
    rows = weight_map(model)
    shapes = reference_shapes(model)
    missing = [name for name in shapes if name not in state]
    spare = set(state) - set(shapes)
    if "fc" not in [layer.name for layer in model.layers]:
        spare -= set(IMAGENET_HEAD)
    wrong = [
        f"{name} {tuple(state[name].shape)} (expected {shapes[name]})"
        for name in shapes
        if name in state and tuple(state[name].shape) != shapes[name]
    ]
    if missing or spare or wrong:
        problems = {"missing": missing, "unused": sorted(spare), "wrong shape": wrong}
        raise TrainerError(
            f"the weights do not fit {model.name}: "
            + "; ".join(
                f"{k} {', '.join(v[:4])}{' ...' if len(v) > 4 else ''}"
                for k, v in problems.items()
                if v
            )
        )
    for name, variable, axes in rows:
        if variable is not None:
            variable.assign(np.transpose(state[name], axes).astype(variable.dtype))


def load_imagenet(model: keras.Model, arch: str) -> None:
    """The installed ImageNet weights of `arch` into the model (TrainerError naming the
    package to install when they are absent)."""
    path = weights_path(arch)
    try:
        state = read_state_dict(path)
    except TorchFormatError as e:
        raise TrainerError(f"cannot read the ImageNet weights: {e}") from None
    load_reference_weights(model, state)
    print(f"ImageNet weights: {len(state)} tensors from {path}")
