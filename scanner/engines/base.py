"""The engine contract: an engine turns a stream of walked items into prepared and scored items,
one out per item in, in the order they came, handed back in batches. Walking, the cache,
labelling and the report stay with `scanner.scan.Scanner`; an engine decides only where
decoding and inference run.

A new engine is one new module in this package defining `ENGINE = <its class>`; it passes the
same contract tests (tests/test_engines.py) as the others.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from scanner.metadata import ModelInfo
    from scanner.walk import WalkItem
    from scanner.work import Decoded, Prepare


@dataclass(frozen=True)
class EngineSettings:
    """How and where to score: `ScanSettings.engine`, handed to the engine as it is. Every
    engine reads the fields that concern it, and refuses, with a UsageError, the ones it cannot
    honour."""

    model: Path
    provider: str = "auto"  # auto | cpu | cuda
    threads: int | None = None  # onnxruntime intra-op threads (per session)
    workers: int | None = None  # decode workers (threads, Ray tasks); None: the engine's choice
    batch_size: int = 32  # images per inference batch
    ray_address: str | None = None  # ray: join this cluster (None: start Ray here)
    actors: int = 1  # ray: inference actors, one onnxruntime session each
    progress: bool = False  # the engine's own progress output (Ray's, with --debug)
    batch_wait_ms: float = 5.0  # batcher: longest wait for more images to fill a batch
    name: str = "local"  # the engine (`--engine`): a module of this package


class Engine(ABC):
    """Scores walked items. `info` is the model's metadata, `provider` the onnxruntime execution
    provider scoring runs on."""

    name: str
    info: ModelInfo
    provider: str

    @abstractmethod
    def run(self, items: Iterable[WalkItem], prepare: Prepare) -> Iterator[list[Decoded]]:
        """Every item prepared by `prepare` and, where it has crops, scored: exactly one
        `Decoded` per item, in order, in batches (the scanner commits its cache once per batch,
        before it reports the batch's rows). Items `prepare` already scored (cache hits) or
        failed pass through unchanged."""

    @abstractmethod
    def score(self, crops: np.ndarray) -> np.ndarray:
        """Scores of in-memory crops (crops_per_image per image): `Scanner.score`'s path."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release sessions and workers; the engine is not used afterwards."""
