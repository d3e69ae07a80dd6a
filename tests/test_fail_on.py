"""`--fail-on`: which findings fail a CI job, with exit codes that keep their meanings."""

from __future__ import annotations

from pathlib import Path

import pytest
from commands import facescan, run_in_process
from conftest import save_image

from scanner.errors import UsageError
from scanner.policy import parse_fail_on


def pile(folder: Path, red: bool, bad: bool) -> Path:
    save_image(folder / "blue.png", (0, 0, 255))
    if red:
        save_image(folder / "red.png", (255, 0, 0))
    if bad:
        (folder / "bad.jpg").write_text("not an image")
    return folder


@pytest.mark.parametrize(
    ("red", "bad", "fail_on", "code"),
    [
        (False, False, None, 0),
        (True, True, None, 1),  # the default is ai,error: flagged takes precedence
        (False, True, None, 2),
        (True, False, "error", 0),  # gate on unreadable files only
        (True, True, "error", 2),
        (False, True, "ai", 0),  # gate on AI faces, only warn on unreadable files
        (True, True, "ai", 1),
        (True, True, "none", 0),
        (True, True, " AI , Error ", 1),  # spaces and case forgiven
    ],
)
def test_fail_on_picks_what_fails(
    tmp_path: Path, red_model: Path, red: bool, bad: bool, fail_on: str | None, code: int
) -> None:
    folder = pile(tmp_path / "p", red, bad)
    assert run_in_process(folder, model=red_model, quiet=True, fail_on=fail_on) == code


def test_exit_zero_is_fail_on_none_and_they_cannot_contradict(
    tmp_path: Path, red_model: Path
) -> None:
    folder = pile(tmp_path / "p", red=True, bad=True)
    assert run_in_process(folder, model=red_model, quiet=True, exit_zero=True) == 0
    assert run_in_process(folder, model=red_model, quiet=True, exit_zero=True, fail_on="none") == 0
    done = facescan(folder, "--model", red_model, "--exit-zero", "--fail-on", "ai")
    assert done.returncode == 2 and "--exit-zero contradicts --fail-on ai" in done.stderr


@pytest.mark.parametrize("text", ["", "ai,warnings", "none,ai", ","])
def test_a_bad_list_says_what_is_expected(text: str) -> None:
    with pytest.raises(UsageError, match="expected a comma-separated list of ai, pending, error"):
        parse_fail_on(text)


def test_a_bad_list_is_a_usage_error_before_the_scan(tmp_path: Path, red_model: Path) -> None:
    done = facescan(pile(tmp_path, red=True, bad=False), "--model", red_model, "--fail-on", "X")
    assert done.returncode == 2 and "--fail-on 'X': expected" in done.stderr
    assert "files," not in done.stderr  # refused before anything was scanned
