"""`--engine ray`: the same scan on Ray Data, on this machine or across a cluster.

The scanner walks on the driver, with the local engine's walker and rules, and hands Ray walked
items (paths, never bytes). Ray tasks read the files themselves (so every node must see the same
paths, and the `--cache` file: shared storage) and run the scanner's `Prepare` on them; actors
holding one onnxruntime session each score them with `score_crops`. Items come back to the
driver and leave in walk order: one decode and scoring path for every engine, so the reports
are the same.

Ray is imported here only, and this module only by `--engine ray`.
"""

from __future__ import annotations

import functools
import logging
import re
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from scanner.decode import silence_pillow_warnings
from scanner.engines.base import Engine, EngineSettings
from scanner.errors import EngineError, UsageError
from scanner.session import CPU, CUDA, ModelSession
from scanner.threads import available_cores, sigterm_handler_kept
from scanner.walk import WalkItem
from scanner.work import Decoded, Prepare, batched, score_crops, score_items

if TYPE_CHECKING:
    import ray.data

# Items per Ray Dataset. The driver holds one Dataset's items (about 10 MB here) instead of the
# whole walk; each Dataset starts its actor pool afresh (seconds), negligible at this size.
ITEMS_PER_DATASET = 100_000
DECODE_BATCH = 8  # files per decode call, as the local engine's CHUNK: small tasks balance well

T = TypeVar("T")


class RayEngine(Engine):
    """Settings as the local engine's, plus where and how wide:

    - `ray_address`: None starts a local Ray on this machine (and stops it afterwards); "auto",
      "HOST:6379" or "ray://HOST:10001" joins a running cluster. A Ray already initialised in
      this process (a notebook, the tests) is used as it is and left running.
    - `actors`: inference actors, one onnxruntime session each (one GPU each with `cuda`).
    - `workers`: at most this many decode tasks at once (default: as many as Ray can place).
    - `threads`: onnxruntime threads per actor, reserved as that many Ray CPUs (default 1).
    """

    name = "ray"

    def __init__(self, settings: EngineSettings) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError("--engine ray needs Ray: pip install 'facescan[ray]'") from None
        if settings.actors < 1:
            raise UsageError("--actors must be at least 1")
        self.settings = settings
        self.threads = settings.threads or 1
        # The driver reads the model for its metadata (and `score`) on the CPU: actors score
        # the scan, and CUDA is checked, without fallback, where they run.
        self.driver_session = ModelSession(settings.model, "cpu")
        self.info = self.driver_session.info
        # Actors get a GPU only when CUDA is asked for; without one, "auto" is CPU there.
        self.provider = CUDA if settings.provider == "cuda" else CPU

    def run(self, items: Iterable[WalkItem], prepare: Prepare) -> Iterator[list[Decoded]]:
        items = iter(items)
        local_cpus = max(available_cores(), self.settings.actors * self.threads + 1)
        with ray_session(self.settings.ray_address, local_cpus, self.settings.progress):
            start = 0
            while chunk := list(islice(items, ITEMS_PER_DATASET)):
                yield from batched(self._run_chunk(chunk, start, prepare), self.settings.batch_size)
                start += len(chunk)

    def score(self, crops: np.ndarray) -> np.ndarray:
        return score_crops(self.driver_session, self.info.preprocess, crops)

    def _run_chunk(self, chunk: list[WalkItem], start: int, prepare: Prepare) -> Iterator[Decoded]:
        rows = self.dataset(chunk, start, prepare).iter_rows()
        count = 0
        with workers_failing():
            for decoded in in_walk_order(((int(r["index"]), r["item"]) for r in rows), start):
                yield decoded
                count += 1
        if count != len(chunk):  # never expected: every item maps to exactly one row
            raise RuntimeError(f"Ray returned {count} rows for {len(chunk)} files")

    def dataset(self, chunk: list[WalkItem], start: int, prepare: Prepare) -> ray.data.Dataset:
        """decode tasks -> scoring actors, one output row per walked item. Rows carry the
        items themselves (Ray pickles Python objects in a column)."""
        import ray.data

        rows = [{"index": start + i, "item": item} for i, item in enumerate(chunk)]
        ds: ray.data.Dataset = ray.data.from_items(rows)
        s = self.settings
        tasks = ray.data.TaskPoolStrategy(size=s.workers) if s.workers else None
        ds = ds.map_batches(
            functools.partial(prepare_batch, prepare=prepare),
            batch_size=DECODE_BATCH,
            compute=tasks,
        )
        with warnings.catch_warnings():
            # Ray 2.60 warns that remote arguments given this way (max_restarts) are deprecated,
            # yet map_batches has no named parameter for max_restarts; the warning would be the
            # only line on stderr of every scan.
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            return ds.map_batches(
                OnnxScorer,
                batch_size=s.batch_size,
                compute=ray.data.ActorPoolStrategy(size=s.actors),
                fn_constructor_kwargs={
                    "model_path": str(s.model),
                    "provider": s.provider,
                    "threads": self.threads,
                },
                num_cpus=self.threads,
                num_gpus=1 if s.provider == "cuda" else 0,
                # No actor restarts: Ray Data's default (endless restarts and retries) has Ray's
                # core print an error-level line ("core_worker.cc ... max_restarts > 0") on every
                # scan, even under -q, and would retry a batch that crashes its actor for ever. An
                # actor that dies stops the scan once instead (`workers_failing`: exit 2).
                max_restarts=0,
            )


def objects(values: Iterable[Any]) -> np.ndarray:
    """A 1-D object array (a column of Python objects for Ray)."""
    values = list(values)
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def prepare_batch(batch: dict[str, np.ndarray], prepare: Prepare) -> dict[str, np.ndarray]:
    """A Ray task: read and decode a batch of files where the task runs. Never raises for a bad
    file (Prepare turns every failure into an error item), so a bad file never fails a task."""
    silence_pillow_warnings()  # a worker process of this scan, like the CLI's (once each)
    prepare.set_up()  # raises when this worker cannot work at all: the scan stops, once
    return {"index": batch["index"], "item": objects(map(prepare, batch["item"]))}


class OnnxScorer:
    """A Ray actor: one onnxruntime session, loaded once, scoring batches of prepared items."""

    def __init__(self, model_path: str, provider: str, threads: int | None) -> None:
        self.session = ModelSession(model_path, provider=provider, threads=threads)
        self.spec = self.session.info.preprocess

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = score_items(list(batch["item"]), self.score, self.spec.crops_per_image)
        return {"index": batch["index"], "item": objects(items)}

    def score(self, crops: np.ndarray) -> np.ndarray:
        return score_crops(self.session, self.spec, crops)


@contextmanager
def workers_failing() -> Iterator[None]:
    """A task or actor that raises stops the scan with one EngineError (exit 2) naming the first
    cause. Never a bad file: `Prepare` makes an error row of each; this is a worker that cannot
    work (its set-up failed: the face detector, an import, a GPU), which would fail every file
    it gets."""
    import ray.exceptions

    try:
        yield
    except (ray.exceptions.RayError, ray.exceptions.UserCodeException) as e:
        raise EngineError(
            f"--engine ray: a worker failed, so the scan stopped: {root_message(e)} "
            "(Ray's logs: /tmp/ray/session_latest/logs)"
        ) from e


def first_cause(error: BaseException) -> BaseException:
    """The exception at the root of Ray's wrappers (a worker's own error, re-raised on the
    driver as a RayTaskError subclass of it, inside Ray Data's UserCodeException)."""
    import ray.exceptions

    while True:
        inner = error.cause if isinstance(error, ray.exceptions.RayTaskError) else None
        inner = inner or error.__cause__
        if inner is None or inner is error:
            return error
        error = inner


def root_message(error: BaseException) -> str:
    """`Type: first line` of the root cause. Ray Data's UserCodeException can arrive without its
    cause attached; the worker's traceback, in the text of the error Ray raised, still ends
    with it."""
    cause = first_cause(error)
    if type(cause).__name__ != "UserCodeException":
        return f"{type(cause).__name__}: {first_line(cause)}"
    raised = [
        line.strip()
        for line in str(error).splitlines()
        if re.match(r"\s*[\w.]+(Error|Exception): ", line) and "UserCodeException" not in line
    ]
    return raised[-1] if raised else f"{type(cause).__name__}: {first_line(cause)}"


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def in_walk_order(rows: Iterable[tuple[int, T]], start: int) -> Iterator[T]:
    """Values of (index, value) pairs in index order from `start`. Ray yields rows as blocks
    finish; early ones wait here (scored items, no pixels) until their turn."""
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
        settings: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if not address:
            settings.update(num_cpus=local_cpus, include_dashboard=False)
        try:
            with sigterm_handler_kept():
                ray.init(address=address, **settings)
        except BaseException:
            ray.shutdown()  # stopped while starting: the processes it started go too
            raise
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
    # They log a worker's failure (with its traceback, and "Dataset execution will now abort"):
    # `workers_failing` says it in one line.
    for name in ("ray.data.exceptions", "ray.data._internal.execution.streaming_executor_state"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


ENGINE = RayEngine
