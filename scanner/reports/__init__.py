"""The report formats, found by name: every module of this package that defines `FORMATS`.

A new format is one new file here (see docs/development.md): `--format` choices,
the extension mapping and the help text all come from this registry. Modules here import only
the standard library and `scanner.reports.base` at load time, so `facescan --help` stays fast.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path
from typing import Any

from scanner.reports.base import Report, ReportError, ReportFormat

__all__ = ["Report", "ReportError", "ReportFormat", "describe", "format_for", "open_report"]


@functools.cache
def formats() -> dict[str, ReportFormat]:
    """Every format, by name, in module order."""
    found: dict[str, ReportFormat] = {}
    for module in pkgutil.iter_modules(__path__):
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        for fmt in getattr(loaded, "FORMATS", ()):
            found[fmt.name] = fmt
    return found


def describe() -> str:
    """The formats for help text: `csv (.csv): ...; json (.json): ...`."""
    return "; ".join(
        f"{f.name} ({', '.join(f.extensions)}): {f.description}" for f in formats().values()
    )


def format_for(path: Path, explicit: str | None = None) -> ReportFormat:
    """The format `--format` names, else the one `path`'s extension says."""
    known = formats()
    if explicit is not None:
        if explicit.lower() not in known:
            raise ReportError(f"--format {explicit!r}: choose from {', '.join(known)}")
        return known[explicit.lower()]
    suffix = path.suffix.lower()
    for fmt in known.values():
        if suffix in fmt.extensions:
            return fmt
    names = ", ".join(e for f in known.values() for e in f.extensions)
    raise ReportError(
        f"cannot tell the report format of {str(path)!r} from its extension: name it "
        f"{names} or pass --format {'|'.join(known)}"
    )


def open_report(path: Path, explicit: str | None, model: dict[str, Any]) -> Report:
    return format_for(path, explicit).open(path, model)
