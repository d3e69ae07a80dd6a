"""Running `facescan` as a user does (a scan, or a server), and reading its reports back (tests
only)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from scanner.testing.served import Served  # noqa: F401 (the tests' import)


def facescan(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "scanner", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120)


def read_report(path: Path) -> list[dict[str, str]]:
    """Rows of any report format, with CSV's formula guard undone and cells as text."""
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            row["path"] = row["path"][1:] if row["path"].startswith("'") else row["path"]
        return rows
    if path.suffix == ".jsonl":
        raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    else:
        raw = json.loads(path.read_text(encoding="utf-8"))["results"]
    return [{k: _text(v) for k, v in row.items()} for row in raw]


def _text(value: object) -> str:
    """A JSON value as the CSV report writes it."""
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


REPO = Path(__file__).resolve().parent.parent


def snapshot(dest: Path) -> str:
    """This working tree as it is now (uncommitted and untracked files too, ignored ones not),
    committed in a fresh repository at `dest`, as pre-commit installs a hook from; its rev."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO)
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # not a tracked file deleted in the working tree
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    git("init", "-q", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "snapshot", cwd=dest)
    return git("rev-parse", "HEAD", cwd=dest).strip()


def sarif_errors(document: object) -> list[str]:
    """What the SARIF 2.1.0 schema (tests/data, see its README) finds wrong in `document`."""
    import jsonschema

    schema_file = REPO / "tests" / "data" / "sarif-schema-2.1.0.json"
    assert hashlib.sha256(schema_file.read_bytes()).hexdigest() == SARIF_SCHEMA_SHA256
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(document)]


SARIF_SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


def run_in_process(*paths: object, **options: Any) -> int:
    """`facescan` in this process (no interpreter start-up): the exit status of the command
    line's options (named as its parameters), mapped as the command line maps them."""
    from scanner.cli_options import scan_settings
    from scanner.command import run
    from scanner.options import ScanOptions
    from scanner.source import Source

    named = {k: options.pop(k) for k in SOURCE_OPTIONS & set(options)}
    source = Source.of(map(str, paths), **named)
    return run(ScanOptions(scan_settings(options), source, **options))


SOURCE_OPTIONS = {"files_from", "null", "exclude", "follow_symlinks", "shard"}


def facescan_on_path(folder: Path) -> Path:
    """A `facescan` executable in `folder` that runs this tree's scanner with this Python (the
    console script installed in the environment may belong to another checkout)."""
    folder.mkdir(parents=True, exist_ok=True)
    tree = Path(__file__).resolve().parent.parent
    script = folder / "facescan"
    script.write_text(
        f'#!/bin/sh\nPYTHONPATH="{tree}${{PYTHONPATH:+:$PYTHONPATH}}" '
        f'exec "{sys.executable}" -m scanner "$@"\n'
    )
    script.chmod(0o755)
    return script


# git as a throwaway user that no configuration of this machine can change.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: object, cwd: Path) -> str:
    """Run git in `cwd` (GIT_ENV); its output."""
    done = subprocess.run(
        ["git", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def require_history() -> None:
    """Skip where this tree carries no git history to resolve the docs' pinned rev in."""
    import pytest

    def git_says(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)

    if git_says("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout: no history to resolve the docs' revs in")
    if git_says("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("a shallow clone may lack the docs' pinned commit: git fetch --unshallow")


def doc_blocks(page: str) -> list[tuple[str, str]]:
    """The fenced code blocks of a page of the docs (`docs/ci.md`), in order: (language, text)."""
    text = (REPO / page).read_text(encoding="utf-8")
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.S | re.M)
