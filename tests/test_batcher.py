"""The batcher engine beyond the shared contract (tests/test_engines.py runs that on it too):
images submitted from many threads share batches, each future gets its own image's score, a
failing image fails alone, cancelled images cost no inference, and close scores what is queued.

A batch leaves when it is full, when no more images are expected, or when the wait runs out;
these tests set the wait to a minute and announce exactly the images a batch gets, so what ends
up in a batch never depends on timing."""

from __future__ import annotations

import random
import threading
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
from conftest import build_red_model
from images import png_bytes
from PIL import Image

from scanner import engines
from scanner.engines.batcher import BatchingEngine, EngineClosed
from scanner.preprocess import PreprocessSpec
from scanner.work import Decoded, Prepare

SPEC = PreprocessSpec(input_size=16)
PREPARE = Prepare(SPEC)
FOREVER_MS = 60_000.0  # a batch leaves only once full, or nothing more is expected, or closed


def start(tmp_path: Path, batch_size: int, wait_ms: float = FOREVER_MS) -> BatchingEngine:
    settings = engines.EngineSettings(
        build_red_model(tmp_path / "red.onnx", SPEC),
        "cpu",
        batch_size=batch_size,
        batch_wait_ms=wait_ms,
    )
    engine = engines.create("batcher", settings)
    assert isinstance(engine, BatchingEngine)
    return engine


def red(value: int) -> Decoded:
    """A prepared image the red model scores value / 255."""
    return PREPARE.from_bytes(
        f"red{value}.png", png_bytes(Image.new("RGB", (20, 20), (value, 0, 0)))
    )


def submit_together(engine: BatchingEngine, values: list[int]) -> dict[int, Future[Decoded]]:
    """Each value's image submitted by its own thread, all at once, in no set order."""
    answers: dict[int, Future[Decoded]] = {}
    barrier = threading.Barrier(len(values))
    engine.expect(len(values))

    def submit(value: int) -> None:
        image = red(value)
        barrier.wait()
        answers[value] = engine.submit(image, expected=True)

    threads = [threading.Thread(target=submit, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_concurrent_submissions_share_batches_and_get_their_own_answers(tmp_path: Path) -> None:
    engine = start(tmp_path, batch_size=4)
    rounds, rng = 40, random.Random(7)
    for round_ in range(rounds):
        answers = submit_together(engine, rng.sample(range(256), 4))
        for value, future in answers.items():
            done = future.result(timeout=60)
            assert done.path == f"red{value}.png"
            assert done.score == pytest.approx(value / 255, abs=1e-6)
        assert (engine.batches, engine.images) == (round_ + 1, 4 * (round_ + 1))
    engine.close()


def test_a_short_batch_leaves_after_the_wait(tmp_path: Path) -> None:
    engine = start(tmp_path, batch_size=8, wait_ms=5)
    engine.expect(2)  # the second never comes
    done = engine.submit(red(255), expected=True).result(timeout=60)
    assert done.score == pytest.approx(1.0) and (engine.batches, engine.images) == (1, 1)
    engine.close()


def test_a_batch_waits_only_for_expected_images(tmp_path: Path) -> None:
    engine = start(tmp_path, batch_size=8)
    alone = engine.submit(red(255)).result(timeout=30)  # nothing else expected: no wait
    assert alone.score == pytest.approx(1.0) and engine.batches == 1
    engine.expect(3)
    first = engine.submit(red(10), expected=True)
    second = engine.submit(red(20), expected=True)
    engine.forget(1)  # the third's request went away: the batch stops waiting for it
    assert [f.result(timeout=30).score for f in (first, second)] == [
        pytest.approx(v / 255, abs=1e-6) for v in (10, 20)
    ]
    assert (engine.batches, engine.images) == (2, 3)  # the two waited for each other
    engine.close()


def test_errors_need_no_batch(tmp_path: Path) -> None:
    engine = start(tmp_path, batch_size=4)
    broken = PREPARE.from_bytes("broken.png", b"\x89PNG\r\n\x1a\n")
    done = engine.submit(broken).result(timeout=0)  # resolved at once
    assert done.error and done.error.startswith("not a supported image") and engine.batches == 0
    engine.close()


def test_one_image_that_fails_inference_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = start(tmp_path, batch_size=3)
    score = engine.score

    def fussy(crops: np.ndarray) -> np.ndarray:
        if (crops[..., 0] == 13).any():
            raise RuntimeError("unlucky pixels")
        return score(crops)

    monkeypatch.setattr(engine, "score", fussy)
    engine.expect(3)
    futures = [engine.submit(red(v), expected=True) for v in (200, 13, 100)]
    good, bad, other = (f.result(timeout=60) for f in futures)
    assert good.score == pytest.approx(200 / 255, abs=1e-6)
    assert other.score == pytest.approx(100 / 255, abs=1e-6)
    assert bad.score is None and bad.crops is None
    assert bad.error == "inference failed: RuntimeError: unlucky pixels"
    assert (engine.batches, engine.images) == (1, 3)  # one batch, retried image by image
    more = [engine.submit(red(v)) for v in (1, 2, 3)]  # the thread lives on
    assert [f.result(timeout=60).score for f in more] == [
        pytest.approx(v / 255, abs=1e-6) for v in (1, 2, 3)
    ]
    engine.close()


def test_cancelled_images_are_not_scored(tmp_path: Path) -> None:
    engine = start(tmp_path, batch_size=4)
    engine.expect(4)
    futures = [engine.submit(red(v), expected=True) for v in (10, 20, 30)]
    assert futures[1].cancel()  # its client went away before the batch left
    futures.append(engine.submit(red(40), expected=True))  # the fourth completes the batch
    assert [f.result(timeout=60).score for f in (futures[0], futures[2], futures[3])] == [
        pytest.approx(v / 255, abs=1e-6) for v in (10, 30, 40)
    ]
    assert engine.images == 3
    engine.close()


def test_close_scores_what_is_queued_then_refuses(tmp_path: Path) -> None:
    engine = start(tmp_path, batch_size=8)
    engine.expect(3)
    futures = [engine.submit(red(v), expected=True) for v in (60, 120)]  # waits for a third
    engine.close()
    assert [f.result(timeout=0).score for f in futures] == [
        pytest.approx(v / 255, abs=1e-6) for v in (60, 120)
    ]
    with pytest.raises(EngineClosed):
        engine.submit(red(1))


def test_a_negative_wait_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_wait_ms"):
        start(tmp_path, batch_size=4, wait_ms=-1)
