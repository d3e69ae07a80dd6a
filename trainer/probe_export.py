"""`facescan-train export` of a probe run: the encoder and its head as one ONNX graph.

The encoder's graph (trainer/encoder.py: int8 weights behind DequantizeLinear, fp32 arithmetic,
opset 14) is taken as it is and the head is appended to its last hidden states: Gather the CLS
token, one MatMul + Add (the standardisation, the weights and the temperature folded in),
Sigmoid. Its other outputs and the nodes only they need are dropped.

Parity: the file's scores, through the scanner's own session, against the trainer's numpy head
on freshly computed features of the same crops.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import numpy as np

from scanner.metadata import ModelInfo
from scanner.preprocess import PreprocessSpec, normalize
from trainer import data, encoder, files, metrics, probe
from trainer.config import CheckFailed

PARITY_LIMIT = 1e-4
OUTPUT = "probability"


def head_graph(model: Any, head: probe.LinearHead, temperature: float) -> Any:
    """`model` (the encoder) with the head appended and only `probability` as output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    hidden = graph.output[encoder.HIDDEN].name
    w, b = head.folded()
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(0, np.int64), "head_cls_index"),
            numpy_helper.from_array((w / temperature).astype(np.float32)[:, None], "head_w"),
            numpy_helper.from_array(np.array([b / temperature], np.float32), "head_b"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Gather", [hidden, "head_cls_index"], ["head_cls"], axis=1),
            helper.make_node("MatMul", ["head_cls", "head_w"], ["head_matmul"]),
            helper.make_node("Add", ["head_matmul", "head_b"], ["head_logit"]),
            helper.make_node("Sigmoid", ["head_logit"], [OUTPUT]),
        ]
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", 1]))
    prune(graph)
    onnx.checker.check_model(model)
    return model


def prune(graph: Any) -> None:
    """Drop the nodes and initialisers no output needs (the image-embedding branch)."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


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
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return ModelInfo(
        preprocess=PreprocessSpec.from_dict(record["preprocess"]),
        labels=data.LABELS,
        threshold=float(calibration["threshold"]),
        output="probability",
        extra=extra,
    )


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
    model = head_graph(onnx.load(str(encoder.require_encoder())), head, temperature)
    for key, value in info.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    x = parity_inputs(info.preprocess, Path(record["settings"]["data"]))
    expected = metrics.sigmoid(head.logits(encoder.Encoder().cls_tokens(x)) / temperature)
    measured: list[float] = []

    def write_if_faithful(candidate: Path) -> None:
        from scanner.session import ModelSession

        onnx.save(model, str(candidate))
        got = ModelSession(candidate, provider="cpu").predict(x)
        measured.append(float(np.max(np.abs(got - expected))))
        print(f"parity: max |ONNX - probe| = {measured[0]:.2e} over {len(x)} crops")
        if not measured[0] <= PARITY_LIMIT:
            raise CheckFailed(f"export refused: ONNX and the probe disagree by {measured[0]:.2e}")

    out.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write(out, write_if_faithful)
    print(f"wrote {out} (threshold {info.threshold:.4f}, T {temperature:.3f})")
    return measured[0]
