"""`--engine batcher`: the local engine's decoding, with inference behind a request batcher.

Images handed to `submit` by any number of threads (the HTTP service's concurrent requests)
wait in one queue; one batching thread takes up to `batch_size` of them, scores them in one
onnxruntime call (`score_items`, as every engine does) and resolves each image's future.
Single-image requests from many clients thus share batches the way a scan's files do.

A batch waits for more images only while some are on their way: callers `expect` images
before they decode them and `submit(..., expected=True)` (or `forget` them) after, and a batch
leaves once it is full, nothing more is expected, or `batch_wait_ms` has passed since its first
image. A lone request is scored at once; under load batches fill without a fixed delay.

`run` (the engine contract, `facescan --engine batcher`) feeds the same queue, so the contract
tests check the batcher's path too. The thread never dies on input: a batch that fails to score
is retried image by image, and only the image that fails gets an error.

Bounding the queue is the caller's job: the service admits at most `--queue` images at once
(a 503 past that); `run` submits one batch at a time.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future

from scanner.engines.base import EngineSettings
from scanner.engines.local import LocalEngine
from scanner.threads import signals_to_main_thread
from scanner.walk import WalkItem
from scanner.work import Decoded, Prepare, batched, score_items

Waiting = tuple[Decoded, "Future[Decoded]"]


class EngineClosed(RuntimeError):
    """`submit` after `close`: the service is shutting down."""


class BatchingEngine(LocalEngine):
    name = "batcher"
    workers_score = False  # requests from many clients share batches in the batcher's thread

    def __init__(self, settings: EngineSettings) -> None:
        super().__init__(settings)
        if settings.batch_wait_ms < 0:
            raise ValueError("batch_wait_ms must be at least 0")
        self.batch_wait = settings.batch_wait_ms / 1000
        self.batches = 0  # batches scored, and the images in them (the service's metrics)
        self.images = 0
        self._waiting: deque[Waiting] = deque()
        self._expected = 0  # images announced by `expect`, not yet submitted or forgotten
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="batcher", daemon=True)
        with signals_to_main_thread():
            self._thread.start()

    def expect(self, count: int) -> None:
        """`count` images are on their way (being decoded): batches may wait for them."""
        with self._ready:
            self._expected += count

    def forget(self, count: int) -> None:
        """`count` expected images will not come (their request went away)."""
        with self._ready:
            self._expected -= count
            self._ready.notify()

    def submit(self, decoded: Decoded, expected: bool = False) -> Future[Decoded]:
        """A future of `decoded` scored (`expected`: announced by `expect`). Items that need no
        scoring (errors, cache hits) are resolved at once; the others join the next batch."""
        future: Future[Decoded] = Future()
        with self._ready:
            self._expected -= expected
            if decoded.needs_scoring and self._closed:
                raise EngineClosed("the batcher is closed")
            if decoded.needs_scoring:
                self._waiting.append((decoded, future))
            self._ready.notify()
        if not decoded.needs_scoring:
            future.set_result(decoded)
        return future

    @property
    def queued(self) -> int:
        """Images waiting for a batch."""
        return len(self._waiting)

    def run(self, items: Iterable[WalkItem], prepare: Prepare) -> Iterator[list[Decoded]]:
        for batch in batched(self.decode(items, prepare), self.batch_size):
            self.expect(len(batch))
            futures = [self.submit(d, expected=True) for d in batch]
            yield [f.result() for f in futures]

    def close(self) -> None:
        """Score what is queued, then stop the thread (submit raises EngineClosed after)."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join()

    def _serve(self) -> None:
        while batch := self._next_batch():
            # A request cancelled meanwhile (its client went away) costs no inference.
            live = [(d, f) for d, f in batch if f.set_running_or_notify_cancel()]
            if live:
                self._score(live)

    def _next_batch(self) -> list[Waiting]:
        """Up to batch_size waiting images: block for the first, then wait for expected ones,
        at most batch_wait. Empty once closed and drained."""
        with self._ready:
            while not self._waiting and not self._closed:
                self._ready.wait()
            deadline = time.monotonic() + self.batch_wait
            while len(self._waiting) < self.batch_size and self._expected > 0 and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0 or not self._ready.wait(left):
                    break
            count = min(len(self._waiting), self.batch_size)
            return [self._waiting.popleft() for _ in range(count)]

    def _score(self, batch: list[Waiting]) -> None:
        try:
            scored = score_items([d for d, _ in batch], self.score, self.crops_per_unit)
        except Exception:  # one bad image must not fail the others: score them one by one
            scored = [self._score_alone(d) for d, _ in batch]
        self.batches += 1
        self.images += len(batch)
        for (_, future), d in zip(batch, scored, strict=True):
            future.set_result(d)

    def _score_alone(self, decoded: Decoded) -> Decoded:
        try:
            return score_items([decoded], self.score, self.crops_per_unit)[0]
        except Exception as e:
            message = f"inference failed: {type(e).__name__}: {e}"
            return dataclasses.replace(decoded, crops=None, error=message)


ENGINE = BatchingEngine
