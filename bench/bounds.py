"""The classifier's bound, for bench.py and faces_bench.py: onnxruntime alone on ready crops.

A CPU scan scores in its decode workers, a thread per core with one onnxruntime thread each
(scanner.engines.local); one session on all cores (onnxruntime's own threads, one large batch)
is the other way to use them. The bound is the better of the two, so that a ratio to it is not
flattered by measuring the slower one.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from scanner.engines.local import CHUNK
from scanner.session import ModelSession
from scanner.threads import available_cores


def classifier_rates(
    model: Path, crops: np.ndarray, provider: str = "cpu", batch_size: int = 32
) -> dict[str, float]:
    """Crops per second on normalised `crops`, each way: `one_session` with its own threads
    scoring batches of `batch_size`, and (CPU) `per_core`, a thread per core scoring batches
    of CHUNK. The bound is the larger."""
    rates = {"one_session": scoring_rate(ModelSession(model, provider), crops, batch_size, 1)}
    if provider == "cpu":
        per_core = ModelSession(model, provider, threads=1)
        rates["per_core"] = scoring_rate(per_core, crops, CHUNK, callers=available_cores())
    return rates


def scoring_rate(
    session: ModelSession, crops: np.ndarray, size: int, callers: int, seconds: float = 3
) -> float:
    """Crops per second with `callers` threads each scoring batches of `size`."""
    batch = np.resize(crops, (size, *crops.shape[1:]))  # repeats the crops to fill it
    session.predict(batch)  # warm-up: the first run allocates

    def score_until(deadline: float) -> int:
        done = 0
        while time.perf_counter() < deadline:
            session.predict(batch)
            done += size
        return done

    start = time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:
        done = sum(pool.map(score_until, [start + seconds] * callers))
    return done / (time.perf_counter() - start)
