#!/usr/bin/env python3
"""Build the Blender extension zip ``dist/dposer_blender-<version>.zip`` and validate it.

Zip layout (the extension root is the zip root)::

    blender_manifest.toml
    __init__.py, core/, blender/, ...     dposer_blender/** (its sub-packages: core, blender, client, operators)
    dposer_core/...                       the shared core (through the dposer_blender/dposer_core link)
    backend/...                           the backend sources (no __pycache__, no tests)
    weights/*.pt, weights/README.md       the shipped checkpoint, if present

The checkout's ``tools/`` (demo and render tooling) and ``scripts/`` are not shipped.

Validation uses Blender's own extension tooling, ``bl_pkg/cli/blender_ext.py`` from a bpy wheel
(``.venv-bpy-*/lib/python3.11/site-packages/bpy/<ver>/scripts/addons_core/bl_pkg/cli``): the strict
manifest check ``pkg_manifest_from_archive_and_validate(strict=True)`` in-process, then its
``validate`` sub-command (what ``blender --command extension validate`` runs) in a subprocess.

Usage::

    python scripts/build_extension.py [--out DIR] [--no-validate] [--blender-ext PATH]

Prints the zip path on the last line. Standard library only (Python 3.11+).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "blender_manifest.toml"
EXCLUDE_DIRS = {"__pycache__", "tests", ".pytest_cache", ".mypy_cache"}
EXCLUDE_SUFFIXES = {".pyc", ".pyo"}
_ZIP_DATE = (2024, 1, 1, 0, 0, 0)  # fixed timestamps: reproducible zips


def manifest_version() -> str:
    """The ``version`` of ``blender_manifest.toml``."""
    with open(MANIFEST, "rb") as f:
        return str(tomllib.load(f)["version"])


def _tree(src: Path, dst: str) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(src, followlinks=True):  # dposer_blender/dposer_core is a link
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDE_DIRS and not d.startswith("."))
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if p.suffix in EXCLUDE_SUFFIXES or fn.startswith("."):
                continue
            rel = p.relative_to(src).as_posix()
            out.append((p, f"{dst}/{rel}" if dst else rel))
    return out


def collect_files() -> list[tuple[Path, str]]:
    """(source path, path inside the zip) for every file of the extension."""
    files: list[tuple[Path, str]] = [(MANIFEST, "blender_manifest.toml")]
    files += _tree(ROOT / "dposer_blender", "")
    files += _tree(ROOT / "backend", "backend")
    weights = ROOT / "weights"
    if weights.is_dir():
        for p in sorted(weights.glob("*.pt")):
            files.append((p, f"weights/{p.name}"))
        if (weights / "README.md").is_file():
            files.append((weights / "README.md", "weights/README.md"))
    lic = ROOT / "LICENSE"
    if lic.is_file():
        files.append((lic, "LICENSE"))
    names = [n for _, n in files]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SystemExit(f"build_extension: duplicate paths in the zip: {sorted(dup)}")
    return files


def build(out_dir: Path) -> Path:
    """Write the zip (deterministic order and timestamps); returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    zpath = out_dir / f"dposer_blender-{manifest_version()}.zip"
    tmp = zpath.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for src, name in collect_files():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED if src.suffix == ".pt" else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, src.read_bytes())
    os.replace(tmp, zpath)
    return zpath


def find_blender_ext(explicit: str | None = None) -> Path | None:
    """Path of bl_pkg's ``blender_ext.py`` (explicit, ``$DPOSER_BLENDER_EXT``, or the newest bpy venv)."""
    for cand in (explicit, os.environ.get("DPOSER_BLENDER_EXT")):
        if cand and Path(cand).is_file():
            return Path(cand)
    found = sorted(ROOT.glob(".venv-bpy-*/lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:  # running inside a bpy venv / Blender's own Python?
        try:
            import bpy  # type: ignore  # noqa: F401

            base = Path(bpy.__file__).resolve().parent
            found = sorted(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        except ImportError:
            pass

    def ver(p: Path) -> tuple[int, ...]:
        try:
            return tuple(int(x) for x in p.parents[4].name.split("."))
        except ValueError:
            return (0,)

    return max(found, key=ver) if found else None


def validate(zpath: Path, blender_ext: Path) -> None:
    """Validate ``zpath`` with Blender's extension tooling; raises ``SystemExit`` with the error."""
    sys.path.insert(0, str(blender_ext.parent))  # bl_pkg's cli folder: blender_ext.py is a plain module there
    try:
        import blender_ext as bl_ext_cli
    finally:
        sys.path.remove(str(blender_ext.parent))
    res = bl_ext_cli.pkg_manifest_from_archive_and_validate(str(zpath), strict=True)
    if isinstance(res, str):
        raise SystemExit(f"build_extension: manifest invalid: {res}")
    if res.id != "dposer_blender":
        raise SystemExit(f"build_extension: unexpected id {res.id!r}")
    proc = subprocess.run([sys.executable, str(blender_ext), "validate", str(zpath)],
                          capture_output=True, text=True)
    msg = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or "error" in msg.lower():
        raise SystemExit(f"build_extension: `blender_ext.py validate` failed (rc={proc.returncode}): {msg}")
    print(f"[build] validated with {blender_ext.parents[4].name} bl_pkg: {msg.splitlines()[-1] if msg else 'ok'}")


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "dist"), help="output folder (default: dist/)")
    ap.add_argument("--no-validate", action="store_true", help="skip Blender's validator")
    ap.add_argument("--blender-ext", default=None, help="path of bl_pkg/cli/blender_ext.py")
    args = ap.parse_args(argv)
    zpath = build(Path(args.out))
    with zipfile.ZipFile(zpath) as zf:
        names = zf.namelist()
    n_w = sum(1 for n in names if n.startswith("weights/") and n.endswith(".pt"))
    print(f"[build] {zpath} ({zpath.stat().st_size / 1e6:.2f} MB, {len(names)} files, {n_w} weight file(s))")
    if not args.no_validate:
        be = find_blender_ext(args.blender_ext)
        if be is None:
            raise SystemExit("build_extension: Blender's blender_ext.py not found (run `bash scripts/setup.sh "
                             "blender`, or pass --blender-ext / --no-validate)")
        validate(zpath, be)
    print(zpath)
    return zpath


if __name__ == "__main__":
    main()
