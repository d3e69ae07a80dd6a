"""Cost of an architecture as the scanner would run it: export, parity, size, FLOPs, speed.

    python bench/backbone_bench.py [--arch efficientnet-lite0] [--size 224] [--opset 17]

Builds the architecture with its logit head (ImageNet weights when `--pretrained imagenet`),
exports it through trainer.export's tf2onnx path, and reports the largest |ONNX - Keras|
probability on seeded noise and test photos (trainer/check_reference.py's inputs), the ONNX
file's size, parameters and GFLOPs per image (trainer.archs.count_macs), and onnxruntime fp32
images/s on ready batches: the median of 5 rounds of 5 calls. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

ROUNDS, CALLS = 5, 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="efficientnet-lite0")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--pretrained", default="imagenet")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    data = os.environ.get("FACESCAN_DATA", "../shared/datasets/faces")
    parser.add_argument("--data", type=Path, default=Path(data), help="test photos for parity")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import onnxruntime as ort

    from trainer.archs import build, count_macs
    from trainer.check_reference import inputs
    from trainer.export import to_onnx

    model = build(args.arch, args.size, args.pretrained)
    started = time.perf_counter()
    proto = to_onnx(model, args.size, temperature=1.0, opset=args.opset)
    seconds = time.perf_counter() - started
    raw = proto.SerializeToString()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    x, names = inputs(args.arch, args.size, args.data if (args.data / "test").is_dir() else None)
    keras_p = 1 / (1 + np.exp(-np.asarray(model(x, training=False), np.float64)))
    parity = float(np.max(np.abs(session.run(None, {name: x})[0] - keras_p)))

    batch = np.random.default_rng(0).uniform(-1, 1, (args.batch_size, args.size, args.size, 3))
    batch = batch.astype(np.float32)
    session.run(None, {name: batch})  # warm-up
    rates = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            session.run(None, {name: batch})
        rates.append(CALLS * args.batch_size / (time.perf_counter() - started))
    print(
        f"{args.arch} @ {args.size} px ({args.pretrained or 'random'} weights), opset "
        f"{args.opset}: export {seconds:.1f} s, {len(raw) / 1e6:.1f} MB, "
        f"{model.count_params():,} parameters, {2 * count_macs(model) / 1e9:.2f} GFLOPs/image; "
        f"parity max |ONNX - Keras| = {parity:.1e} over {len(names)} images; onnxruntime fp32 "
        f"batch {args.batch_size}, {args.threads} threads: {statistics.median(rates):.1f} img/s "
        f"(rounds {min(rates):.1f}-{max(rates):.1f})"
    )


if __name__ == "__main__":
    main()
