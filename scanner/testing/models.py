"""ONNX models built on the spot, with known answers (tests, bench/cache_bench.py and
bench/ray_bench.py). onnx is imported when one is built."""

from __future__ import annotations

from pathlib import Path

from scanner.metadata import ModelInfo
from scanner.preprocess import PreprocessSpec


def build_red_model(path: Path, spec: PreprocessSpec | None = None, **info: object) -> Path:
    """An ONNX model whose score is the mean of the input's first channel (0..1 input: the mean
    red of the image). Known answers without training: red images score 1, black ones 0."""
    import onnx
    from onnx import TensorProto, helper

    spec = spec or PreprocessSpec(input_size=16)
    n = spec.input_size
    shape: list[str | int] = ["batch", n, n, 3] if spec.layout == "NHWC" else ["batch", 3, n, n]
    channel_axis = 3 if spec.layout == "NHWC" else 1
    red_index = 2 if spec.channel_order == "BGR" else 0
    consts = [
        helper.make_tensor(name, TensorProto.INT64, [1], [value])
        for name, value in (("start", red_index), ("end", red_index + 1), ("axis", channel_axis))
    ]
    nodes = [
        helper.make_node("Slice", ["images", "start", "end", "axis"], ["red"]),
        helper.make_node("ReduceMean", ["red"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["mean", "one"], ["score"]),
    ]
    consts.append(helper.make_tensor("one", TensorProto.INT64, [1], [1]))
    graph = helper.make_graph(
        nodes,
        "red",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        initializer=consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    props = ModelInfo(preprocess=spec, **info).to_props()  # type: ignore[arg-type]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path
