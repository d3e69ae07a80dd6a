"""`--engine local` (the default): decoding in threads, inference in one onnxruntime session.

Workers are threads: Pillow releases the GIL while it decodes and resizes, so threads decode as
fast as processes here (measured: 2,120 vs 2,063 img/s on two cores, 256-px JPEGs) without the
half second it takes to spawn processes or the copying of every image between them.

On the CPU each worker also scores the files it decoded, one onnxruntime thread each, so every
core runs a whole decode-detect-score pipeline and nothing waits on a hand-off. Scoring in the
main thread with onnxruntime's own two threads cost a third more CPU per image: the model's
layers are too small to split well over two threads (EfficientNet-Lite0 at 128 px, 2 cores:
9.1 ms a crop at batch 8 on one thread, 17.9 ms of CPU at batch 32 on two), and the decode
threads kept preempting one half of each split. A whole scan of 1,000 256-px faces: 10.9 vs
12.7 s. With CUDA, or one worker, the main thread scores batches of `batch_size` instead.

Memory stays flat whatever the tree's size: at most `workers * TASKS_PER_WORKER` chunks of files
are in flight, and items leave in walk order as soon as they are scored: on the CPU a chunk at a
time (at most 8 files, or one camera photo), so an interrupted scan keeps every row it scored.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from scanner.engines.base import Engine, EngineSettings
from scanner.errors import UsageError
from scanner.session import ModelSession, first_provider
from scanner.threads import available_cores, signals_to_main_thread
from scanner.walk import WalkFile, WalkItem
from scanner.work import Decoded, Prepare, batched, score_crops, score_items

# Files per worker task: amortises scheduling overhead, keeps latency low, and on the CPU is the
# inference batch (batch 8 was the cheapest per crop on one thread: 9.1 ms, against 11.0 at 32).
CHUNK = 8
# ...and at most this much file data, so that a few large files (12-MP photos, 0.4 s each) are
# shared out one by one instead of eight to a worker while the other one idles.
CHUNK_BYTES = 1 << 20
TASKS_PER_WORKER = 4  # in-flight tasks per worker: enough to hide inference, bounded memory

Task = Callable[[list[WalkItem]], list[Decoded]]


class LocalEngine(Engine):
    name = "local"
    # Whether workers score their own files on the CPU (the batcher scores in its own thread).
    workers_score = True

    def __init__(self, settings: EngineSettings) -> None:
        if settings.ray_address is not None or settings.actors != 1:
            raise UsageError("--ray-address and --actors need --engine ray")
        self.workers = available_cores() if settings.workers is None else settings.workers
        self.scores_in_workers = (
            self.workers_score and self.workers > 1 and first_provider(settings.provider) == "cpu"
        )
        threads = settings.threads or (1 if self.scores_in_workers else None)
        self.session = ModelSession(settings.model, settings.provider, threads)
        self.info = self.session.info
        self.crops_per_unit = self.info.preprocess.crops_per_image
        self.provider = self.session.provider
        self.batch_size = settings.batch_size

    def run(self, items: Iterable[WalkItem], prepare: Prepare) -> Iterator[list[Decoded]]:
        if self.scores_in_workers:  # a chunk comes back scored: its rows go out at once
            yield from self.in_workers(items, lambda chunk: self.scored(chunk, prepare))
            return
        for batch in batched(self.decode(items, prepare), self.batch_size):
            yield score_items(batch, self.score, self.crops_per_unit)

    def score(self, crops: np.ndarray) -> np.ndarray:
        return score_crops(self.session, self.info.preprocess, crops)

    def decode(self, items: Iterable[WalkItem], prepare: Prepare) -> Iterator[Decoded]:
        """The input stage alone, in walk order: `prepare` over the items in the worker pool
        (in this thread with one worker). Public for benchmarks of the input bound."""
        for chunk in self.in_workers(items, lambda chunk: [prepare(item) for item in chunk]):
            yield from chunk

    def scored(self, chunk: list[WalkItem], prepare: Prepare) -> list[Decoded]:
        """A worker's task on the CPU: its files prepared, then scored in one batch."""
        return score_items([prepare(item) for item in chunk], self.score, self.crops_per_unit)

    def in_workers(self, items: Iterable[WalkItem], task: Task) -> Iterator[list[Decoded]]:
        """`task` over chunks of the items in the worker pool (in this thread with one worker),
        each chunk's results in walk order."""
        chunks = chunked(items, min(CHUNK, self.batch_size))
        if self.workers <= 1:
            yield from map(task, chunks)
            return
        pending: deque[Future[list[Decoded]]] = deque()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="decode") as pool:
            try:
                for chunk in chunks:
                    with signals_to_main_thread():  # the pool starts its threads in submit
                        pending.append(pool.submit(task, chunk))
                    if len(pending) >= self.workers * TASKS_PER_WORKER:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:  # interrupted or closed early: drop what has not started
                pool.shutdown(wait=True, cancel_futures=True)


def chunked(items: Iterable[WalkItem], most: int) -> Iterator[list[WalkItem]]:
    """Lists of up to `most` items, each closed early once its files hold CHUNK_BYTES."""
    chunk: list[WalkItem] = []
    size = 0
    for item in items:
        chunk.append(item)
        size += file_size(item)
        if len(chunk) >= most or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def file_size(item: WalkItem) -> int:
    """The file's size on disk, 0 when unknown (the worker reports what is wrong with it)."""
    if not isinstance(item, WalkFile):
        return 0
    try:
        return os.stat(item.path).st_size
    except OSError:
        return 0


ENGINE = LocalEngine
