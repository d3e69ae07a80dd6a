"""Run files written whole or not at all: a temporary file in the same folder, then os.replace;
and output folders that are not reused unless asked.

A crash, Ctrl-C or a refused check never leaves a half-written checkpoint, config or model where
a reader (export, evaluate, facescan) would take it for a finished one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from trainer.config import TrainerError


def atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """Call `write(temp)`, then rename temp over `target`. The temp file keeps the target's
    extension (Keras and onnx look at it) and sits in the same folder (os.replace is atomic only
    within one file system). If `write` raises, `target` is untouched and temp is removed."""
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    temp = Path(name)
    try:
        write(temp)
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes it private; run files are shared
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_text(target: Path, text: str) -> None:
    atomic_write(target, lambda temp: temp.write_text(text, encoding="utf-8"))


def check_out_dir(out: Path, force: bool, what: str, other: str = "") -> None:
    """Refuse to write into an existing, non-empty folder (a run or a report: the new files would
    silently replace or mix with the old ones) unless `force`; `other` names the option that
    picks another folder, where there is one."""
    if out.exists() and not out.is_dir():
        raise TrainerError(f"{what} {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        instead = f", or {other} for another folder" if other else ""
        raise TrainerError(
            f"{what} {out} exists and is not empty (pass --force to reuse it{instead})"
        )


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it
    os.umask(mask)
    return mask
