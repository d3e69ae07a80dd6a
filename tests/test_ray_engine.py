"""`--engine ray`: on a local 2-CPU Ray, the same report as the local engine, bad files included."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from commands import REPO, facescan, read_report
from conftest import build_red_model, save_image
from images import bad_files, write_all

from scanner import Scanner, ScanResult, engines
from scanner.errors import Terminated
from scanner.preprocess import FaceCropSpec, PreprocessSpec
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
    assert "max_restarts" not in ray.stderr  # Ray's error-level note on every scan, once
    rows, expected = read_report(tmp_path / "ray.csv"), read_report(tmp_path / "local.csv")
    assert [r["path"] for r in rows] == [r["path"] for r in expected]
    for got, want in zip(rows, expected, strict=True):
        assert {k: v for k, v in got.items() if k != "score"} == {
            k: v for k, v in want.items() if k != "score"
        }
        if want["score"]:
            assert float(got["score"]) == pytest.approx(float(want["score"]), abs=1e-5)


# Dropped on import by the stand-in clone's scanner/__init__.py: an editable install's import
# hook, which maps scanner.models onto this checkout's models/ in any process, Ray's workers too.
DROP_EDITABLE_HOOK = (
    "import sys\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if 'Editable' not in getattr(f, '__name__', '')]"
    "\n"
)
# The driver as the console script runs it: the working directory is not on its sys.path (-c
# puts it there), so it imports the installed facescan, not the clone's.
DRIVER = (
    "import sys; sys.path.pop(0); sys.argv[0] = 'facescan'\n"
    "from scanner.__main__ import main; main()"
)


def scan_from_a_clone(
    tmp_path: Path, ray_cluster: str, models: bool
) -> subprocess.CompletedProcess[str]:
    """`facescan --engine ray` run from inside a clone with a non-editable install, where Ray's
    workers put the driver's working directory first on sys.path and so import the clone's
    scanner/, which has no scanner.models (pyproject maps models/ there at install). Reproduced
    without building a wheel: the clone is a copy of scanner/ (with models/ beside it, holding
    the face detector, or not) whose __init__ drops the editable install's hook, as a
    non-editable install has none; the driver imports this checkout's facescan, as the
    installed one. A model that scores faces, so that every worker needs the detector."""
    clone = stand_in_clone(tmp_path, models)
    spec = PreprocessSpec(input_size=32, faces=FaceCropSpec(output_size=32))
    model = build_red_model(tmp_path / "faces.onnx", spec)
    for i in range(6):
        save_image(tmp_path / "photos" / f"{i}.png", (i * 40, 0, 0), size=64)
    options = ["--model", model, "--engine", "ray", "--ray-address", ray_cluster, "-q", "--out"]
    command = [sys.executable, "-c", DRIVER, tmp_path / "photos", *options, tmp_path / "r.csv"]
    return subprocess.run(
        list(map(str, command)), capture_output=True, text=True, cwd=clone, timeout=600
    )


def stand_in_clone(tmp_path: Path, models: bool) -> Path:
    """A copy of scanner/ whose __init__ drops the editable hook, with models/ beside it
    holding the face detector (or no models/)."""
    clone = tmp_path / "clone"
    shutil.copytree(
        REPO / "scanner", clone / "scanner", ignore=shutil.ignore_patterns("__pycache__")
    )
    init = clone / "scanner" / "__init__.py"
    init.write_text(init.read_text() + DROP_EDITABLE_HOOK)
    if models:
        (clone / "models").mkdir()
        shutil.copy(REPO / "models" / "centerface.onnx", clone / "models")
    return clone


def test_ray_workers_importing_a_clones_scanner_find_its_models(
    ray_cluster: str, tmp_path: Path
) -> None:
    done = scan_from_a_clone(tmp_path, ray_cluster, models=True)
    rows = read_report(tmp_path / "r.csv")
    assert [r["status"] for r in rows] == ["ok"] * 6, rows[0]["error"]
    assert done.returncode in (0, 1) and done.stderr == "", done.stderr


def test_a_worker_that_cannot_set_up_stops_the_scan_once(ray_cluster: str, tmp_path: Path) -> None:
    done = scan_from_a_clone(tmp_path, ray_cluster, models=False)  # no face detector there
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("facescan: --engine ray: a worker failed, so the scan stopped: ")
    assert "face detector model not found" in line
    assert [r["status"] for r in read_report(tmp_path / "r.csv")] == ["incomplete"]  # no rows


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


def test_a_clones_scanner_without_the_install_mapping_finds_the_models(tmp_path: Path) -> None:
    """What a Ray worker does from inside a clone (above), without Ray: the clone's folder first
    on sys.path, the editable hook dropped, then the face detector loaded as `Prepare` loads it
    before its first file."""
    clone = stand_in_clone(tmp_path, models=True)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import scanner; from scanner.faces import default_detector_path\n"
        "from scanner.work import Prepare; from scanner.preprocess import *\n"
        "Prepare(PreprocessSpec(input_size=32, faces=FaceCropSpec(output_size=32))).set_up()\n"
        "print(scanner.__file__, default_detector_path())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(clone)], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        str(clone / "scanner" / "__init__.py"),
        str(clone / "models" / "centerface.onnx"),
    ]
