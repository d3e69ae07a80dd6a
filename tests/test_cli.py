"""The `facescan` command as a user and a CI job see it: reports, exit codes, bad input."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from commands import facescan, read_report, run_in_process
from conftest import build_red_model, save_image
from images import ODD_NAMES, awkward_pile, bad_files, good_files, png_bomb, png_bytes
from PIL import Image

from scanner import command as scan_command_module
from scanner.errors import Terminated
from scanner.reports.base import unescape_path
from scanner.reports.partial import STOPPED


@pytest.fixture
def pile(tmp_path: Path) -> Path:
    return awkward_pile(tmp_path)


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
    import scanner.shipped
    from scanner.cli import app

    folder = tmp_path / "installed" / "scanner" / "models"
    folder.mkdir(parents=True)
    missing = folder / "facescan-accurate.onnx"
    monkeypatch.setattr(scanner.shipped, "default_model_path", lambda *args: missing)
    from typer.testing import CliRunner

    done = CliRunner().invoke(app, [str(make_tree(tmp_path / "t", blue=1))])
    assert done.exit_code == 2
    assert "model file not found" in done.output and "pass --model" in done.output


def test_a_mistyped_model_name_lists_the_shipped_ones(tmp_path: Path) -> None:
    done = facescan(make_tree(tmp_path / "t", blue=1), "--model", "acurate", cwd=tmp_path)
    assert done.returncode == 2
    wanted = "model file not found: acurate (nor a shipped model: clip, accurate, fast, clip-full)"
    assert wanted in done.stderr


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


SIGNALS = {
    "SIGINT": (signal.SIGINT, 130, "interrupted"),
    "SIGTERM": (signal.SIGTERM, 143, "terminated"),
}


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see the scan's threads"
)


# `facescan`, with every file named pipe.png opened as the named pipe beside it. (Patched in
# `open`, so that nothing imports numpy and its threads before the scan blocks their signals.)
READ_FROM_THE_PIPE = """
import builtins, sys

def open_the_pipe(file, *args, **kwargs):
    if isinstance(file, str) and file.endswith("pipe.png"):
        file = file.removesuffix(".png")
    return unpatched(file, *args, **kwargs)

unpatched, builtins.open = builtins.open, open_the_pipe
from scanner import cli
sys.argv[0] = "facescan"
cli.main()
"""


def scan_blocked_on_a_fifo(
    tmp_path: Path, out: Path, workers: int, fifo_first: bool = False
) -> tuple[subprocess.Popen[str], int]:
    """A scan of 10 images followed (or preceded) by a file whose read blocks the scan until
    the test opens the other end of a named pipe: the scan is provably still running when the
    signal is sent. (The scan never opens a named pipe itself, so it runs in a launcher that
    reads `pipe.png` from the pipe `pipe`: a stand-in for a read that hangs, on a network file
    system say.)"""
    for i in range(10):
        save_image(tmp_path / "pile" / f"{i:02}.png", (200, 0, 0))
    fifo, blocking = tmp_path / "pipe", save_image(tmp_path / "pipe.png", (200, 0, 0))
    os.mkfifo(fifo)
    model = build_red_model(tmp_path / "m.onnx")
    paths = [str(tmp_path / "pile"), str(blocking)]
    command = [sys.executable, "-c", READ_FROM_THE_PIPE, *(paths[::-1] if fifo_first else paths)]
    options = ["--model", str(model), "--out", str(out), "--workers", str(workers)]
    proc = subprocess.Popen(
        [*command, *options, "--batch-size", "1"],
        stderr=subprocess.PIPE,
        text=True,
        # A shell starts a background job (`make test &`, nohup) with SIGINT ignored, and the
        # scan inherits that and rightly keeps ignoring Ctrl-C: give it the default, as a
        # terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while True:  # opening the write end succeeds once the scan has opened the pipe to read it
        try:
            pipe = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "the scan never got there"
            time.sleep(0.01)
    # Then wait until a thread sleeps in read() on it: Python checks for signals between its
    # own steps, so a signal landing after its last check but before read() starts is seen only
    # when read() returns, which on this pipe is never (a second Ctrl-C would end it). Sent
    # during the read, the signal interrupts it.
    while not any("pipe_read" in (t / "wchan").read_text() for t in tasks(proc.pid)):
        assert time.monotonic() < deadline and proc.poll() is None, "the scan never read the pipe"
        time.sleep(0.01)
    return proc, pipe


def tasks(pid: int) -> list[Path]:
    """The /proc folders of a process's threads (Linux)."""
    return list(Path(f"/proc/{pid}/task").iterdir())


@needs_proc
@pytest.mark.parametrize("name", SIGNALS)
@pytest.mark.parametrize("ext", ["csv", "jsonl", "json", "html", "xml"])
def test_a_signal_ends_the_scan_with_a_valid_report_marked_incomplete(
    tmp_path: Path, ext: str, name: str
) -> None:
    number, code, state = SIGNALS[name]
    out = tmp_path / f"r.{ext}"
    proc, pipe = scan_blocked_on_a_fifo(tmp_path, out, workers=1)
    proc.send_signal(number)  # while the scan waits on the pipe: every image before it is done
    _, stderr = proc.communicate(timeout=60)
    os.close(pipe)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and f"facescan {state}" in stderr
    assert not list(tmp_path.glob(".r.*.tmp"))  # no temporary file left behind
    if ext == "html":
        assert f"{state} (partial report)" in out.read_text(encoding="utf-8")
        return
    if ext == "xml":  # the last test case is an error a CI system shows
        *files, last = ET.parse(out).getroot().iter("testcase")
        assert len(files) == 10 and all([c.tag for c in case] == ["failure"] for case in files)
        assert (last.get("name"), [child.tag for child in last]) == (f"scan {state}", ["error"])
        assert f"the scan was {state} after 10 files" in last[0].get("message", "")
        return
    rows = read_report(out)
    if ext in ("csv", "jsonl"):  # the last row says the report is partial
        *rows, last = rows
        assert (last["path"], last["status"], last["score"]) == ("", "incomplete", "")
        assert last["error"].startswith(f"the scan was {state} after 10 files: ")
    assert len(rows) == 10 and all(r["status"] == "ok" for r in rows)
    if ext == "json":
        summary = json.loads(out.read_text())["summary"]
        assert (summary["state"], summary["complete"], summary["interrupted"]) == (
            state, False, True,
        )  # fmt: skip


@needs_proc
def test_a_scan_interrupted_before_its_first_image_does_not_say_the_folder_is_empty(
    tmp_path: Path,
) -> None:
    proc, pipe = scan_blocked_on_a_fifo(tmp_path, tmp_path / "r.csv", workers=1, fifo_first=True)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    os.close(pipe)
    assert proc.returncode == 130, stderr
    assert "facescan interrupted: 0 files" in stderr and "no image found" not in stderr


STOPS = {  # what ends a scan while its model loads: exception, exit status, report state
    "ctrl-c": (KeyboardInterrupt, 130, "interrupted"),
    "sigterm": (Terminated, 143, "terminated"),
    "crash": (RuntimeError, 2, "failed"),
}


@pytest.mark.parametrize("stop", STOPS)
@pytest.mark.parametrize("ext", ["json", "html", "xml", "sarif", "csv", "jsonl"])
@pytest.mark.parametrize("loading", ["libraries", "model"])
def test_a_scan_stopped_while_it_sets_up_replaces_the_old_report_with_an_empty_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ext: str, stop: str, loading: str
) -> None:
    # CUDA or Ray take seconds to start: a CI job cancelled then must not leave an earlier
    # run's report in place, read as this run's.
    error, code, state = STOPS[stop]

    def stopped(*args: object) -> None:
        raise error(f"stopped while loading the {loading}")

    if loading == "model":
        monkeypatch.setattr(scan_command_module, "open_scanner", stopped)
    else:
        monkeypatch.setattr(scan_command_module, "load_threaded_libraries", stopped)
    save_image(tmp_path / "pile" / "a.png", (250, 0, 0))
    out = tmp_path / f"r.{ext}"
    out.write_text("an earlier run's report")
    assert run_in_process(tmp_path / "pile", out=out) == code
    text = out.read_text(encoding="utf-8")
    assert "earlier run" not in text and not list(tmp_path.glob(".r.*.tmp"))
    if ext == "json":
        document = json.loads(text)
        assert document["results"] == [] and document["summary"]["files"] == 0
        assert (document["summary"]["state"], document["summary"]["complete"]) == (state, False)
    elif ext == "html":
        assert f"{state} (partial report)" in text
    elif ext == "xml":
        root = ET.fromstring(text)
        properties = {p.get("name"): p.get("value") for p in root.iter("property")}
        assert properties["state"] == state and "threshold" not in properties
        (case,) = root.iter("testcase")
        assert case.get("name") == f"scan {state}" and case[0].tag == "error"
        assert (root.get("tests"), root.get("errors"), root.get("failures")) == ("1", "1", "0")
    elif ext == "sarif":
        (sarif_run,) = json.loads(text)["runs"]
        assert sarif_run["results"] == [] and not sarif_run["invocations"][0]["executionSuccessful"]
    else:
        (marker,) = read_report(out)  # CSV after its header, JSONL alone
        assert text.startswith("path,status,label" if ext == "csv" else '{"path": null')
        assert marker["status"] == "incomplete"
        assert marker["error"].startswith(f"the scan {STOPPED[state]} after 0 files")


def test_a_model_refused_while_loading_writes_no_report(tmp_path: Path) -> None:
    save_image(tmp_path / "pile" / "a.png", (250, 0, 0))
    out = tmp_path / "r.json"
    assert run_in_process(tmp_path / "pile", out=out, model=tmp_path / "none.onnx") == 2
    assert not out.exists()  # a setting to fix, said on stderr: no scan ran


def test_a_reader_that_stops_early_leaves_the_exit_status_alone(
    tmp_path: Path, red_model: Path
) -> None:
    for i in range(5):
        save_image(tmp_path / "pile" / f"{i}.png", (250, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", str(tmp_path / "pile"), "--model", str(red_model)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # `| head -0`: whatever the scan prints meets a closed pipe
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr  # flagged, as if the lines had been read
    assert "internal error" not in stderr and "flagged" in stderr


def blocked_signals(status: str) -> set[int]:
    """The signal numbers a /proc/PID/task/TID/status text says that thread blocks."""
    (mask,) = [line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")]
    return {n for n in range(1, 65) if int(mask, 16) >> (n - 1) & 1}


@needs_proc
@pytest.mark.parametrize("workers", [1, 2])
def test_only_the_main_thread_takes_a_signal(tmp_path: Path, workers: int) -> None:
    # A signal lands on any thread that does not block it; Python acts on it only when the main
    # thread is back in the interpreter, so one landing on onnxruntime's or a decode thread
    # while the main thread waits in a read made Ctrl-C hang the scan about 1 time in 20.
    proc, pipe = scan_blocked_on_a_fifo(tmp_path, tmp_path / "r.csv", workers=workers)
    try:
        others = {int(t.name): blocked_signals((t / "status").read_text()) for t in tasks(proc.pid)}
        main = others.pop(proc.pid)
        assert others, "onnxruntime and the decode pool start threads"
        assert not {signal.SIGINT, signal.SIGTERM} & main
        assert all({signal.SIGINT, signal.SIGTERM} <= blocked for blocked in others.values())
    finally:
        proc.send_signal(signal.SIGINT)
        os.close(pipe)
        proc.communicate(timeout=60)


@needs_proc
def test_a_signal_with_decode_threads_busy_still_closes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    proc, pipe = scan_blocked_on_a_fifo(tmp_path, out, workers=2)
    deadline = time.monotonic() + 60
    while len(read_report(out)) < 8 and time.monotonic() < deadline:  # the first chunk's rows
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    os.close(pipe)  # the decode thread reading the pipe gets its end and the pool can stop
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert 8 <= len(read_report(out)) <= 11 and "Traceback" not in stderr


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_every_report_format_follows_the_umask(tmp_path: Path, red_model: Path, umask: int) -> None:
    save_image(tmp_path / "pile" / "a.png", (200, 0, 0))
    for ext in ("csv", "json", "jsonl", "html"):
        out = tmp_path / f"r.{ext}"
        command = [
            sys.executable,
            "-m",
            "scanner",
            str(tmp_path / "pile"),
            "--model",
            str(red_model),
        ]
        done = subprocess.run(
            [*command, "--out", str(out), "-q"],
            preexec_fn=lambda: os.umask(umask),  # noqa: PLW1509 (the child's own umask)
            capture_output=True,
            text=True,
        )
        assert done.returncode == 1, done.stderr
        assert out.stat().st_mode & 0o777 == 0o666 & ~umask, ext


def test_an_unreadable_file_named_on_the_command_line_is_an_error_row(
    tmp_path: Path, red_model: Path
) -> None:
    save_image(tmp_path / "good.png", (200, 0, 0))
    locked = save_image(tmp_path / "noperm.png", (0, 0, 200))
    locked.chmod(0)
    command = [sys.executable, "-m", "scanner", "good.png", "noperm.png", "--model", str(red_model)]
    command += ["--out", "r.csv"]
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that let it
        capsh = shutil.which("capsh")
        if capsh is None:
            pytest.skip("running as root without capsh (libcap2-bin) to drop read rights")
        command = [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c",
                   " ".join(shlex.quote(c) for c in command)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # flagged good.png; noperm.png an error row
    rows = {r["path"]: r for r in read_report(tmp_path / "r.csv")}
    assert rows["good.png"]["status"] == "ok"
    assert (rows["noperm.png"]["status"], rows["noperm.png"]["error"]) == (
        "error",
        "permission denied",
    )


def test_a_fifo_or_a_device_is_one_error_row_at_once(tmp_path: Path, red_model: Path) -> None:
    """Named or inside a folder, a FIFO is never opened (the open would wait for a writer for
    ever) and /dev/zero never read (512 MiB before --max-bytes refused it). `facescan`'s
    timeout turns a hang into a failure."""
    save_image(tmp_path / "photos" / "a.png", (200, 0, 0))
    os.mkfifo(tmp_path / "photos" / "b.jpg")
    os.mkfifo(tmp_path / "named.jpg")
    done = facescan("photos", "named.jpg", "/dev/zero", "--model", red_model, "--out", "r.csv",
                    cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr  # a.png flagged, the rest error rows
    rows = {r["path"]: (r["status"], r["error"]) for r in read_report(tmp_path / "r.csv")}
    fifo = ("error", "not a regular file: a named pipe (FIFO); not read")
    assert rows == {
        "photos/a.png": ("ok", ""),
        "photos/b.jpg": fifo,
        "named.jpg": fifo,
        "/dev/zero": ("error", "not a regular file: a character device; not read"),
    }


def test_piped_lines_stay_one_per_file_and_name_it_reversibly(
    tmp_path: Path, red_model: Path
) -> None:
    names = [
        "tab\tname.png",
        "new\nline.png",
        "back\\slash.png",
        "plain.png",
    ]
    for name in names:
        save_image(tmp_path / "pile" / name, (220, 0, 0))
    done = facescan(tmp_path / "pile", "--model", red_model)
    lines = done.stdout.splitlines()
    assert len(lines) == len(names) and all(line.count("\t") == 2 for line in lines)
    assert {unescape_path(line.split("\t")[2]) for line in lines} == {
        str(tmp_path / "pile" / n) for n in names
    }


def test_every_row_names_exactly_one_file(tmp_path: Path, red_model: Path) -> None:
    folder = tmp_path / "pile"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/bytes\xff\xfe.png"
    literal = folder / "bytes\\xff\\xfe.png"  # the escape's characters, as a real name
    save_image(literal, (220, 0, 0))
    with open(raw, "wb") as f:
        f.write(png_bytes(Image.new("RGB", (8, 8), (0, 0, 220))))
    for ext in ("csv", "jsonl"):
        out = tmp_path / f"r.{ext}"
        facescan(folder, "--model", red_model, "--out", out)
        paths = [r["path"] for r in read_report(out)]
        assert len(set(paths)) == 2
        assert {os.fsencode(unescape_path(p)) for p in paths} == {raw, os.fsencode(literal)}


def test_the_rate_counts_scored_images_only(tmp_path: Path, red_model: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    done = facescan(tmp_path / "bad.jpg", "--model", red_model, "--out", tmp_path / "r.json")
    assert "1 files, 0 flagged ai, 0 real, 1 errors" in done.stderr and "(-)" in done.stderr
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["images_per_second"] == 0


@pytest.mark.parametrize("quiet", [[], ["-q"]])
def test_a_folder_without_images_warns(tmp_path: Path, red_model: Path, quiet: list[str]) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no photos here")
    done = facescan(tmp_path / "empty", "--model", red_model, *quiet)
    assert done.returncode == 0  # nothing flagged: an empty upload folder is not an error
    assert f"warning: no image found in {tmp_path / 'empty'}" in done.stderr  # -q or not


def test_ray_engine_without_ray_says_how_to_install_it(tmp_path: Path, red_model: Path) -> None:
    save_image(tmp_path / "a.png", (0, 0, 0))
    code = (
        "import sys\nsys.modules['ray'] = None  # as if Ray were not installed\n"
        "from scanner.cli import main\nsys.argv = ['facescan', *sys.argv[1:]]\nmain()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "a.png"), "--model", str(red_model),
         "--engine", "ray"], capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--engine ray needs Ray: pip install 'facescan[ray]'" in done.stderr
    assert "internal error" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml", "--out", "r.csv"], "--format 'xml': choose from csv"),
        (["--out", "-"], "--out -: reports go to files"),
        (["--batch-size", "0"], "--batch-size must be at least 1 (got 0)"),
        (["--workers", "0"], "--workers must be at least 1 (got 0)"),
        (["--threshold", "1.5"], "--threshold must be in 0..1"),
        (["--shard", "3/2"], "--shard 3/2: I must be in 1..N"),
    ],
)
def test_bad_options_name_the_option(
    tmp_path: Path, red_model: Path, args: list[str], message: str
) -> None:
    save_image(tmp_path / "a.png", (0, 0, 0))
    done = facescan("a.png", "--model", red_model, *args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "-").exists()


def words(text: str) -> str:
    """The text without whitespace: help wraps lines (also after a hyphen) as it likes."""
    return "".join(text.split())


def test_help_shows_every_options_help_text_whole() -> None:
    # Help is plain text: rich markup used to eat "[default: ...]", "facescan[ray]" and more.
    import typer.main

    from scanner.cli import app

    group = typer.main.get_command(app)
    shown = words(facescan("--help").stdout)
    for command_name, command in group.commands.items():
        own = words(facescan(command_name, "--help").stdout)
        for param in command.params:
            help_text = getattr(param, "help", None)
            if help_text:
                assert words(help_text) in own, (command_name, param.name)
                if command_name == "scan":
                    assert words(help_text) in shown, param.name
    assert words("Usage: facescan [OPTIONS] [PATH...]") in shown and "facescan[ray]" in shown


@pytest.mark.parametrize(
    ("code", "status", "stderr"), [("0", 0, ""), ("None", 0, ""), ("3", 3, ""), ("'no'", 1, "no\n")]
)
def test_the_quick_exit_keeps_the_status_the_output_and_the_atexit_handlers(
    code: str, status: int, stderr: str
) -> None:
    program = (
        "import atexit, sys\nfrom scanner.cli import exit_now\n"
        "atexit.register(print, 'handler ran')\nsys.stdout.write('buffered')\n"
        f"exit_now({code})"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (status, "bufferedhandler ran\n", stderr)


def test_dash_h_is_help_and_the_implied_scan_is_called_facescan(tmp_path: Path) -> None:
    assert facescan("-h").stdout == facescan("--help").stdout != ""
    assert facescan(tmp_path, "-h").stdout.startswith("Usage: facescan [OPTIONS] [PATH...]")
    assert facescan("serve", "-h").stdout.startswith("Usage: facescan serve [OPTIONS]")
    implied = facescan(tmp_path, "--no-such-option").stderr  # the usage line is what was typed
    assert implied.startswith("Usage: facescan [OPTIONS]") and "Try 'facescan --help'" in implied
    named = facescan("scan", tmp_path, "--no-such-option").stderr
    assert named.startswith("Usage: facescan scan [OPTIONS]") and "'facescan scan --help'" in named


def test_the_command_list_gives_each_summary_whole() -> None:
    import typer.main

    from scanner.cli import app
    from scanner.cli_options import summary

    shown = facescan("--help").stdout
    listed = shown[shown.index("Commands (facescan COMMAND --help for each)") :]
    for command in typer.main.get_command(app).commands.values():  # type: ignore[attr-defined]
        assert words(summary(command)) in words(listed)
    assert "..." not in listed and words("(needs facescan[serve]).") in words(listed)
