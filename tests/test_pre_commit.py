"""The pre-commit hook (`.pre-commit-hooks.yaml`) as a team uses it, offline.

pre-commit installs a `language: python` hook by `pip install .` of the hook's repository into
a fresh virtualenv. With no network, pip may not fetch facescan's dependencies, so the tests
install facescan itself from this tree (`PIP_NO_INDEX`, `PIP_NO_DEPS`, no build isolation)
and let the hook's environment import the dependencies already installed here (`PYTHONPATH`
set to this interpreter's site-packages, which holds no `scanner`: the hook runs the copy
pre-commit installed). Everything else is pre-commit's own path: reading the manifest,
building the environment, picking the staged files, running the hook, blocking. One test
leaves the docs' `rev` as written and points `repo` at a clone of this repository, so the pinned
commit is the one fetched and installed.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from commands import (
    GIT_ENV,
    REPO,
    doc_blocks,
    facescan_on_path,
    git,
    require_history,
    snapshot,
)
from images import generated_png

from scanner.walk import IMAGE_EXTENSIONS

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: pip install -e '.[dev]'")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]


def pre_commit_installed() -> bool:
    found = subprocess.run([sys.executable, "-m", "pre_commit", "--version"], capture_output=True)
    return found.returncode == 0


needs_pre_commit = pytest.mark.skipif(
    not pre_commit_installed(), reason="pre-commit is not installed: pip install -e '.[dev]'"
)


def offline_env(pre_commit_home: Path) -> dict[str, str]:
    """The environment pre-commit runs in, offline (the module's docstring says how)."""
    return {
        **os.environ,
        "PRE_COMMIT_HOME": str(pre_commit_home),
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip reads 0 as "do not isolate the build"
        # so the build backend must be there: virtualenv seeds its own setuptools (Python 3.12
        # and later get none by default).
        "VIRTUALENV_SETUPTOOLS": "bundle",
        "PYTHONPATH": os.pathsep.join(site.getsitepackages()),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, dict]]:
    """This tree as a hook repository, its rev, and the environment pre-commit runs in (one
    PRE_COMMIT_HOME for the module: the hook's environment is built once)."""
    root = tmp_path_factory.mktemp("hooks")
    rev = snapshot(root / "facescan")
    yield root / "facescan", rev, offline_env(root / "cache")


def project(folder: Path, files: dict[str, bytes]) -> Path:
    """A git repository with `files` staged."""
    folder.mkdir()
    git("init", "-q", cwd=folder)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    git("add", "-A", cwd=folder)
    return folder


def pre_commit(*args: object, cwd: Path, env: dict) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pre_commit", *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_hook_picks_exactly_the_scanners_image_extensions() -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    pattern = re.compile(hook["files"])
    names = [f"a{ext}" for ext in IMAGE_EXTENSIONS] + [
        f"b{ext.upper()}" for ext in IMAGE_EXTENSIONS
    ]
    assert all(pattern.search(name) for name in names)
    for other in ("logo.svg", "notes.txt", "a.png.txt", "photo.jpg.bak", "heic"):
        assert not pattern.search(other), other
    assert hook["entry"] == "facescan" and hook["language"] == "python"


@needs_pre_commit
def test_try_repo_blocks_a_flagged_image_and_passes_a_clean_one(
    tmp_path: Path, hook_repo: tuple[Path, str, dict], clean_png: bytes
) -> None:
    repo, rev, env = hook_repo
    files = {"clean.png": clean_png, "notes.txt": b"not an image, never passed to facescan\n"}
    clean = project(tmp_path / "clean", files)
    passed = pre_commit("try-repo", repo, "facescan", "--ref", rev, cwd=clean, env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"facescan \(AI-generated faces\)\.+Passed", passed.stdout)
    flagged = project(tmp_path / "flagged", {**files, "generated.png": generated_png()})
    blocked = pre_commit("try-repo", repo, "facescan", "--ref", rev, "-v", cwd=flagged, env=env)
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "Failed" in blocked.stdout and "exit code: 1" in blocked.stdout
    assert "\tai\tgenerated.png" in blocked.stdout  # facescan's flagged line, named
    assert "2 files, 1 flagged" in blocked.stdout  # the text file was never handed over
    assert "/py_env-" in blocked.stdout  # the model inside the facescan pre-commit installed


@needs_pre_commit
def test_the_readme_config_blocks_only_what_the_baseline_does_not_hold(
    tmp_path: Path, hook_repo: tuple[Path, str, dict], clean_png: bytes
) -> None:
    """The docs' .pre-commit-config.yaml, its repo pointed at this tree, installed as a git
    hook: a team adopts facescan on a repository that already holds a flagged image (recorded
    in the baseline as pending), then someone commits a new one."""
    repo, rev, env = hook_repo
    settings = documented_config()
    settings["repos"][0].update(repo=str(repo), rev=rev)
    work = project(tmp_path / "team", {"old.png": generated_png(), "clean.png": clean_png})
    (work / ".pre-commit-config.yaml").write_text(yaml.safe_dump(settings))
    env = {**env, **GIT_ENV, "PATH": f"{facescan_on_path(tmp_path / 'bin').parent}:{env['PATH']}"}
    baseline = subprocess.run(
        ["facescan", "baseline", "create", "facescan-baseline.json", "."], cwd=work, env=env
    )
    assert baseline.returncode == 0
    assert pre_commit("install", cwd=work, env=env).returncode == 0
    git("add", "-A", cwd=work)
    adopted = commit(work, env, "adopt facescan")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr  # old.png is pending
    (work / "new.png").write_bytes(generated_png((0, 0, 10)))
    git("add", "new.png", cwd=work)
    blocked = commit(work, env, "add a generated face")
    assert blocked.returncode != 0 and "new.png" in blocked.stdout + blocked.stderr
    assert git("log", "--format=%s", cwd=work).split("\n")[0] == "adopt facescan"


@needs_pre_commit
def test_the_documented_config_runs_at_its_documented_rev(tmp_path: Path, clean_png: bytes) -> None:
    """The docs' config with its `rev` as written (only `repo` pointed at a clone of this
    repository): pre-commit fetches that commit, installs its facescan and runs the hook."""
    config = documented_config()
    require_history()
    clone = tmp_path / "facescan"
    git("clone", "-q", "--no-checkout", REPO, clone, cwd=tmp_path)
    config["repos"][0]["repo"] = str(clone)
    work = project(tmp_path / "team", {"clean.png": clean_png, "new.png": generated_png()})
    (work / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    (work / "facescan-baseline.json").write_text('{"entries": {}, "facescan_baseline": 1}\n')
    env = offline_env(tmp_path / "cache")
    passed = pre_commit("run", "--files", "clean.png", cwd=work, env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"facescan \(AI-generated faces\)\.+Passed", passed.stdout)
    blocked = pre_commit("run", "--files", "clean.png", "new.png", cwd=work, env=env)
    assert blocked.returncode == 1 and "new.png" in blocked.stdout, blocked.stdout


def documented_config() -> dict:
    """The docs' .pre-commit-config.yaml, parsed."""
    (config,) = [text for lang, text in doc_blocks("docs/ci.md") if "repos:" in text]
    return yaml.safe_load(config)


def commit(work: Path, env: dict, message: str) -> subprocess.CompletedProcess[str]:
    """`git commit`, which runs the installed pre-commit hook."""
    command = ["git", "commit", "-q", "-m", message]
    return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
