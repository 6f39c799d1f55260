"""The import structure the design asks for, read from the source: it fails the day a circle or a wrong arrow appears.

- no two modules import each other, directly or round a loop (imports inside
  functions and under TYPE_CHECKING count: they tie the modules all the same);
- the core (everything but ``_qt`` and napari's hooks) imports neither Qt nor napari;
- the ground floor (errors, paths, jobs, machine) imports no other module of the
  package but each other, and neither torch nor Qt at module level;
- the dock's panels import neither each other nor the dock: they listen to the review state.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "napari_tumorseg"
NAPARI_HOOKS = {"_reader", "_writer", "_sample_data", "_layers"}
GROUND_FLOOR = {"errors", "paths", "jobs", "machine"}
PANELS = {"case_panel", "segment_panel", "correct_panel", "adapt_panel", "export_panel"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(name: str, top_level_only: bool = False) -> set[str]:
    """Every module ``name`` imports (package modules resolved, others by their top name)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from . import x` may name a module; `from .m import f` names a function of m.
            candidates = [f"{base}.{alias.name}" for alias in node.names]
            found.update(c for c in candidates if c in MODULES)
            if base and not any(c in MODULES for c in candidates):
                found.add(base)
    return found


def internal_graph() -> dict[str, set[str]]:
    return {name: {m for m in imports_of(name) if m in MODULES and m != name} for name in MODULES}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    assert circles(internal_graph()) == []


def test_the_circle_finder_finds_a_circle():
    # The check above would pass vacuously if it could not see a loop.
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_core_imports_neither_qt_nor_napari():
    for name in MODULES:
        short = name.split(".")
        if "_qt" in short or short[-1] in NAPARI_HOOKS:
            continue
        third_party = {m.split(".")[0] for m in imports_of(name)}
        assert not third_party & {"qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui"}, name


def test_the_ground_floor_stands_on_nothing_heavy():
    for short in GROUND_FLOOR:
        name = f"napari_tumorseg.{short}"
        internal = {m for m in imports_of(name) if m.startswith("napari_tumorseg")}
        assert internal <= {f"napari_tumorseg.{other}" for other in GROUND_FLOOR}, (name, internal)
        top = {m.split(".")[0] for m in imports_of(name, top_level_only=True)}
        assert not top & {"torch", "qtpy", "napari", "numpy"}, (name, top)


def test_panels_import_neither_each_other_nor_the_dock():
    for panel in PANELS:
        imported = {m.rpartition(".")[2] for m in imports_of(f"napari_tumorseg._qt.{panel}")
                    if m.startswith("napari_tumorseg._qt.")}
        assert not imported & (PANELS | {"dock"}), (panel, imported)


def test_torch_loads_with_passive_openmp_waiting_whichever_module_imports_it_first():
    # libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when torch is imported: `bench-adapt` imported
    # torch through `adapt` before `models` set it, and spun its idle threads (twice the wall time at load 4);
    # without the short spin every parallel region wakes its threads through the kernel (1.4x slower idle).
    import os
    import subprocess
    import sys

    probe = (
        "import builtins, os, sys\n"
        "real = builtins.__import__\n"
        "seen = []\n"
        "def hook(name, *args, **kwargs):\n"
        "    if name.split('.')[0] == 'torch' and 'torch' not in sys.modules and not seen:\n"
        "        seen.append((os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT')))\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = hook\n"
        "import napari_tumorseg.adapt.bench, napari_tumorseg.adapt.run\n"
        "print(seen)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[('PASSIVE', '1000')]"
