"""Ctrl-C at any moment of a `facescan` run: exit 130, no traceback, and a report that is this
run's (marked incomplete unless the scan had finished), never the previous one left in place."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import build_red_model, save_image

from scanner.errors import Terminated

EARLIER = '{"an earlier run\'s report": true}'
# From the moment Python runs the program: the imports, the model loading, the scan and the
# exit of a short scan are each hit by some delay, on a fast machine as on a slow one (where
# the early ones are).
DELAYS = [i * 0.02 for i in range(16)]
# `python -m scanner` as the console script runs it, once Python has started: it says so on
# stdout first (the scan writes nothing there with --out), so that the test can wait for it.
PROGRAM = """
import runpy, sys
print("started", flush=True)
sys.argv[0] = "facescan"
runpy.run_module("scanner", run_name="__main__", alter_sys=True)
"""
# facescan's modules that load before its signal handling starts (scanner/__main__.py's
# imports): a traceback through them alone is Python's, the signal landing before facescan ran.
# Their module code, and the package's lazy-name hook, which `from scanner import stops` asks
# for `stops` before importing it.
FIRST_MODULES = ("__init__", "__main__", "stops", "errors", "version")
BEFORE_FACESCAN = {(m, "<module>") for m in FIRST_MODULES} | {("__init__", "__getattr__")}


@pytest.fixture
def pile(tmp_path: Path) -> Path:
    build_red_model(tmp_path / "red.onnx")
    for i in range(40):
        save_image(tmp_path / "pile" / f"{i:02}.png", (i * 6, 0, 0))
    return tmp_path / "pile"


def start(tmp_path: Path) -> subprocess.Popen[str]:
    """`facescan` on 40 small images with the tiny red model, into r.json over an earlier
    report, once Python has started; Ctrl-C at its default (a background job's is ignored)."""
    out = tmp_path / "r.json"
    out.write_text(EARLIER)
    options = ["--model", tmp_path / "red.onnx", "--out", out, "--workers", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, tmp_path / "pile", *map(str, options), "--batch-size=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None and proc.stdout.readline() == "started\n"
    return proc


@pytest.mark.slow
def test_ctrl_c_at_any_moment_ends_with_130_and_this_runs_report(
    tmp_path: Path, pile: Path
) -> None:
    out = tmp_path / "r.json"
    for delay in DELAYS:
        proc = start(tmp_path)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)  # nothing, if the scan is already over
        _, stderr = proc.communicate(timeout=120)
        print(f"{delay:.2f} s: {outcome(proc.returncode, stderr, out)}")  # pytest -s shows them


def outcome(status: int, stderr: str, out: Path) -> str:
    """Who handled the signal, each checked: `facescan` (130, no traceback, this run's report,
    valid), `python` (it came before facescan's first line: the earlier report untouched), or
    `none` (the scan was over first: a complete report)."""
    text = out.read_text(encoding="utf-8")
    if text == EARLIER:
        assert status in (-signal.SIGINT, 1), stderr  # killed by it, or Python's own start-up
        frames = re.findall(r"scanner[/\\](\w+)\.py\", line \d+, in (\S+)", stderr)
        assert all(frame in BEFORE_FACESCAN for frame in frames), stderr
        return "python"
    summary = json.loads(text)["summary"]
    assert not list(out.parent.glob(".r.*.tmp"))
    if status in (0, 1):
        assert summary["state"] == "complete"
        return "none"
    assert status == 130 and "Traceback" not in stderr, stderr
    assert summary["state"] in ("interrupted", "complete"), summary  # complete: it was over
    return "facescan"


# A Ctrl-C that landed in the package's lazy-name hook, before scanner.stops was imported (seen
# once in 13 runs of this file): Python's, not a facescan traceback.
IN_THE_LAZY_HOOK = """Traceback (most recent call last):
  File "<string>", line 5, in <module>
  File "<frozen runpy>", line 226, in run_module
  File "/repo/scanner/__main__.py", line 4, in <module>
    from scanner import stops
  File "<frozen importlib._bootstrap>", line 1229, in _handle_fromlist
  File "/repo/scanner/__init__.py", line 38, in __getattr__
    def __getattr__(name: str) -> Any:
KeyboardInterrupt
"""


def test_a_signal_before_facescan_ran_is_pythons_and_one_after_is_not(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text(EARLIER)
    assert outcome(-signal.SIGINT, IN_THE_LAZY_HOOK, out) == "python"
    later = IN_THE_LAZY_HOOK.replace("__init__.py", "scan.py").replace("__getattr__", "scan")
    with pytest.raises(AssertionError):  # a traceback from facescan's own code fails the test
        outcome(-signal.SIGINT, later, out)


@pytest.fixture
def foreground_handlers() -> Iterator[None]:
    """Python's handlers as a foreground process starts with, whatever started this one (a
    background job starts with SIGINT ignored); the test's own are put back after it."""
    from scanner import stops

    previous = {n: signal.getsignal(n) for n in stops.SIGNALS}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for number, handler in previous.items():
        signal.signal(number, handler)


def test_a_held_signal_is_raised_where_the_command_takes_it(
    monkeypatch: pytest.MonkeyPatch, foreground_handlers: None
) -> None:
    from scanner import stops

    monkeypatch.setattr(stops, "held", [])
    stops.hold()
    signal.raise_signal(signal.SIGTERM)  # recorded, not raised
    assert stops.held == [signal.SIGTERM] and stops.exit_status(0) == 143
    with pytest.raises(Terminated), stops.raised():
        pytest.fail("a held signal is raised on entering")
    assert stops.held == [] and stops.exit_status(1) == 1
    assert signal.getsignal(signal.SIGINT) is stops.record  # held again on leaving


def test_a_signal_ignored_when_facescan_started_stays_ignored(foreground_handlers: None) -> None:
    """A shell starts a background job with SIGINT ignored: Ctrl-C in that terminal must not
    stop it, so hold() takes SIGTERM only."""
    from scanner import stops

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stops.hold()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is stops.record
