"""The onnxruntime settings tried for the scanner's session, side by side on ready batches.

    python bench/ort_tuning.py [--batch-size 32]

For the shipped fp32 and int8 models: graph optimisation level (basic, extended, all), idle
threads spinning or sleeping, and IO binding (input bound in place, output preallocated) against
plain `run`. Each figure is the median of 5 rounds, the variants taking turns so that drift in the
machine's speed hits them alike. Run by `make bench`; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from scanner.session import default_model_path

ROUNDS, CALLS = 5, 20


def session(model: str, level: str = "ORT_ENABLE_ALL", spin: str = "0") -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def plain_run(sess: ort.InferenceSession, batch: np.ndarray) -> Callable[[], object]:
    name = sess.get_inputs()[0].name
    return lambda: sess.run(None, {name: batch})


def bound_run(sess: ort.InferenceSession, batch: np.ndarray) -> Callable[[], object]:
    out = np.empty((len(batch), 1), np.float32)
    binding = sess.io_binding()
    binding.bind_cpu_input(sess.get_inputs()[0].name, batch)
    output = sess.get_outputs()[0].name
    binding.bind_output(output, "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
    return lambda: sess.run_with_iobinding(binding)


def compare(variants: dict[str, Callable[[], object]], batch_size: int) -> dict[str, int]:
    """img/s of each variant, median over rounds in which every variant runs once."""
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():
        fn()  # warm-up: the first run allocates
    for _ in range(ROUNDS):
        for name, fn in variants.items():
            start = time.perf_counter()
            for _ in range(CALLS):
                fn()
            rates[name].append(CALLS * batch_size / (time.perf_counter() - start))
    return {name: round(statistics.median(r)) for name, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    for precision in ("fp32", "int8"):
        model = str(default_model_path(precision))
        n = session(model).get_inputs()[0].shape[1]
        batch = np.random.default_rng(0).random((args.batch_size, n, n, 3), dtype=np.float32)
        levels = ("ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL")
        variants = {
            level.split("_")[-1].lower(): plain_run(session(model, level), batch)
            for level in levels
        }
        variants["all, threads spinning"] = plain_run(session(model, spin="1"), batch)
        variants["all, IO binding"] = bound_run(session(model), batch)
        print(f"{precision} (img/s, batch {args.batch_size}):", compare(variants, args.batch_size))


if __name__ == "__main__":
    main()
