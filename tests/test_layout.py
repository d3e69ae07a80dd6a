"""The scanner's seams hold: light modules stay light, and no module of `scanner/` imports
itself back through others (an import circle)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import scanner

PACKAGE = Path(scanner.__file__).parent


def test_the_walk_needs_no_pillow_and_the_writers_no_scanner() -> None:
    code = (
        "import sys, scanner.reports, scanner.walk\n"
        "scanner.reports.formats()  # imports every writer module\n"
        "heavy = ('PIL', 'numpy', 'onnxruntime', 'scanner.scan', 'scanner.work',"
        " 'scanner.engines', 'scanner.decode')\n"
        "print(sorted(m for m in sys.modules if m in heavy or m.startswith('PIL.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, known: set[str]) -> set[str]:
    """The scanner modules a file imports, at any depth of its code, except imports made only
    for type checking (`if TYPE_CHECKING:`), which never run."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from scanner import console` imports the module scanner.console.
            subs = {f"{node.module}.{alias.name}" for alias in node.names}
            found |= (subs & known) or {node.module}
    return {name for name in found if name in known}


def test_no_import_circle_in_the_scanner() -> None:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    graph = {name: imports(path, known) - {name} for name, path in files.items()}
    assert graph["scanner.reports.csv"] >= {"scanner.reports.base"}  # the walk sees imports

    def circle_from(node: str, trail: list[str]) -> list[str] | None:
        if node in trail:
            return trail[trail.index(node) :] + [node]
        for child in sorted(graph[node]):
            if found := circle_from(child, trail + [node]):
                return found
        return None

    for name in sorted(graph):
        assert circle_from(name, []) is None, " -> ".join(circle_from(name, []) or [])


def runtime_imports() -> dict[str, set[str]]:
    """Each scanner module's direct imports of other scanner modules, as they run."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    return {name: imports(path, known) - {name} for name, path in files.items()}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module that importing `start` imports, at any remove."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for child in graph[todo.pop()] - seen:
            seen.add(child)
            todo.append(child)
    return seen


def in_package(modules: set[str], package: str) -> set[str]:
    return {m for m in modules if m == package or m.startswith(package + ".")}


def test_each_layer_imports_only_what_is_below_it() -> None:
    """The baseline is read and written without the report writers; the service runs without
    the scan command's options; the writers name the version without the package root (and
    whatever it grows); nothing in facescan needs the test builders."""
    graph = runtime_imports()
    assert not in_package(reachable(graph, "scanner.baseline"), "scanner.reports")
    scan_cli = {"scanner.cli", "scanner.options", "scanner.baseline_cli"}
    for module in in_package(set(graph), "scanner.serve"):
        assert not reachable(graph, module) & scan_cli, module
    for module in in_package(set(graph), "scanner.reports"):
        assert "scanner" not in reachable(graph, module), module
    for module in set(graph) - in_package(set(graph), "scanner.testing"):
        assert not in_package(graph[module], "scanner.testing"), module


def test_only_the_settings_build_the_engine_settings() -> None:
    """The engine gets `ScanSettings.engine` as it is: no module rebuilds it field by field."""
    builders = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("EngineSettings"):
                builders.add(module_name(path))
    assert builders == {"scanner.settings"}
