"""dposer_core is stdlib + numpy only (no torch, no bpy, no backend), imports itself only relatively
(so it also works as ``<extension>.dposer_core``), and has no import cycle."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "dposer_core"


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package."""
    out = {}
    for path in sorted(CORE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path) -> list[tuple[int, str]]:
    """(level, absolute module) of every import statement in the file (function-level ones too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(0, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found += [(node.level, f"{base}.{a.name}") for a in node.names] + [(node.level, base)]
    return found


def test_core_imports_neither_torch_nor_bpy() -> None:
    mods = sorted(_modules())
    code = textwrap.dedent(f"""
        import importlib, sys
        for m in {mods!r}:
            importlib.import_module(m)
        bad = sorted(k for k in sys.modules if k.split(".")[0] in ("torch", "bpy", "backend", "dposer_blender"))
        assert not bad, bad
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/", env=env)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_core_uses_only_stdlib_numpy_and_relative_imports() -> None:
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    for name, path in _modules().items():
        for level, mod in _imports(name, path):
            top = mod.split(".")[0]
            if level == 0:
                assert top != "dposer_core", f"{path}: absolute import of {mod} (use a relative one)"
                assert top in allowed, f"{path}: imports {mod} (dposer_core is stdlib + numpy only)"
            else:
                assert top == "dposer_core", f"{path}: relative import {mod} leaves the package"


def test_core_has_no_import_cycle() -> None:
    mods = _modules()
    graph = {name: sorted({m if m in mods else m.rpartition(".")[0] for lvl, m in _imports(name, path)
                           if m.split(".")[0] == "dposer_core"} & set(mods) - {name})
             for name, path in mods.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join(trail + [node, nxt])}"
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])
