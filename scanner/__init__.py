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
    from scanner.pipeline import Scanner, ScanResult


def __getattr__(name: str) -> Any:
    if name in ("Scanner", "ScanResult"):
        from scanner import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'scanner' has no attribute {name!r}")
