"""The models facescan ships, by name and precision, and which file a `--model`/`--precision`
pair names. Light (no onnxruntime, no numpy): the settings resolve the model once, before
anything loads.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from scanner.errors import InvalidModelError

# The shipped models, by the name --model takes: the default first. Each is
# models/facescan-NAME.onnx, with its int8 twin facescan-NAME-int8.onnx where that holds the fp32
# model's accuracy (models/README.md has a section on each).
SHIPPED = ("clip", "accurate", "fast", "clip-full")
PRECISIONS = ("auto", "fp32", "int8")


def default_model_path(precision: str = "auto", name: str = SHIPPED[0]) -> Path:
    """A model shipped inside the package (models/ in the source tree): `name` (the default
    one unless told), of the asked precision.

    An int8 model is shipped only when it holds the fp32 model's accuracy (models/README.md),
    so "auto" takes it when present and the fp32 model otherwise.
    """
    if precision not in PRECISIONS:
        raise InvalidModelError(f"unknown precision {precision!r}; choose from {PRECISIONS}")
    if name not in SHIPPED:
        raise InvalidModelError(f"no shipped model {name!r}; choose from {', '.join(SHIPPED)}")
    folder = models_folder()
    int8 = folder / f"facescan-{name}-int8.onnx"
    if precision == "int8" or (precision == "auto" and int8.is_file()):
        return int8
    return folder / f"facescan-{name}.onnx"


def models_folder() -> Path:
    """The folder of the shipped models (the face detector's too): the package
    `scanner.models`, which pyproject maps from the top-level models/ at install, or, where the
    source tree's scanner/ is imported without that mapping, models/ beside it. Ray workers do
    that from inside a clone: they put the driver's working directory first on sys.path, so
    they import the clone's scanner/ even when the driver runs an installed copy."""
    try:
        return Path(str(resources.files("scanner.models")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "models"


def resolve_model(model: str | os.PathLike[str] | None, precision: str = "auto") -> Path:
    """The model file to load: a shipped one (none given, or its name: `clip`, `accurate`...) of
    the asked precision, or the user's file (an existing file wins over a shipped name)."""
    if model is None or (str(model) in SHIPPED and not Path(model).is_file()):
        return default_model_path(precision, SHIPPED[0] if model is None else str(model))
    if precision != "auto":
        raise InvalidModelError("--precision picks a shipped model; it cannot apply to a file")
    return Path(model)
