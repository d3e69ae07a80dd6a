"""facescan scanner: find AI-generated face images with an ONNX model.

    from scanner import Scanner
    for result in Scanner().scan(["photos/"]):
        print(result.path, result.label, result.score)

Heavy modules load on first use, so `facescan --help` stays fast.
"""

from __future__ import annotations

from scanner.version import __version__

__all__ = ["ScanResult", "ScanSettings", "Scanner", "Source", "__version__"]

# Not typing's: `typing` is the one slow import here, and the `facescan` program imports this
# package before it can handle Ctrl-C (scanner/__main__.py, scanner/stops.py). Type checkers
# read the name as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from scanner.results import ScanResult
    from scanner.scan import Scanner
    from scanner.settings import ScanSettings
    from scanner.source import Source


# The public names, each from its module, imported when first used.
LAZY = {
    "Scanner": "scanner.scan",
    "ScanResult": "scanner.results",
    "ScanSettings": "scanner.settings",
    "Source": "scanner.source",
}


def __getattr__(name: str) -> Any:
    if name in LAZY:
        import importlib

        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'scanner' has no attribute {name!r}")
