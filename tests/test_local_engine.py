"""The local engine's own choices (the contract is in test_engines.py): where inference runs,
with how many onnxruntime threads, in batches of what size, and how files are shared out."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import build_red_model, save_image

from scanner import engines
from scanner.engines.local import CHUNK, CHUNK_BYTES, LocalEngine, chunked
from scanner.preprocess import PreprocessSpec
from scanner.walk import WalkError, WalkFile, walk
from scanner.work import Prepare

SPEC = PreprocessSpec(input_size=16)


def start(name: str, model: Path, **settings: object) -> LocalEngine:
    options = {"provider": "cpu", "batch_size": 32, "workers": 2, **settings}
    engine = engines.create(name, engines.EngineSettings(model, **options))  # type: ignore[arg-type]
    assert isinstance(engine, LocalEngine)
    return engine


def scoring_calls(
    engine: LocalEngine, folder: Path, batches: list[int] | None = None
) -> list[tuple[str, int]]:
    """(thread name, crops) of every inference call a scan of `folder` makes; the sizes of the
    batches the engine hands back (rows reach the report a batch at a time) go to `batches`."""
    calls: list[tuple[str, int]] = []
    score = engine.score

    def recorded(crops: np.ndarray) -> np.ndarray:
        calls.append((threading.current_thread().name, len(crops)))
        return score(crops)

    engine.score = recorded  # type: ignore[method-assign]
    handed = list(engine.run(walk([str(folder)]), Prepare(SPEC)))
    (batches if batches is not None else []).extend(map(len, handed))
    items = [d for batch in handed for d in batch]
    assert len(items) == 20 and all(d.score is not None for d in items)
    return calls


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    for i in range(20):
        save_image(tmp_path / "photos" / f"p{i:02}.png", (10 * i, 0, 0), size=24)
    return tmp_path / "photos"


def test_on_the_cpu_each_worker_scores_its_own_files_on_one_thread(
    tmp_path: Path, photos: Path
) -> None:
    engine = start("local", build_red_model(tmp_path / "m.onnx", SPEC))
    assert engine.scores_in_workers
    assert engine.session._session.get_session_options().intra_op_num_threads == 1
    batches: list[int] = []
    calls = scoring_calls(engine, photos, batches)
    assert all(name.startswith("decode") for name, _ in calls)
    assert sorted(n for _, n in calls) == [4, 8, 8]  # a chunk of files is one batch
    assert batches == [8, 8, 4]  # ...whose rows go out as soon as it is scored


@pytest.mark.parametrize(
    ("name", "settings"),
    [("local", {"workers": 1}), ("batcher", {"batch_wait_ms": 60_000})],
    ids=["one-worker", "batcher"],
)
def test_otherwise_one_thread_scores_whole_batches(
    tmp_path: Path, photos: Path, name: str, settings: dict[str, object]
) -> None:
    engine = start(name, build_red_model(tmp_path / "m.onnx", SPEC), batch_size=16, **settings)
    assert not engine.scores_in_workers
    assert engine.session._session.get_session_options().intra_op_num_threads == 0  # its own
    batches: list[int] = []
    calls = scoring_calls(engine, photos, batches)
    assert not any(name.startswith("decode") for name, _ in calls)
    assert [n for _, n in calls] == batches == [16, 4]
    engine.close()


def test_threads_asked_for_are_honoured(tmp_path: Path) -> None:
    engine = start("local", build_red_model(tmp_path / "m.onnx", SPEC), threads=2)
    assert engine.scores_in_workers
    assert engine.session._session.get_session_options().intra_op_num_threads == 2


def test_batch_size_caps_the_workers_batches(tmp_path: Path, photos: Path) -> None:
    engine = start("local", build_red_model(tmp_path / "m.onnx", SPEC), batch_size=3)
    assert sorted(n for _, n in scoring_calls(engine, photos)) == [2] + [3] * 6


def test_large_files_are_shared_out_one_by_one(tmp_path: Path) -> None:
    sizes = [10, CHUNK_BYTES, 10, 10, CHUNK_BYTES // 2, CHUNK_BYTES // 2, *[10] * (CHUNK + 1)]
    items: list[WalkFile | WalkError] = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i:02}"
        path.write_bytes(b"x" * size)
        items.append(WalkFile(str(path)))
    items.insert(3, WalkError("gone", "no such file"))
    items.insert(4, WalkFile(str(tmp_path / "missing")))  # the worker says what is wrong
    chunks = list(chunked(iter(items), CHUNK))
    assert [len(c) for c in chunks] == [2, 6, 8, 1]
    assert [i for c in chunks for i in c] == items
