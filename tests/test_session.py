"""The onnxruntime session: metadata, providers, output kinds, bad model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import build_red_model

from scanner.metadata import InvalidModelError, ModelInfo
from scanner.preprocess import PreprocessSpec
from scanner.session import ModelSession, ProviderError

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def test_metadata_round_trips_through_the_onnx_file(tmp_path: Path) -> None:
    spec = PreprocessSpec(input_size=16, geometry="crop", crop_grid=2)
    path = build_red_model(tmp_path / "m.onnx", spec, threshold=0.3, extra={"note": "hi"})
    info = ModelSession(path, provider="cpu").info
    assert info == ModelInfo(preprocess=spec, threshold=0.3, extra={"note": "hi"})


def test_scores_are_the_mean_red_of_the_input(red_model: Path) -> None:
    session = ModelSession(red_model, provider="cpu")
    batch = np.zeros((3, 16, 16, 3), np.float32)
    batch[0, ..., 0] = 1.0
    batch[1, :8, :, 0] = 1.0
    np.testing.assert_allclose(session.predict(batch), [1.0, 0.5, 0.0], atol=1e-6)


def test_logit_output_goes_through_a_sigmoid(tmp_path: Path) -> None:
    session = ModelSession(build_red_model(tmp_path / "m.onnx", output="logit"), provider="cpu")
    score = session.predict(np.zeros((1, 16, 16, 3), np.float32))
    np.testing.assert_allclose(score, [0.5])


def test_a_fixed_batch_model_is_fed_in_slices(tmp_path: Path) -> None:
    path = build_red_model(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    onnx.save(model, str(path))
    batch = np.random.default_rng(0).random((5, 16, 16, 3), dtype=np.float32)
    expected = batch[..., 0].mean(axis=(1, 2))
    np.testing.assert_allclose(ModelSession(path, provider="cpu").predict(batch), expected, 1e-5)


def test_idle_inference_threads_sleep_instead_of_spinning(red_model: Path) -> None:
    # The decode threads share the cores; a spinning onnxruntime thread would take their time.
    options = ModelSession(red_model, provider="cpu")._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_auto_provider_is_recorded(red_model: Path) -> None:
    session = ModelSession(red_model, provider="auto")
    assert session.provider == ("CUDAExecutionProvider" if HAS_CUDA else "CPUExecutionProvider")


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has CUDA: the refusal cannot be shown")
def test_cuda_without_cuda_is_an_error_not_a_fallback(red_model: Path) -> None:
    with pytest.raises(ProviderError, match="CUDA provider requested"):
        ModelSession(red_model, provider="cuda")


def test_unknown_provider_is_an_error(red_model: Path) -> None:
    with pytest.raises(ProviderError, match="unknown provider 'tpu'"):
        ModelSession(red_model, provider="tpu")


def test_missing_corrupt_and_foreign_models_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelError, match="model file not found"):
        ModelSession(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not protobuf")
    with pytest.raises(InvalidModelError, match="cannot load model .*: not an ONNX model file"):
        ModelSession(junk)
    foreign = build_red_model(tmp_path / "foreign.onnx")
    model = onnx.load(str(foreign))
    del model.metadata_props[:]
    onnx.save(model, str(foreign))
    with pytest.raises(InvalidModelError, match="not a facescan model.*facescan.preprocess"):
        ModelSession(foreign)


def test_malformed_metadata_is_named() -> None:
    props = ModelInfo(PreprocessSpec()).to_props()
    props["facescan.threshold"] = "not json"
    with pytest.raises(InvalidModelError, match="facescan.threshold is not valid JSON"):
        ModelInfo.from_props(props)
    props["facescan.threshold"] = "7"
    with pytest.raises(InvalidModelError, match="threshold 7.0 is not in 0..1"):
        ModelInfo.from_props(props)


def test_precision_picks_the_shipped_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.session import default_model_path, resolve_model

    assert default_model_path("fp32").name == "facescan-clip.onnx"  # the default
    assert default_model_path("int8").name == "facescan-clip-int8.onnx"
    for name in ("clip", "accurate", "fast", "clip-full"):
        auto = default_model_path("auto", name).name
        shipped_int8 = default_model_path("int8", name).is_file()
        assert auto == (f"facescan-{name}-int8.onnx" if shipped_int8 else f"facescan-{name}.onnx")
        assert resolve_model(name, "fp32") == default_model_path("fp32", name)  # --model NAME
    assert resolve_model(None) == default_model_path()
    assert resolve_model(tmp_path / "m.onnx") == tmp_path / "m.onnx"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").write_bytes(b"")  # an existing file wins over a shipped name
    assert resolve_model("fast") == Path("fast")
    with pytest.raises(InvalidModelError, match="cannot apply to a file"):
        resolve_model(tmp_path / "m.onnx", "int8")
    with pytest.raises(InvalidModelError, match="unknown precision"):
        default_model_path("fp16")
    with pytest.raises(
        InvalidModelError, match="no shipped model 'tiny'; choose from clip, accurate"
    ):
        default_model_path("auto", "tiny")
