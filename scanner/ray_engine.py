"""`facescan --engine ray`: the same scan on Ray Data, on this machine or across a cluster.

The driver (where `facescan` runs) walks with the local engine's walker and rules and hands Ray
only paths. Ray workers read the files themselves (so every node must see the same paths: shared
storage), decode them with `pipeline.decode_item` in CPU tasks, and actors holding one
onnxruntime session each score them with `pipeline.score_images`. Rows come back to the driver,
are labelled by `Scanner._result` and leave in walk order, into the same report writers: one
decode, scoring and labelling path for both engines, so the reports are the same.

Ray is imported here only, and this module only by `--engine ray`.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from scanner.decode import available_cores, silence_pillow_warnings
from scanner.pipeline import (
    Decoded,
    DecodeLimits,
    Scanner,
    ScanResult,
    decode_item,
    score_images,
)
from scanner.preprocess import PreprocessSpec
from scanner.session import CPU, CUDA, ModelSession
from scanner.walk import WalkError, WalkFile, WalkItem, walk

if TYPE_CHECKING:
    import ray.data

    from scanner.walk import Shard

# Paths per Ray Dataset. The driver holds one Dataset's path list (about 10 MB here) instead of
# the whole walk; each Dataset starts its actor pool afresh (seconds), negligible at this size.
PATHS_PER_DATASET = 100_000
DECODE_BATCH = 8  # files per decode call, as the local engine's CHUNK: small tasks balance well
TEXT_COLUMNS = ("path", "error", "format", "sha256", "evidence")

T = TypeVar("T")


class RayScanner(Scanner):
    """A Scanner whose `scan` runs on Ray Data. Options as `Scanner`, plus where and how wide:

    - `address`: None starts a local Ray on this machine (and stops it afterwards); "auto",
      "HOST:6379" or "ray://HOST:10001" joins a running cluster. A Ray already initialised in
      this process (a notebook, the tests) is used as it is and left running.
    - `actors`: inference actors, one onnxruntime session each (one GPU each with `cuda`).
    - `workers`: at most this many decode tasks at once (default: as many as Ray can place).
    - `threads`: onnxruntime threads per actor, reserved as that many Ray CPUs (default 1).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        address: str | None = None,
        actors: int = 1,
        progress: bool = False,
        **options: Any,
    ) -> None:
        if options.get("cache") is not None:
            raise ValueError("--cache works with the local engine only")
        if actors < 1:
            raise ValueError("--actors must be at least 1")
        self.requested_provider = options.pop("provider", "auto")
        self.decode_tasks: int | None = options.pop("workers", None)
        self.actor_threads: int = options.pop("threads", None) or 1
        self.address, self.actors, self.progress = address, actors, progress
        # The driver reads the model for its metadata only (the actors score), so it needs no
        # GPU: CUDA is checked, without fallback, where the actors run.
        driver = "cpu" if self.requested_provider in ("auto", "cuda") else self.requested_provider
        super().__init__(model, provider=driver, workers=1, **options)
        # Actors get a GPU only when CUDA is asked for; without one, "auto" is CPU there.
        self.session.provider = CUDA if self.requested_provider == "cuda" else CPU

    def scan(
        self,
        paths: Iterable[str | os.PathLike[str]],
        exclude: Iterable[str] = (),
        follow_symlinks: bool = False,
        shard: Shard | None = None,
    ) -> Generator[ScanResult, None, None]:
        """One ScanResult per candidate file under `paths` (in `shard`), in walk order."""
        items = walk([os.fspath(p) for p in paths], exclude, follow_symlinks, shard)
        local_cpus = max(available_cores(), self.actors * self.actor_threads + 1)
        with ray_session(self.address, local_cpus, self.progress):
            start = 0
            while chunk := list(islice(items, PATHS_PER_DATASET)):
                yield from self._scan_chunk(chunk, start)
                start += len(chunk)

    def _scan_chunk(self, chunk: list[WalkItem], start: int) -> Iterator[ScanResult]:
        rows = self.dataset(chunk, start).iter_rows()
        results = in_walk_order((self._from_row(row) for row in rows), start)
        count = 0
        for result in results:
            yield result
            count += 1
        if count != len(chunk):  # never expected: every item maps to exactly one row
            raise RuntimeError(f"Ray returned {count} rows for {len(chunk)} files")

    def dataset(self, chunk: list[WalkItem], start: int) -> ray.data.Dataset:
        """read+decode tasks -> scoring actors, one output row per walked item."""
        import ray.data

        rows = [item_row(start + i, item) for i, item in enumerate(chunk)]
        ds: ray.data.Dataset = ray.data.from_items(rows)
        tasks = ray.data.TaskPoolStrategy(size=self.decode_tasks) if self.decode_tasks else None
        ds = ds.map_batches(
            functools.partial(decode_rows, spec=self.spec, limits=self.limits),
            batch_size=DECODE_BATCH,
            compute=tasks,
        )
        return ds.map_batches(
            OnnxScorer,
            batch_size=self.batch_size,
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            fn_constructor_kwargs={
                "model_path": str(self.session.path),
                "provider": self.requested_provider,
                "threads": self.actor_threads,
            },
            num_cpus=self.actor_threads,
            num_gpus=1 if self.requested_provider == "cuda" else 0,
        )

    def _from_row(self, row: dict[str, Any]) -> tuple[int, ScanResult]:
        text = {key: from_bytes(row[key]) for key in TEXT_COLUMNS}
        d = Decoded(
            text["path"],
            width=int(row["width"]) or None,
            height=int(row["height"]) or None,
            format=text["format"] or None,
            sha256=text["sha256"] or None,
            error=text["error"] or None,
            evidence=text["evidence"],
        )
        return int(row["index"]), self._result(d, float(row["score"]) if row["ok"] else None)


def item_row(index: int, item: WalkItem) -> dict[str, Any]:
    """What Ray is given per walked item: its place in the walk, its path, the walk's error."""
    error = item.message if isinstance(item, WalkError) else ""
    return {"index": index, "path": to_bytes(item.path), "walk_error": to_bytes(error)}


def decode_rows(
    batch: dict[str, np.ndarray], spec: PreprocessSpec, limits: DecodeLimits
) -> dict[str, np.ndarray]:
    """A Ray task: read and decode a batch of files where the task runs. Never raises for a bad
    file (decode_item turns every failure into an error row), so a bad file never fails a task."""
    silence_pillow_warnings()  # a worker process of this scan, like the CLI's (once each)
    items: list[WalkItem] = [
        WalkError(from_bytes(p), from_bytes(e)) if e else WalkFile(from_bytes(p))
        for p, e in zip(batch["path"], batch["walk_error"], strict=True)
    ]
    decoded = [decode_item(item, spec, limits) for item in items]
    n = spec.input_size
    # A fixed-shape tensor column: error rows carry zeros, flagged by `ok`.
    crops = np.zeros((len(decoded), spec.crops_per_image, n, n, 3), np.uint8)
    for row, d in zip(crops, decoded, strict=True):
        if d.crops is not None:
            row[...] = d.crops
    return {
        "index": batch["index"],
        "ok": np.array([d.crops is not None for d in decoded], bool),
        "crops": crops,
        "width": np.array([d.width or 0 for d in decoded], np.int64),
        "height": np.array([d.height or 0 for d in decoded], np.int64),
        **{key: text_column([getattr(d, key) for d in decoded]) for key in TEXT_COLUMNS},
    }


class OnnxScorer:
    """A Ray actor: one onnxruntime session, loaded once, scoring batches of decoded rows."""

    def __init__(self, model_path: str, provider: str, threads: int | None) -> None:
        self.session = ModelSession(model_path, provider=provider, threads=threads)
        self.spec = self.session.info.preprocess

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = batch["ok"].astype(bool)
        scores = np.full(len(ok), np.nan)
        if ok.any():
            crops = batch["crops"][ok]
            scores[ok] = score_images(self.session, self.spec, crops.reshape(-1, *crops.shape[2:]))
        out = {key: value for key, value in batch.items() if key != "crops"}
        out["score"] = scores
        return out


def in_walk_order(rows: Iterable[tuple[int, T]], start: int) -> Iterator[T]:
    """Values of (index, value) pairs in index order from `start`. Ray yields rows as blocks
    finish; early ones wait here (report rows only, no pixels) until their turn."""
    waiting: dict[int, T] = {}
    expected = start
    for index, value in rows:
        waiting[index] = value
        while expected in waiting:
            yield waiting.pop(expected)
            expected += 1


@contextmanager
def ray_session(address: str | None, local_cpus: int, progress: bool) -> Iterator[None]:
    """Ray for one scan: joined at `address`, else started here with `local_cpus` logical CPUs
    and shut down afterwards; a Ray this process already runs is used and left running."""
    import ray
    import ray.data

    started = False
    if not progress:  # facescan's summary says what happened; keep stderr for it
        quiet_ray()
    if not ray.is_initialized():
        # Decode tasks and actors each reserve a CPU: a local Ray gets one more logical CPU than
        # the actors take (the cores interleave decoding and inference), or nothing could decode.
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(
                num_cpus=local_cpus,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        started = True
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    context.print_on_execution_start = progress
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def quiet_ray() -> None:
    """Less Ray chatter on stderr: Ray Data's execution notes and the token-auth notice. Ray's
    log files under /tmp/ray keep everything; --debug shows it all."""
    for name in ("ray.data", "ray._private.authentication"):
        logging.getLogger(name).setLevel(logging.ERROR)


def to_bytes(text: str) -> bytes:
    """Paths cross Ray as bytes: a file name need not be valid UTF-8, an Arrow string must be."""
    return text.encode("utf-8", "surrogateescape")


def from_bytes(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else bytes(value).decode("utf-8", "surrogateescape")


def text_column(values: list[str | None]) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = [to_bytes(v or "") for v in values]
    return column
