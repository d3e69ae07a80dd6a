"""Every facescan rev the docs name resolves in this repository: the pre-commit config's `rev:`
and the CI examples' `facescan@REV` install sources. A rev that names nothing (the `v0.1.0` tag
the docs once gave, which was never made) fails `pre-commit run` with "pathspec ... did not
match"; one that resolves but predates the hook definition runs another hook than the docs
describe."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from commands import REPO, require_history

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

# `rev: X` of a pre-commit config; `facescan@X` or `facescan.git@X` of a pip install source.
REV = re.compile(r"^\s*rev:\s*([^\s#]+)|facescan(?:\.git)?@([\w.\-/]+)", re.M)


def documents() -> list[Path]:
    """The README and everything under docs/ that is text: the examples' files included."""
    docs = sorted(p for p in (REPO / "docs").rglob("*") if p.suffix in {".md", ".yml", ".yaml"})
    return [REPO / "README.md", *docs]


def documented_revs() -> dict[str, list[str]]:
    """Each rev the docs name, and the files naming it."""
    found: dict[str, list[str]] = {}
    for path in documents():
        for match in REV.finditer(path.read_text(encoding="utf-8")):
            rev = match.group(1) or match.group(2)
            found.setdefault(rev, []).append(str(path.relative_to(REPO)))
    return found


def git_out(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)


def test_the_docs_name_their_revs() -> None:
    revs = documented_revs()
    named = [name for names in revs.values() for name in names]
    # docs/ci.md's pre-commit config and its two CI jobs, and docs/ci's copies of the jobs
    assert len(named) >= 5, revs
    assert len(revs) == 1, f"the docs pin facescan at more than one rev: {revs}"


@pytest.mark.parametrize("rev", sorted(documented_revs()))
def test_a_documented_rev_is_a_commit_of_this_repository_with_its_hook(rev: str) -> None:
    require_history()
    resolved = git_out("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    assert resolved.returncode == 0, f"{rev} (in {documented_revs()[rev]}) names no commit here"
    ancestor = git_out("merge-base", "--is-ancestor", rev, "HEAD")
    assert ancestor.returncode == 0, f"{rev} is not in the history of the checked-out commit"
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: pip install -e '.[dev]'")
    pinned = yaml.safe_load(git_out("show", f"{rev}:.pre-commit-hooks.yaml").stdout)
    current = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert pinned == current, f"the hook at {rev} is not the one described: move the pin"
