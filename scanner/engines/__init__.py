"""The engines, found by name: every module of this package that defines `ENGINE` (the module's
name is the `--engine` value). Names are listed without importing the modules, so `--help`
never pays for numpy, onnxruntime or Ray; an engine module is imported when it is chosen.
"""

from __future__ import annotations

import importlib
import pkgutil

from scanner.engines.base import Engine, EngineSettings
from scanner.errors import UsageError

__all__ = ["Engine", "EngineSettings", "create", "names"]


def names() -> list[str]:
    """Every engine's name, `local` first (the default)."""
    found = [m.name for m in pkgutil.iter_modules(__path__) if m.name != "base"]
    return sorted(found, key=lambda name: (name != "local", name))


def create(name: str, settings: EngineSettings) -> Engine:
    """The engine called `name`, started with `settings` (its model session loaded)."""
    if name not in names():
        raise UsageError(f"--engine {name!r}: choose from {', '.join(names())}")
    module = importlib.import_module(f"{__name__}.{name}")
    engine: Engine = module.ENGINE(settings)
    return engine
