"""Why two workers cost each image more than one: what this machine's second core gives.

    python bench/cores_bench.py

Runs the same work in one process, then in two processes at once, and reports each process's
rate against the lone one's. Two kinds of work: a pure-arithmetic loop that touches no memory
(nothing of ours is shared: a ratio below 1 is the machine's, e.g. two vCPUs on one physical
core, or a host that throttles), and decoding 256-px JPEGs (what a scan's workers do). If the
arithmetic loop loses as much as the decode, the "third more per image" with two workers is the
cores', not the pipeline's. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import time

import numpy as np
from PIL import Image

SECONDS = 4.0


def arithmetic(_: object) -> float:
    """Iterations per second of an integer loop that stays in registers."""
    count, x, deadline = 0, 1, time.perf_counter() + SECONDS
    while time.perf_counter() < deadline:
        for _ in range(10_000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        count += 10_000
    return count / SECONDS


def decoding(_: object) -> float:
    """256-px JPEG decodes per second (Pillow, one thread)."""
    pixels = np.random.default_rng(0).integers(0, 256, (256, 256, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    data, count = buffer.getvalue(), 0
    deadline = time.perf_counter() + SECONDS
    while time.perf_counter() < deadline:
        with Image.open(io.BytesIO(data)) as image:
            image.convert("RGB").load()
        count += 1
    return count / SECONDS


def compare(work) -> dict[str, float]:  # type: ignore[no-untyped-def]
    with multiprocessing.Pool(2) as pool:
        alone = pool.map(work, [0])[0]
        together = pool.map(work, [0, 1])
    return {
        "one_process_per_s": round(alone, 1),
        "two_processes_each_per_s": round(float(np.mean(together)), 1),
        "each_vs_alone": round(float(np.mean(together)) / alone, 3),
    }


def main() -> None:
    result = {"arithmetic": compare(arithmetic), "jpeg_decode_256px": compare(decoding)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
