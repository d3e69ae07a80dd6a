"""The `facescan` command as a user and a CI job see it: reports, exit codes, bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from commands import facescan, read_report
from conftest import build_red_model, save_image
from images import bad_files, good_files, png_bomb, write_all

from scanner.preprocess import PreprocessSpec

ODD_NAMES = [
    "comma, name.png",
    'quote"name.png',
    "new\nline.png",
    "=SUM(A1).png",
    "@at.png",
    "+plus.png",
    "-minus.png",
    "ünïcødé 顔.png",
    "space name.png",
]


@pytest.fixture
def pile(tmp_path: Path) -> Path:
    """A folder holding every bad and awkward input of the scanner issue."""
    folder = tmp_path / "pile"
    write_all(folder, bad_files())
    write_all(folder / "awkward", good_files())
    for name in ODD_NAMES:
        save_image(folder / "names" / name, (0, 0, 200))
    (folder / "loop").mkdir()
    (folder / "loop" / "back").symlink_to(folder)
    (folder / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    return folder


@pytest.mark.parametrize("ext", ["csv", "json", "jsonl"])
def test_every_bad_input_is_one_error_row_and_the_scan_finishes(
    tmp_path: Path, pile: Path, red_model: Path, ext: str
) -> None:
    out = tmp_path / f"report.{ext}"
    done = facescan(pile, "--model", red_model, "--out", out, "--follow-symlinks")
    assert "Traceback" not in done.stderr
    rows = read_report(out)
    by_name = {os.path.relpath(r["path"], pile): r for r in rows}
    assert len(rows) == len(by_name)  # every file exactly once, the loop visited once
    expected = (
        set(bad_files())
        | {f"awkward/{n}" for n in good_files()}
        | {f"names/{n}" for n in ODD_NAMES}
        | {"dangling.jpg"}
    )
    assert set(by_name) == expected
    for name in bad_files():
        assert by_name[name]["status"] == "error" and by_name[name]["error"], name
    assert by_name["dangling.jpg"]["error"] == "broken symbolic link"
    for name in expected - set(bad_files()) - {"dangling.jpg"}:
        row = by_name[name]
        assert row["status"] == "ok" and 0.0 <= float(row["score"]) <= 1.0, (name, row)
        assert row["label"] in ("ai", "real") and len(row["sha256"]) == 64
    assert by_name["awkward/cmyk.jpg"]["label"] == "ai"  # red once converted from CMYK
    assert by_name["awkward/rotated.jpg"][("width")] == "20"  # EXIF-rotated 40x20
    assert done.returncode == 1  # flagged takes precedence over errors


def test_pillow_warnings_stay_off_stderr(tmp_path: Path, red_model: Path) -> None:
    # 9,500 x 9,500 is under facescan's 100-MP limit but over Pillow's warning threshold;
    # the header-only file then fails to decode, which the report says.
    (tmp_path / "big.png").write_bytes(png_bomb(9500, 9500))
    done = facescan(tmp_path / "big.png", "--model", red_model, "--out", tmp_path / "r.csv")
    assert done.returncode == 2 and "Warning" not in done.stderr, done.stderr
    assert read_report(tmp_path / "r.csv")[0]["status"] == "error"


def test_the_three_formats_hold_the_same_rows(tmp_path: Path, pile: Path, red_model: Path) -> None:
    reports = {}
    for ext in ("csv", "json", "jsonl"):
        facescan(pile, "--model", red_model, "--out", tmp_path / f"r.{ext}", "-q")
        reports[ext] = read_report(tmp_path / f"r.{ext}")
    assert reports["csv"] == reports["json"] == reports["jsonl"]


def test_json_report_has_model_and_summary(tmp_path: Path, pile: Path, red_model: Path) -> None:
    facescan(pile, "--model", red_model, "--out", tmp_path / "r.json", "--threshold", "0.9")
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert doc["model"]["provider"] == "CPUExecutionProvider"
    assert doc["model"]["threshold"] == 0.9
    summary = doc["summary"]
    assert summary["files"] == len(doc["results"])
    assert summary["errors"] == sum(r["status"] == "error" for r in doc["results"])
    assert summary["flagged"] == sum(r["label"] == "ai" for r in doc["results"])
    assert summary["interrupted"] is False


def test_csv_neutralises_formulas_and_round_trips_odd_names(tmp_path: Path) -> None:
    folder = tmp_path / "names"
    for name in ODD_NAMES:
        save_image(folder / name, (0, 0, 200))
    model = build_red_model(tmp_path / "m.onnx")
    done = facescan("--model", model, "--out", tmp_path / "r.csv", "--", *ODD_NAMES, cwd=folder)
    assert done.returncode == 0, done.stderr  # blue images: nothing flagged
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as f:
        cells = [row["path"] for row in csv.DictReader(f)]
    assert sorted(cells) == sorted("'" + n if n[0] in "=+-@" else n for n in ODD_NAMES)
    assert all(not c.startswith(("=", "+", "-", "@")) for c in cells)


def make_tree(folder: Path, red: int = 0, blue: int = 0, bad: int = 0) -> Path:
    for i in range(red):
        save_image(folder / f"red{i}.png", (255, 0, 0))
    for i in range(blue):
        save_image(folder / f"blue{i}.png", (0, 0, 255))
    for i in range(bad):
        (folder / f"bad{i}.jpg").write_text("not an image")
    return folder


@pytest.mark.parametrize(
    ("red", "bad", "extra", "code"),
    [
        (0, 0, [], 0),  # clean
        (1, 0, [], 1),  # flagged
        (0, 1, [], 2),  # unreadable only
        (1, 1, [], 1),  # flagged takes precedence
        (1, 1, ["--exit-zero"], 0),
        (1, 0, ["--threshold", "1.01"], 2),  # bad option value
    ],
)
def test_exit_status(
    tmp_path: Path, red_model: Path, red: int, bad: int, extra: list[str], code: int
) -> None:
    folder = make_tree(tmp_path / "t", red=red, blue=2, bad=bad)
    done = facescan(folder, "--model", red_model, "--out", tmp_path / "r.csv", *extra)
    assert done.returncode == code, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no such file or folder: nope"),
        (["--model", "missing.onnx"], "model file not found"),
        (["--provider", "tpu"], "unknown provider 'tpu'"),
        (["--out", "report.xlsx"], "cannot tell the report format"),
        (["--bogus-option"], "No such option"),
    ],
)
def test_could_not_run_is_exit_2_with_a_message(
    tmp_path: Path, red_model: Path, args: list[str], message: str
) -> None:
    make_tree(tmp_path, blue=1)
    base = ["."] if args[0].startswith("--") else []
    model = [] if "--model" in args else ["--model", red_model]
    done = facescan(*base, *args, *model, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_default_model_missing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scanner.session
    from scanner.cli import app

    folder = tmp_path / "installed" / "scanner" / "models"
    folder.mkdir(parents=True)
    missing = folder / "facescan-default.onnx"
    monkeypatch.setattr(scanner.session, "default_model_path", lambda precision="auto": missing)
    from typer.testing import CliRunner

    done = CliRunner().invoke(app, [str(make_tree(tmp_path / "t", blue=1))])
    assert done.exit_code == 2
    assert "model file not found" in done.output and "pass --model" in done.output


def test_stdout_lists_flagged_files_and_stderr_summarises(tmp_path: Path, red_model: Path) -> None:
    folder = make_tree(tmp_path / "t", red=2, blue=3, bad=1)
    done = facescan(folder, "--model", red_model)
    lines = done.stdout.splitlines()  # not a terminal: one tab-separated line per flagged file
    assert sorted(line.split("\t")[2] for line in lines) == [
        str(folder / "red0.png"),
        str(folder / "red1.png"),
    ]
    assert "5 files" not in done.stderr and "6 files, 2 flagged ai, 3 real, 1 errors" in done.stderr
    assert "bad0.jpg: not a supported image" in done.stderr
    assert "CPUExecutionProvider" in done.stderr
    quiet = facescan(folder, "--model", red_model, "-q")
    assert quiet.stderr == "" and quiet.returncode == 1


def test_help_documents_exit_status() -> None:
    done = facescan("--help")
    assert done.returncode == 0 and "Exit status" in done.stdout and "--exit-zero" in done.stdout


@pytest.mark.parametrize("ext", ["csv", "json"])
def test_ctrl_c_stops_cleanly_with_a_valid_report(tmp_path: Path, ext: str) -> None:
    # A 512-px input makes each image cost milliseconds, so the scan is still running at Ctrl-C.
    red_model = build_red_model(tmp_path / "m.onnx", PreprocessSpec(input_size=512))
    folder = tmp_path / "many"
    for i in range(1500):
        save_image(folder / f"{i:04}.png", (i % 256, 0, 0), size=64)
    out = tmp_path / f"r.{ext}"
    command = [sys.executable, "-m", "scanner", str(folder), "--model", str(red_model)]
    proc = subprocess.Popen(
        [*command, "--out", str(out), "--workers", "1", "--batch-size", "1"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until rows are being written
        if ext == "csv" and out.exists() and out.read_text().count("\n") > 5:
            break
        if ext == "json" and any(tmp_path.glob(".r.json.*.tmp")):
            time.sleep(0.2)
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    rows = read_report(out)
    assert 0 < len(rows) < 1500 and all(r["status"] == "ok" for r in rows)
    if ext == "json":
        assert json.loads(out.read_text())["summary"]["interrupted"] is True
