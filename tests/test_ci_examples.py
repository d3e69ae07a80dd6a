"""The CI examples run: docs/ci's GitHub Actions workflow and GitLab CI job, and
docs/ci.md's commands, against a temporary repository.

What needs the CI service itself (checking out, installing facescan from PyPI, uploading) is
left out; every shell step is run as the service runs it (bash, stopping at the first failing
step), with this tree's `facescan` first on PATH and the service's variables set to the
temporary repository's commits. The files the upload steps name must then exist and parse.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from commands import (
    GIT_ENV,
    REPO,
    doc_blocks,
    facescan_on_path,
    git,
    read_report,
    sarif_errors,
)
from images import generated_png

from scanner.baseline import Baseline

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: pip install -e '.[dev]'")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]
DOCS = REPO / "docs" / "ci"
BASELINE = "facescan-baseline.json"


def shell(script: str, cwd: Path, env: dict[str, str]) -> int:
    """A CI shell step: bash, stopping at the first failing command."""
    command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]
    return subprocess.run(command, cwd=cwd, env=env, timeout=300).returncode


@pytest.fixture
def env(tmp_path: Path, clean_png: bytes) -> dict[str, str]:
    """The job's environment: this tree's facescan first on PATH, git usable."""
    bin_dir = facescan_on_path(tmp_path / "bin").parent
    return {**os.environ, **GIT_ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str], clean_png: bytes) -> tuple[Path, str]:
    """A repository whose main branch already holds two flagged images, recorded in the
    baseline (one approved by a moderator, one pending), and a branch on top; its base rev."""
    work = tmp_path / "repo"
    (work / "team").mkdir(parents=True)
    (work / "team" / "ana.png").write_bytes(generated_png((1, 0, 0)))
    (work / "team" / "old.png").write_bytes(generated_png((2, 0, 0)))
    (work / "clean.png").write_bytes(clean_png)
    git("init", "-q", "-b", "main", cwd=work)
    assert shell(f"facescan baseline create {BASELINE} .", work, env) == 0
    document = json.loads((work / BASELINE).read_text())
    ana = hashlib.sha256((work / "team" / "ana.png").read_bytes()).hexdigest()
    document["entries"][ana].update(decision="approved", reviewer="mod", note="studio photo")
    (work / BASELINE).write_text(json.dumps(document, indent=2, sort_keys=True))
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "main", cwd=work)
    base = git("rev-parse", "HEAD", cwd=work).strip()
    git("update-ref", "refs/remotes/origin/main", base, cwd=work)
    git("checkout", "-q", "-b", "change", cwd=work)
    (work / "people").mkdir()
    git("mv", "team/ana.png", "people/ana-renamed.png", cwd=work)  # keeps its decision
    (work / "notes.txt").write_text("not an image\n")
    (work / "uploads").mkdir()
    (work / "uploads" / "new clean.png").write_bytes(clean_png)
    return work, base


def propose(work: Path, generated: bool) -> None:
    """The change under review, with or without a new generated face."""
    if generated:
        (work / "uploads" / "face.png").write_bytes(generated_png((3, 0, 0)))
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "change", cwd=work)


def expand(value: str, variables: dict[str, str]) -> str:
    """A GitHub `${{ expression }}`, from the values the test gives (an unknown one fails)."""
    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: variables[m.group(1)], value)


@pytest.mark.parametrize("generated", [False, True], ids=["clean", "new-ai-face"])
def test_github_workflow(repo: tuple[Path, str], env: dict[str, str], generated: bool) -> None:
    work, base = repo
    propose(work, generated)
    workflow = yaml.safe_load((DOCS / "github-actions.yml").read_text())
    assert workflow[True] == {"pull_request": None}  # YAML 1.1 reads the key `on` as true
    steps = workflow["jobs"]["facescan"]["steps"]
    uses = {step["uses"].split("@")[0]: step for step in steps if "uses" in step}
    variables = {"github.event.pull_request.base.sha": base}
    failed = None
    for step in steps:
        if "uses" in step or step["run"].startswith("pip install"):
            continue  # the service's actions and the install: this tree stands in for them
        step_env = {k: expand(str(v), variables) for k, v in step.get("env", {}).items()}
        if shell(step["run"], work, {**env, **step_env}) != 0:
            failed = step["name"]
            break  # later steps run only with `if: always()`: the uploads
    assert failed == ("Scan the changed images" if generated else None)
    sarif_file = work / uses["github/codeql-action/upload-sarif"]["with"]["sarif_file"]
    document = json.loads(sarif_file.read_text())
    assert sarif_errors(document) == []
    results = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r
        for r in document["runs"][0]["results"]
    }
    expected = {"people/ana-renamed.png"} | ({"uploads/face.png"} if generated else set())
    assert set(results) == expected  # flagged files among the changed ones, nothing else
    assert results["people/ana-renamed.png"]["suppressions"][0]["status"] == "accepted"
    assert (work / uses["actions/upload-artifact"]["with"]["path"]).stat().st_size > 0
    assert all(uses[name]["if"] == "always()" for name in uses if "upload" in name)


@pytest.mark.parametrize("generated", [False, True], ids=["clean", "new-ai-face"])
def test_gitlab_job(repo: tuple[Path, str], env: dict[str, str], generated: bool) -> None:
    work, base = repo
    propose(work, generated)
    job = yaml.safe_load((DOCS / "gitlab-ci.yml").read_text())["facescan"]
    assert all(line.startswith("pip install") for line in job["before_script"])
    variables = {**job["variables"], "CI_MERGE_REQUEST_DIFF_BASE_SHA": base}
    codes = []
    for line in job["script"]:
        codes.append(shell(line, work, {**env, **variables}))
        if codes[-1] != 0:
            break  # GitLab stops the job at the first failing line
    assert codes == [0, 0, 1 if generated else 0]
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    cases = ET.parse(work / artifacts["reports"]["junit"]).getroot().iter("testcase")
    verdicts = {c.get("name"): [child.tag for child in c] for c in cases}
    assert verdicts.pop("people/ana-renamed.png") == ["system-out"]  # approved: passes
    assert verdicts.pop("uploads/new clean.png") == []
    assert verdicts == ({"uploads/face.png": ["failure"]} if generated else {})
    assert all((work / path).stat().st_size > 0 for path in artifacts["paths"])


def test_docs_ci_md_shows_both_workflows_as_they_are_in_docs_ci() -> None:
    blocks = [text for lang, text in doc_blocks("docs/ci.md") if lang == "yaml"]
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        assert (DOCS / name).read_text() in blocks, f"docs/ci.md and docs/ci/{name} differ"


def test_the_docs_ci_commands_run(repo: tuple[Path, str], env: dict[str, str]) -> None:
    """Every shell command of docs/ci.md, in order, in a repository like the reader's,
    exiting as documented (1 when its JSONL report holds a flagged file); its JSON example is
    a valid baseline."""
    work, _ = repo
    propose(work, generated=False)
    (work / BASELINE).unlink()  # the reader starts without one
    git("commit", "-qam", "no baseline yet", cwd=work)
    for lang, text in doc_blocks("docs/ci.md"):
        for line in text.splitlines() if lang == "sh" else ():
            code = shell(line, work, env)
            report = re.search(r"--out (\S+\.jsonl)", line)
            rows = read_report(work / report[1]) if report else []
            assert code == (1 if any(r["label"] == "ai" for r in rows) else 0), line
        if lang == "json":
            path = work / "example.json"
            path.write_text(text)
            assert Baseline.load(path).entries  # a moderator's entry, as documented
    changed = [r["path"] for r in read_report(work / "changed.jsonl")]
    assert changed == ["people/ana-renamed.png", "uploads/new clean.png"]  # the first flagged
    assert [r["path"] for r in read_report(work / "uploads.jsonl")] == ["uploads/new clean.png"]
    entries = Baseline.load(work / BASELINE).entries
    assert {e.paths for e in entries.values()} == {
        ("./people/ana-renamed.png",),
        ("./team/old.png",),
    }
    assert "<html" in (work / "review.html").read_text().lower()
