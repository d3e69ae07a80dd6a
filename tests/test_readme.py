"""Every code block of the README and docs/*.md that can run, runs: Python blocks as they are,
and each `facescan` / `facescan-train` command line of the shell blocks, in a folder laid out as
the pages assume (photos/, face.jpg, my.onnx, ...).

Lines that cannot run here are left out by rule, never by hand: installation and build steps
(`pip`, `make`), cluster set-up (`ray start`), `[...]` option sketches, and commands that need a
trained run folder or a GPU (`facescan-train train|evaluate|export`, `--provider cuda`): the
trainer's tests run those commands on generated data. A `--c2pa-trust` line needs the
[provenance] extra (and cryptography to make its trust list): without them it is skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, build_red_model, save_image

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
NOT_HERE = re.compile(
    r"^(pip|make|ray start|python3? -m venv)\b|\[--|"
    r"facescan-train (train|evaluate|export)\b|--provider cuda|facescan serve\b"
)


def blocks(language: str) -> list[str]:
    """The `language` blocks of every page, README first."""
    return [
        body
        for page in PAGES
        for lang, body in FENCE.findall(page.read_text("utf-8"))
        if lang == language
    ]


def command_lines() -> list[str]:
    """The shell blocks' facescan commands (comments dropped, continuation lines joined)."""
    lines = []
    for body in blocks("sh"):
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith(("facescan ", "facescan-train ")) and not NOT_HERE.search(line):
                lines.append(line)
    return lines


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with what the pages' examples name: photos, a model, a tiny data set."""
    root = tmp_path_factory.mktemp("readme")
    for i in range(3):
        save_image(root / "photos" / f"red{i}.jpg", (220, 20, 20), size=64)
        save_image(root / "photos" / f"blue{i}.png", (20, 20, 220), size=64)
    save_image(root / "photos" / "thumbs" / "t.jpg", (220, 20, 20))
    save_image(root / "face.jpg", (200, 150, 120), size=64)
    save_image(root / "a.jpg", (220, 20, 20))
    save_image(root / "b.png", (20, 20, 220))
    save_image(root / "more" / "c.jpg", (20, 220, 20))
    save_image(root / "uploads" / "u.jpg", (220, 20, 20))
    for label, colour in (("real", (20, 20, 200)), ("fake", (200, 20, 20))):
        for i in range(6):
            save_image(root / "DATA" / label / f"{i}.png", (colour[0] - i, 20, colour[2]))
    build_red_model(root / "my.onnx")
    (root / "models").mkdir()
    shutil.copy(root / "my.onnx", root / "models" / "mine.onnx")
    return root


def test_the_pages_have_runnable_blocks() -> None:
    assert blocks("python") and len(command_lines()) >= 6
    readme = FENCE.findall(PAGES[0].read_text("utf-8"))
    assert any(line.startswith("facescan ") for _, body in readme for line in body.splitlines())


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_block_runs(sandbox: Path, index: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", blocks("python")[index]],
        cwd=sandbox,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "an example should show what it computes"


def write_trust_list(folder: Path) -> None:
    """The `c2pa-trust.pem` the --c2pa-trust example names: a throwaway root CA."""
    from scanner.testing.c2pa_signing import make_pki, require_signing

    require_signing()
    (folder / "c2pa-trust.pem").write_text(make_pki().ca_pem)


@pytest.mark.parametrize("line", command_lines())
def test_shell_command_runs(sandbox: Path, line: str) -> None:
    if line.startswith("facescan-train"):
        pytest.importorskip(
            "matplotlib", reason="the trainer needs its [train] extra: pip install facescan[train]"
        )
    bin_dir = Path(sys.executable).parent  # the console scripts of this environment
    if "--c2pa-trust" in line:
        write_trust_list(sandbox)
    done = subprocess.run(
        line,
        shell=True,
        cwd=sandbox,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(sandbox)},
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: something was flagged
    for failure in ("Traceback", "internal error", "no such file", "not found"):
        assert failure not in done.stderr, done.stderr


def test_the_options_table_lists_every_scan_option() -> None:
    # A new user looked for --thumbnails there and did not find it.
    import typer

    from scanner.cli import app

    scan = typer.main.get_command(app).commands["scan"]  # type: ignore[attr-defined]
    options = {name for param in scan.params for name in param.opts if name.startswith("--")}
    rows = re.findall(r"^\| `([^`]+)`", (REPO / "docs" / "options.md").read_text("utf-8"), re.M)
    listed = {name for row in rows for name in re.findall(r"--[a-z0-9-]+", row)}
    assert options - {"--help"} <= listed, sorted(options - listed)
