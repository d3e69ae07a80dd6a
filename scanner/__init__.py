"""facescan scanner: find AI-generated face images with an ONNX model.

    from scanner import Scanner
    for result in Scanner().scan(["photos/"]):
        print(result.path, result.label, result.score)

Heavy modules load on first use, so `facescan --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Scanner", "ScanResult", "__version__"]

if TYPE_CHECKING:
    from scanner.results import ScanResult
    from scanner.scan import Scanner


def __getattr__(name: str) -> Any:
    if name == "Scanner":
        from scanner.scan import Scanner

        return Scanner
    if name == "ScanResult":
        from scanner.results import ScanResult

        return ScanResult
    raise AttributeError(f"module 'scanner' has no attribute {name!r}")
