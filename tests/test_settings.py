"""The scan's settings and source: one typed record each, mapped once from the options of both
commands, checked once (naming the option at fault), handed to the Scanner and its engine as
they are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from commands import facescan
from conftest import build_red_model

from scanner import Scanner, ScanSettings, Source, engines
from scanner.cli_options import SETTINGS_OPTIONS, scan_settings
from scanner.engines.base import EngineSettings
from scanner.errors import SettingError, UsageError
from scanner.preprocess import FaceCropSpec, PreprocessSpec
from scanner.testing.group_photos import group_photo
from scanner.walk import Shard

FACE_SPEC = PreprocessSpec(input_size=32, faces=FaceCropSpec(output_size=32))


def test_every_setting_that_cannot_work_is_named_by_its_option() -> None:
    settings = ScanSettings.of(
        batch_size=0, workers=0, threads=0, actors=0, max_pixels=0, max_bytes=0, threshold=2.0,
        faces="some", min_face=-1, engine="spark",
    )  # fmt: skip
    with pytest.raises(SettingError) as refused:
        settings.check()
    message = str(refused.value)
    for option in ("--batch-size", "--workers", "--threads", "--actors", "--max-pixels"):
        assert f"{option} must be at least 1" in message
    for option in ("--max-bytes", "--threshold", "--faces", "--min-face", "--engine 'spark'"):
        assert option in message
    assert isinstance(refused.value, ValueError)  # a program building a Scanner catches these


def test_an_unknown_setting_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="colour"):
        ScanSettings.of(colour="red")


def test_the_engine_gets_the_settings_engine_record_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given: list[EngineSettings] = []
    create = engines.create

    def recording(name: str, settings: EngineSettings) -> Any:
        given.append(settings)
        return create(name, settings)

    monkeypatch.setattr(engines, "create", recording)
    settings = ScanSettings.of(build_red_model(tmp_path / "m.onnx"), provider="cpu", workers=1)
    with Scanner(settings) as scanner:
        assert scanner.settings is settings
    assert given == [settings.engine] and given[0] is settings.engine


def test_the_keywords_name_the_same_settings(tmp_path: Path) -> None:
    model = build_red_model(tmp_path / "m.onnx")
    with Scanner(model, provider="cpu", workers=1, threshold=0.3, cache=tmp_path / "c") as by_name:
        expected = ScanSettings.of(model, provider="cpu", workers=1, threshold=0.3,
                                   cache=tmp_path / "c")  # fmt: skip
        assert by_name.settings == expected


def test_the_options_map_to_settings_by_name() -> None:
    values = {
        "model": None, "precision": "auto", "workers": 3, "max_pixels": 10, "cache": "c.sqlite",
        "ignore_metadata": True, "c2pa_trust": None, "engine": "batcher", "debug": True,
        "out": Path("r.csv"),
    }  # fmt: skip
    settings = scan_settings(values)
    assert settings.engine.workers == 3 and settings.engine.name == "batcher"
    assert settings.limits.max_pixels == 10 and settings.cache == Path("c.sqlite")
    assert settings.use_metadata is False and settings.engine.progress is True
    assert values == {"debug": True, "out": Path("r.csv")}  # what is not a setting stays


def test_both_commands_take_every_shared_setting_option() -> None:
    for command in ([], ["serve"]):
        done = subprocess.run(
            [sys.executable, "-m", "scanner", *command, "--help"], capture_output=True, text=True
        )
        for name, _, _ in SETTINGS_OPTIONS:
            assert f"--{name.replace('_', '-')}" in done.stdout, (command, name)


def test_a_source_parses_its_shard_and_names_what_it_reads(tmp_path: Path) -> None:
    source = Source.of([tmp_path], exclude=["thumbs"], shard="2/3")
    assert source == Source((str(tmp_path),), exclude=("thumbs",), shard=Shard(2, 3))
    assert source.names() == [str(tmp_path)] and source.can_read_twice()
    assert Source(files_from="list.txt").names() == ["the list list.txt"]
    with pytest.raises(UsageError, match="expected I/N"):
        Source.of([tmp_path], shard="half")
    assert Source().problems() == ["nothing to scan: give PATHs or --files-from FILE"]


@pytest.fixture(scope="module")
def wide_photo(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4800 x 1200 photo (a row of people) with three 100-px faces: about 2 % of its width,
    20 px at the default detection size, too few for the detector."""
    real = sorted((shared_data / "test" / "real").glob("*.jpg"))[:3]
    photo, _ = group_photo(real, [100, 100, 100], canvas=(4800, 1200), seed=1)
    path = tmp_path_factory.mktemp("wide") / "wide.jpg"
    photo.save(path, quality=92)
    return path


def test_a_larger_detect_size_finds_the_small_faces_of_a_large_photo(
    wide_photo: Path, tmp_path: Path
) -> None:
    model = build_red_model(tmp_path / "m.onnx", FACE_SPEC)
    settings = ScanSettings.of(model, provider="cpu", workers=1, min_face=40)
    (missed,) = Scanner(settings).scan([wide_photo])
    assert missed.faces == ()  # the model's 960 px: none found, the photo is scored whole
    out = tmp_path / "r.json"
    args = ("--model", model, "--min-face", "40", "--detect-size", "1920", "--exit-zero")
    assert facescan(wide_photo, *args, "--out", out).returncode == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["model"]["preprocess"]["faces"]["detect_size"] == 1920
    assert len(document["results"][0]["faces"]) == 3


def test_the_service_checks_the_detect_size_too() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scanner", "serve", "--detect-size", "100"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "--detect-size must be a multiple of 32 in 32..4096 (got 100)" in done.stderr
