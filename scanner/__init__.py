"""facescan scanner: find AI-generated face images with an ONNX model.

    from scanner import Scanner
    for result in Scanner().scan(["photos/"]):
        print(result.path, result.label, result.score)

Heavy modules load on first use, so `facescan --help` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from scanner.version import __version__

__all__ = ["ScanResult", "ScanSettings", "Scanner", "Source", "__version__"]

if TYPE_CHECKING:
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
        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'scanner' has no attribute {name!r}")
