"""The result cache: reuse, invalidation, relabelling, interrupted and concurrent scans."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from commands import facescan, read_report
from conftest import build_red_model, save_image

from scanner import Scanner
from scanner.cache import CacheError
from scanner.preprocess import PreprocessSpec


def make_pile(folder: Path, count: int = 10) -> Path:
    for i in range(count):
        save_image(folder / f"img{i:03}.png", (i * 25 % 256, i // 10, 0))  # distinct content
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def scan(model: Path, pile: Path, cache: Path, **options: object) -> dict[str, object]:
    options = {"provider": "cpu", "workers": 1, "batch_size": 4, **options}
    scanner = Scanner(model, cache=cache, **options)  # type: ignore[arg-type]
    return {Path(r.path).name: r for r in scanner.scan([pile])}


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    return build_red_model(tmp_path / "red.onnx"), make_pile(tmp_path / "pile"), tmp_path / "c.db"


def test_rescan_reuses_results_and_marks_them(setup: tuple[Path, Path, Path]) -> None:
    model, pile, cache = setup
    first = scan(model, pile, cache)
    second = Scanner(model, provider="cpu", workers=2, batch_size=4, cache=cache)  # worker reads
    again = {Path(r.path).name: r for r in second.scan([pile])}
    assert not any(r.cached for r in first.values())  # type: ignore[attr-defined]
    assert [r.cached for r in again.values()] == [False] + [True] * 10  # errors: never cached
    for name, r in again.items():
        old = first[name]
        assert (r.score, r.label, r.width, r.format, r.sha256) == (
            old.score, old.label, old.width, old.format, old.sha256,  # type: ignore[attr-defined]
        )  # fmt: skip


def test_changed_file_and_other_model_are_rescanned(
    tmp_path: Path, setup: tuple[Path, Path, Path]
) -> None:
    model, pile, cache = setup
    scan(model, pile, cache)
    save_image(pile / "img000.png", (255, 0, 0))  # same name, new content
    again = scan(model, pile, cache, workers=2)  # the chunk goes to a worker, which looks up
    assert not again["img000.png"].cached and again["img000.png"].score == 1.0  # type: ignore[attr-defined]
    assert again["img001.png"].cached  # type: ignore[attr-defined]
    other = build_red_model(tmp_path / "other.onnx", PreprocessSpec(input_size=8))
    assert not any(r.cached for r in scan(other, pile, cache).values())  # type: ignore[attr-defined]


def test_threshold_change_relabels_without_rescoring(setup: tuple[Path, Path, Path]) -> None:
    model, pile, cache = setup
    scan(model, pile, cache, threshold=0.5)
    strict = scan(model, pile, cache, threshold=0.95)
    lax = scan(model, pile, cache, threshold=0.05)
    assert strict["img009.png"].cached and lax["img009.png"].cached  # type: ignore[attr-defined]
    assert (strict["img009.png"].label, lax["img009.png"].label) == ("real", "ai")  # type: ignore[attr-defined]


def test_a_stopped_scan_resumes_from_the_cache(setup: tuple[Path, Path, Path]) -> None:
    model, pile, cache = setup
    scanner = Scanner(model, provider="cpu", workers=1, batch_size=4, cache=cache)
    results = scanner.scan([pile])
    done = [next(results) for _ in range(4)]  # one batch reported, then the scan is stopped
    results.close()
    again = scan(model, pile, cache)
    finished = {Path(r.path).name for r in done if r.status == "ok"}
    assert finished == {name for name, r in again.items() if r.cached}  # type: ignore[attr-defined]
    assert len(finished) == 3 and len(again) == 11


def test_a_killed_scan_finishes_the_rest(tmp_path: Path) -> None:
    model = build_red_model(tmp_path / "red.onnx")
    pile = make_pile(tmp_path / "pile", count=300)
    out, cache = tmp_path / "r.jsonl", tmp_path / "c.db"
    args = ["--model", model, "--cache", cache, "--workers", "1", "--batch-size", "4", "-q"]
    command = [sys.executable, "-m", "scanner", str(pile), "--out", str(out), *map(str, args)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and len(out.read_bytes().splitlines()) >= 20:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    reported = len(out.read_bytes().splitlines())
    facescan(pile, "--out", tmp_path / "again.csv", *args)
    rows = read_report(tmp_path / "again.csv")
    cached = sum(r["cached"] == "true" for r in rows)
    # every reported row but the error row (broken.png) was committed before it was reported
    assert len(rows) == 301 and reported - 1 <= cached <= 300
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_two_scans_sharing_a_cache(tmp_path: Path) -> None:
    model = build_red_model(tmp_path / "red.onnx")
    piles = [make_pile(tmp_path / f"pile{i}", count=120) for i in range(2)]
    for i in range(120):  # different content in the second pile: both scans write
        save_image(piles[1] / f"img{i:03}.png", (i, 0, 200))
    cache = tmp_path / "c.db"
    command = [sys.executable, "-m", "scanner", "--model", str(model), "--cache", str(cache)]
    options = ["--workers", "1", "--batch-size", "2", "-q", "--exit-zero"]
    scans = [
        subprocess.Popen([*command, str(p), "--out", str(tmp_path / f"r{i}.csv"), *options])
        for i, p in enumerate(piles)
    ]
    assert [s.wait(timeout=120) for s in scans] == [0, 0]
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM results").fetchone()[0] == 240
    for i in range(2):
        assert len(read_report(tmp_path / f"r{i}.csv")) == 121


def test_a_file_that_is_not_a_cache_is_refused(setup: tuple[Path, Path, Path]) -> None:
    model, pile, cache = setup
    cache.write_bytes(b"not a database, but some notes" * 100)
    with pytest.raises(CacheError, match="cannot use"):
        Scanner(model, provider="cpu", cache=cache)
    done = facescan(pile, "--model", model, "--cache", cache)
    assert done.returncode == 2 and "result cache" in done.stderr


RACE = """
import multiprocessing as mp, os, sys, tempfile
from scanner.cache import CachedResult, ResultCache

def scan(path, start, i, failures):
    try:
        start.wait()
        cache = ResultCache(path, "m" * 64)
        for k in range(3):
            cache.put(f"{i}-{k}".ljust(64, "0"), CachedResult(0.5, 1, 1, "PNG", ""))
            cache.commit()
        cache.close()
    except Exception as e:
        failures.put(repr(e))

if __name__ == "__main__":
    ctx = mp.get_context("fork")  # a fresh interpreter with only the cache imported: fork-safe
    scans, rounds = int(sys.argv[1]), int(sys.argv[2])
    for _ in range(rounds):
        path = os.path.join(tempfile.mkdtemp(), "c.db")
        start, failures = ctx.Barrier(scans), ctx.Queue()
        procs = [ctx.Process(target=scan, args=(path, start, i, failures)) for i in range(scans)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        if not failures.empty():
            sys.exit(failures.get())
        import sqlite3
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT count(*) FROM results").fetchone()[0] == 3 * scans
"""


@pytest.mark.parametrize("scans", [2, 4])
def test_scans_opening_one_new_cache_at_once_never_find_it_locked(
    tmp_path: Path, scans: int
) -> None:
    # The race: switching a new file to WAL mode answered "database is locked" at once (no busy
    # wait) when another scan was creating the same file; about 1 start in 30 failed. Each round
    # starts the scans together on a fresh file, many rounds in a few seconds.
    script = tmp_path / "race.py"
    script.write_text(RACE)
    done = subprocess.run(
        [sys.executable, str(script), str(scans), "40"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_cache_file_alone_holds_every_row_after_a_scan(
    tmp_path: Path, setup: tuple[Path, Path, Path]
) -> None:
    # A CI job that keeps only the cache file (not its -wal) must find the rows next time.
    model, pile, cache = setup
    assert facescan(pile, "--model", model, "--cache", cache, "-q", "--exit-zero").returncode == 0
    kept = tmp_path / "kept" / "c.db"
    kept.parent.mkdir()
    kept.write_bytes(cache.read_bytes())
    with sqlite3.connect(kept) as db:
        assert db.execute("SELECT count(*) FROM results").fetchone()[0] == 10
    again = facescan(pile, "--model", model, "--cache", kept, "--out", tmp_path / "r.csv")
    assert again.returncode in (0, 1, 2)
    assert sum(r["cached"] == "true" for r in read_report(tmp_path / "r.csv")) == 10


def test_a_cache_of_an_older_schema_is_emptied_and_reused(setup: tuple[Path, Path, Path]) -> None:
    # Schema 2 (before C2PA credentials were stored): no `credentials` column.
    model, pile, cache = setup
    with sqlite3.connect(cache) as db:
        db.execute(
            "CREATE TABLE results (file_sha256 TEXT, scan_key TEXT, scores TEXT, width INTEGER, "
            "height INTEGER, format TEXT, evidence TEXT, faces TEXT, evidence_version INTEGER, "
            "PRIMARY KEY (file_sha256, scan_key)) WITHOUT ROWID"
        )
        db.execute("INSERT INTO results VALUES ('x', 'k', '[0.5]', 1, 1, 'PNG', '', NULL, 1)")
        db.execute("PRAGMA user_version=2")
    assert not any(r.cached for r in scan(model, pile, cache).values())  # type: ignore[attr-defined]
    assert sum(r.cached for r in scan(model, pile, cache).values()) == 10  # type: ignore[attr-defined]
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (3,)
        assert db.execute("SELECT count(*) FROM results WHERE file_sha256 = 'x'").fetchone() == (0,)


def test_a_change_in_what_the_detector_finds_is_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows scored with face crops are keyed by the detection's version too (close-ups found
    since version 2 were scored whole before): whole-image scans keep their key."""
    from scanner import cache
    from scanner.preprocess import FaceCropSpec

    whole = PreprocessSpec().to_dict()
    faces = PreprocessSpec(faces=FaceCropSpec()).to_dict()
    before = cache.scan_key("m", whole), cache.scan_key("m", faces)
    monkeypatch.setattr(cache, "DETECTION_VERSION", cache.DETECTION_VERSION + 1)
    assert cache.scan_key("m", whole) == before[0]
    assert cache.scan_key("m", faces) != before[1]
