"""The engine contract, one suite for every registered engine: one scored item per walked item,
in walk order, in batches; bad files pass through as errors; cache hits are not rescored; the
scores are the model's on the scanner's own preprocessing (within 1e-5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import build_red_model, save_image
from images import bad_files, write_all

from scanner import engines
from scanner.cache import CachedResult, ResultCache, file_sha256
from scanner.decode import load
from scanner.errors import UsageError
from scanner.preprocess import PreprocessSpec, fit_geometry
from scanner.walk import WalkError, walk
from scanner.work import Prepare

SPECS = {
    "resize": PreprocessSpec(input_size=16),
    "crop-grid": PreprocessSpec(input_size=16, geometry="crop", crop_grid=2),
}


@pytest.fixture(params=engines.names())
def engine_name(request: pytest.FixtureRequest) -> str:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")  # a Ray started once for the session
    return str(request.param)


@pytest.fixture
def pile(tmp_path: Path) -> Path:
    """Images of known redness in nested folders, every bad file, a broken link."""
    root = tmp_path / "pile"
    for i in range(23):
        save_image(root / f"d{i % 3}" / f"img{i:02d}.png", (i * 11, 40, 0), size=20 + i)
    write_all(root / "bad", bad_files())
    (root / "broken.jpg").symlink_to(tmp_path / "nowhere.jpg")
    return root


def expected_score(path: str, spec: PreprocessSpec) -> float:
    """The red model's answer, computed from the scanner's preprocessing without any engine:
    the mean red (0..1) over each crop, averaged over the crops."""
    crops = fit_geometry(load(path).image, spec).astype(np.float64) / 255.0
    return float(crops[..., 0].mean())


def start(name: str, model: Path, **settings: object) -> engines.Engine:
    options = {"provider": "cpu", "batch_size": 4, "workers": 2, **settings}
    return engines.create(name, engines.EngineSettings(model, **options))  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_one_item_per_file_in_walk_order_with_the_models_scores(
    engine_name: str, tmp_path: Path, pile: Path, spec: PreprocessSpec
) -> None:
    engine = start(engine_name, build_red_model(tmp_path / "red.onnx", spec))
    walked = list(walk([str(pile)], follow_symlinks=True))
    batches = list(engine.run(iter(walked), Prepare(spec)))
    items = [d for batch in batches for d in batch]
    assert [d.path for d in items] == [w.path for w in walked]
    assert all(0 < len(batch) <= 4 for batch in batches)
    for walked_item, d in zip(walked, items, strict=True):
        if isinstance(walked_item, WalkError) or "/bad/" in d.path:
            assert d.score is None and d.error, d
            continue
        assert d.crops is None and not d.cached  # pixels dropped once scored
        assert d.score == pytest.approx(expected_score(d.path, spec), abs=1e-5)


def test_errors_pass_through_with_the_decoders_message(
    engine_name: str, tmp_path: Path, pile: Path
) -> None:
    spec = SPECS["resize"]
    engine = start(engine_name, build_red_model(tmp_path / "red.onnx", spec))
    prepare = Prepare(spec)
    walked = list(walk([str(pile / "bad"), str(pile / "broken.jpg")]))
    items = [d for batch in engine.run(walked, prepare) for d in batch]
    assert [d.error for d in items] == [prepare(w).error for w in walked]
    assert all(d.error for d in items) and len(items) == len(bad_files()) + 1


def test_cache_hits_are_not_rescored(engine_name: str, tmp_path: Path, pile: Path) -> None:
    spec = SPECS["resize"]
    model = build_red_model(tmp_path / "red.onnx", spec)
    cache = ResultCache(tmp_path / "c.db", file_sha256(model))
    known = pile / "d0" / "img00.png"
    planted = CachedResult((0.123,), 7, 9, "PNG", "")  # not what the model would say
    cache.put(file_sha256(known), planted)
    cache.commit()
    engine = start(engine_name, model)
    items = [
        d
        for batch in engine.run(walk([str(pile / "d0")]), Prepare(spec, cache=cache.reader()))
        for d in batch
    ]
    hit = next(d for d in items if d.path == str(known))
    assert (hit.score, hit.width, hit.cached) == (0.123, 7, True)
    others = [d for d in items if d.path != str(known)]
    assert others and not any(d.cached for d in others)
    cache.close()


def test_score_of_in_memory_crops(engine_name: str, tmp_path: Path) -> None:
    spec = SPECS["crop-grid"]
    engine = start(engine_name, build_red_model(tmp_path / "red.onnx", spec))
    crops = np.zeros((8, 16, 16, 3), np.uint8)  # two images of four crops each
    crops[:4, ..., 0] = 255  # the first image all red, the second black
    assert engine.score(crops) == pytest.approx([1.0, 0.0], abs=1e-6)
    assert engine.info.preprocess == spec and engine.provider == "CPUExecutionProvider"


def test_an_empty_walk_yields_nothing(engine_name: str, tmp_path: Path) -> None:
    engine = start(engine_name, build_red_model(tmp_path / "red.onnx"))
    assert list(engine.run(iter([]), Prepare(SPECS["resize"]))) == []


def test_unknown_engine_names_the_choices() -> None:
    with pytest.raises(UsageError, match="choose from local"):
        engines.create("spark", engines.EngineSettings(Path("m.onnx")))
