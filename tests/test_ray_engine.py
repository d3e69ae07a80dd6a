"""`--engine ray`: on a local 2-CPU Ray, the same report as the local engine, bad files included."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from commands import facescan, read_report
from conftest import build_red_model, save_image
from images import bad_files, write_all

from scanner import Scanner, ScanResult, engines
from scanner.errors import Terminated
from scanner.preprocess import PreprocessSpec
from scanner.walk import Shard


@pytest.fixture
def pile(tmp_path: Path) -> Path:
    """Good images of known redness, every bad file, a hidden folder, an excluded one, a link."""
    root = tmp_path / "pile"
    for i in range(12):
        save_image(root / f"sub{i % 3}" / f"img{i:02d}.png", (i * 20, 0, 0), size=20 + i)
    save_image(root / ".hidden" / "h.jpg", (250, 10, 10), quality=95)
    save_image(root / "thumbs" / "skip.png", (255, 0, 0))
    write_all(root / "bad", bad_files())
    (root / "broken.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (root / "loop").symlink_to(root)
    return root


WALK = {"exclude": ["thumbs"], "follow_symlinks": True}


def assert_same_rows(local: list[ScanResult], ray: list[ScanResult]) -> None:
    assert [r.path for r in ray] == [r.path for r in local]
    for a, b in zip(local, ray, strict=True):
        assert dataclasses.replace(b, score=a.score) == a
        if a.score is not None:
            assert b.score == pytest.approx(a.score, abs=1e-5)


def scan_both(model: Path, root: Path, **scan: Any) -> tuple[list[ScanResult], list[ScanResult]]:
    local = list(Scanner(model, provider="cpu", workers=1, batch_size=4).scan([root], **scan))
    ray = list(Scanner(model, provider="cpu", batch_size=4, engine="ray").scan([root], **scan))
    return local, ray


@pytest.mark.parametrize(
    "spec",
    [PreprocessSpec(input_size=16), PreprocessSpec(input_size=16, geometry="crop", crop_grid=2)],
    ids=["resize", "crop-grid-averaged"],
)
def test_ray_report_equals_local_report(
    ray_cluster: str, tmp_path: Path, pile: Path, spec: PreprocessSpec
) -> None:
    model = build_red_model(tmp_path / "red.onnx", spec)
    local, ray = scan_both(model, pile, **WALK)
    assert_same_rows(local, ray)
    errors = {os.path.relpath(r.path, pile) for r in ray if r.status == "error"}
    assert errors == {f"bad/{name}" for name in bad_files()} | {"broken.jpg"}
    assert any(".hidden" in r.path for r in ray) and not any("thumbs" in r.path for r in ray)
    assert {r.label for r in ray if r.status == "ok"} == {"ai", "real"}


def test_ray_engine_reads_and_fills_the_cache_like_the_local_one(
    ray_cluster: str, tmp_path: Path, pile: Path
) -> None:
    # The scanner owns the cache, so every engine gets it: Ray tasks look files up, the driver
    # stores what the actors scored.
    model, cache = build_red_model(tmp_path / "red.onnx"), tmp_path / "c.db"
    first = list(Scanner(model, provider="cpu", engine="ray", cache=cache).scan([pile], **WALK))
    with Scanner(model, provider="cpu", workers=1, cache=cache) as local:
        again = list(local.scan([pile], **WALK))
    with Scanner(model, provider="cpu", engine="ray", cache=cache) as ray:
        ray_again = list(ray.scan([pile], **WALK))
    scored = [r.status == "ok" for r in first]
    assert not any(r.cached for r in first) and sum(scored) > 10
    assert [r.cached for r in again] == scored and [r.cached for r in ray_again] == scored
    assert [r.score for r in again] == [r.score for r in first] == [r.score for r in ray_again]


def test_ray_engine_shards_like_the_local_one(ray_cluster: str, tmp_path: Path, pile: Path) -> None:
    model = build_red_model(tmp_path / "red.onnx")
    local, ray = scan_both(model, pile, shard=Shard(2, 3), **WALK)
    assert 0 < len(ray) < 20
    assert_same_rows(local, ray)


def test_cli_joins_a_cluster_and_writes_the_local_report(
    ray_cluster: str, tmp_path: Path, pile: Path
) -> None:
    model = build_red_model(tmp_path / "red.onnx")
    args = (pile, "--model", model, "--exclude", "thumbs", "--follow-symlinks")
    local = facescan(*args, "--out", tmp_path / "local.csv")
    ray = facescan(*args, "--out", tmp_path / "ray.csv", "--engine", "ray", "--actors", "1",
                   "--ray-address", ray_cluster)  # fmt: skip
    assert ray.returncode == local.returncode == 1, ray.stderr  # flagged files: exit 1
    assert "Traceback" not in ray.stderr
    rows, expected = read_report(tmp_path / "ray.csv"), read_report(tmp_path / "local.csv")
    assert [r["path"] for r in rows] == [r["path"] for r in expected]
    for got, want in zip(rows, expected, strict=True):
        assert {k: v for k, v in got.items() if k != "score"} == {
            k: v for k, v in want.items() if k != "score"
        }
        if want["score"]:
            assert float(got["score"]) == pytest.approx(float(want["score"]), abs=1e-5)


def test_local_engine_never_imports_ray(tmp_path: Path, red_model: Path) -> None:
    save_image(tmp_path / "a.png", (0, 0, 0))
    code = (  # main() exits the process; atexit handlers still run, at its very end
        "import atexit, sys\nfrom scanner.cli import main\nsys.argv = ['facescan', *sys.argv[1:]]\n"
        "atexit.register(lambda: print('ray' in sys.modules, 'ray.data' in sys.modules))\nmain()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "a.png"), "--model", str(red_model), "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "False False", done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--actors", "2"], "need --engine ray"),
        (["--engine", "spark"], f"choose from {', '.join(engines.names())}"),
        (["--engine", "ray", "--actors", "0"], "--actors must be at least 1"),
    ],
)
def test_bad_engine_options_exit_2(
    tmp_path: Path, red_model: Path, args: list[str], message: str
) -> None:
    save_image(tmp_path / "a.png", (0, 0, 0))
    done = facescan(tmp_path / "a.png", "--model", red_model, *args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_starting_ray_keeps_the_scans_sigterm_handler() -> None:
    # ray.init sets a SIGTERM handler that calls sys.exit(15): a CI job's SIGTERM then exited
    # 15 with a report marked failed. `sigterm_handler_kept` puts facescan's back, and hands it
    # a SIGTERM that comes while Ray starts. Runs without Ray: what ray.init does is mimicked.
    from scanner.engines.ray import sigterm_handler_kept

    def facescans(signum: int, frame: object) -> None:
        raise Terminated

    def rays(signum: int, frame: object) -> None:
        sys.exit(signum)

    before = signal.signal(signal.SIGTERM, facescans)
    try:
        with sigterm_handler_kept():
            signal.signal(signal.SIGTERM, rays)  # ray.init's first step
        assert signal.getsignal(signal.SIGTERM) is facescans
        with pytest.raises(Terminated), sigterm_handler_kept():
            signal.signal(signal.SIGTERM, rays)
            signal.raise_signal(signal.SIGTERM)  # this thread: handled before the next line
        assert signal.getsignal(signal.SIGTERM) is facescans
        with pytest.raises(SystemExit), sigterm_handler_kept():
            sys.exit(3)  # any other exit goes on as it is
    finally:
        signal.signal(signal.SIGTERM, before)
