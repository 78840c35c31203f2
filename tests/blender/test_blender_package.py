"""Packaging: build -> validate -> install -> enable -> use -> disable -> uninstall, on this bpy version; and
the import rule that keeps the installed folder free of bytecode."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import bpy
import numpy as np

REPO = Path(__file__).resolve().parents[2]
PKG = "bl_ext.user_default.dposer_blender"


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_manifest_fields() -> None:
    with open(REPO / "blender_manifest.toml", "rb") as f:
        m = tomllib.load(f)
    assert m["schema_version"] == "1.0.0"
    assert m["id"] == "dposer_blender" and m["type"] == "add-on"
    assert m["blender_version_min"] == "4.2.0"
    assert m["license"] == ["SPDX:GPL-3.0-or-later"]
    assert isinstance(m["permissions"]["files"], str) and m["permissions"]["files"]


def test_build_validate_install_enable_disable_uninstall(tmp_path: Path) -> None:
    # build + validate (Blender's bl_pkg validator inside build_extension.py)
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "build_extension.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validated with" in proc.stdout
    zpath = Path(proc.stdout.strip().splitlines()[-1])
    assert zpath.name.startswith("dposer_blender-") and zpath.is_file()
    with zipfile.ZipFile(zpath) as zf:
        names = set(zf.namelist())
    assert {"blender_manifest.toml", "__init__.py", "core/pose_convert.py", "blender/armature.py",
            "blender/actions.py", "blender/fcurves.py", "operators/_base.py", "properties.py",
            "dposer_core/skeleton.py", "dposer_core/smpl_skeleton.json", "backend/__init__.py",
            "backend/engine/kinematics.py"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/") or "/tests/" in n
                   for n in names)
    # the demo / render tooling stays in the checkout
    assert not any(n.startswith("tools/") or n.endswith("render.py") or "demo" in n for n in names), \
        sorted(n for n in names if "render" in n or "demo" in n or n.startswith("tools/"))
    weights = sorted((REPO / "weights").glob("*.pt"))
    for w in weights:
        assert f"weights/{w.name}" in names

    # install (not enabled yet), so the folder can be snapshotted before the add-on runs
    repo_index = next(i for i, r in enumerate(bpy.context.preferences.extensions.repos) if r.module == "user_default")
    res = bpy.ops.extensions.package_install_files(filepath=str(zpath), repo="user_default", enable_on_install=False)
    assert res == {'FINISHED'}
    ext_dir = Path(bpy.context.preferences.extensions.repos[repo_index].directory) / "dposer_blender"
    assert (ext_dir / "blender_manifest.toml").is_file()
    before = _files(ext_dir)

    # enable
    res = bpy.ops.preferences.addon_enable(module=PKG)
    assert res == {'FINISHED'}
    assert PKG in {a.module for a in bpy.context.preferences.addons}
    mod = sys.modules[PKG]
    assert Path(mod.__file__).resolve().parent == ext_dir.resolve()

    # use it from the installed location: the skeleton json inside the extension, the user dir outside
    from importlib import import_module
    arm_mod = import_module(PKG + ".blender.armature")
    sk_mod = import_module(PKG + ".dposer_core.skeleton")
    assert Path(sk_mod.__file__).resolve().parent == (ext_dir / "dposer_core").resolve()
    assert (ext_dir / "dposer_core" / "smpl_skeleton.json").is_file()
    obj = arm_mod.create_smpl_armature()
    assert len(obj.data.bones) == 24
    udir = Path(mod.user_dir())
    assert udir.is_dir() and ext_dir.resolve() not in udir.resolve().parents

    # a backend session from the installed folder writes no bytecode there (the server runs with -B and
    # its working directory outside the extension)
    rt = import_module(PKG + ".runtime")
    try:
        res = rt.call("score", poses=np.zeros((2, 63), "float32"))
        assert len(res.pose) == 2
    finally:
        rt.close()
    pyc = sorted(str(p.relative_to(ext_dir)) for p in ext_dir.rglob("*.pyc"))
    assert not [p for p in pyc if p.startswith("backend/")], pyc

    # disable: nothing left registered
    res = bpy.ops.preferences.addon_disable(module=PKG)
    assert res == {'FINISHED'}
    assert PKG not in {a.module for a in bpy.context.preferences.addons}
    assert mod._registered == [] and mod._hooks_done == []
    leftovers = [n for n in dir(bpy.types) if getattr(getattr(bpy.types, n), "__module__", "").startswith(PKG)]
    assert leftovers == []
    assert _files(ext_dir) == before, "the extension wrote into its own folder"

    # uninstall
    res = bpy.ops.extensions.package_uninstall(repo_index=repo_index, pkg_id="dposer_blender")
    assert res == {'FINISHED'}
    assert not ext_dir.exists()


def _lazy_package_imports(path: Path) -> list[str]:
    """Imports of the package's own modules (relative ones) inside a function body of ``path`` (but the
    register-time import of the UI modules, ``dposer_blender._ui_parts``)."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name != "_ui_parts":
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.level > 0:
                    out.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return out


def test_no_module_of_the_extension_is_imported_inside_a_function() -> None:
    """``register()`` imports the UI modules under ``no_bytecode()``; a module imported later, by an import
    inside a function, would write a ``.pyc`` into the installed extension's folder."""
    files = sorted((REPO / "dposer_blender").rglob("*.py")) + sorted((REPO / "dposer_core").rglob("*.py"))
    assert files
    lazy = [hit for f in files if "__pycache__" not in f.parts for hit in _lazy_package_imports(f)]
    assert lazy == [], lazy


def test_register_unregister_then_exit_cleanly() -> None:
    """The interpreter exits with status 0 after register()/unregister(): bpy 4.2 crashed at exit when a
    registered PropertyGroup had Python methods (the crash is after Python's own shutdown, so only the exit
    status of a fresh process shows it)."""
    code = ("import sys; sys.path.insert(0, %r); import bpy, dposer_blender; "
            "dposer_blender.register(); dposer_blender.unregister()" % str(REPO))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
