"""Find the Python that runs the backend (it needs PyTorch; Blender's own Python never does).

Order (first one that has torch wins):

1. the add-on preference (a path to a python executable, or a venv folder);
2. the repository's ``.venv`` when the extension runs from a git checkout;
3. the environment variable ``DPOSER_PYTHON``.

If none has torch, :class:`PythonNotFound` says what was tried and the exact command to fix it.
Probing runs ``python -c`` with ``importlib.util.find_spec`` (no torch import, ~50 ms) and is cached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .locate import backend_root, repo_root

TORCH_PIN = "torch==2.13.0"
ENV_VAR = "DPOSER_PYTHON"

_PROBE = ("import importlib.util as u, json, sys; "
          "print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3], "
          "'torch': u.find_spec('torch') is not None, 'numpy': u.find_spec('numpy') is not None, "
          "'executable': sys.executable}))")

_cache: dict[tuple[str, int], "ProbeResult"] = {}


class PythonNotFound(RuntimeError):
    """No candidate Python has PyTorch; the message lists what was tried and how to fix it."""


@dataclass
class ProbeResult:
    """What one candidate turned out to be."""

    source: str              # "preference" | "repo .venv" | "DPOSER_PYTHON"
    path: str | None         # as given (None: not set)
    ok: bool = False
    detail: str = ""         # why not, or the python version when ok
    executable: str | None = None


def venv_python(folder: str | os.PathLike) -> Path:
    """The interpreter inside a virtual environment folder."""
    folder = Path(folder)
    return folder / "Scripts" / "python.exe" if sys.platform == "win32" else folder / "bin" / "python"


def clean_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` without Blender's Python settings (PYTHONHOME/PYTHONPATH would break another Python)."""
    env = dict(os.environ if base is None else base)
    for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "PYTHONNOUSERSITE", "__PYVENV_LAUNCHER__"):
        env.pop(key, None)
    return env


def candidates(preference: str | None = None) -> list[tuple[str, str | None]]:
    """(source, path or None) in discovery order."""
    out: list[tuple[str, str | None]] = [("preference", preference or None)]
    repo = repo_root()
    out.append(("repo .venv", str(venv_python(repo / ".venv")) if repo else None))
    out.append((ENV_VAR, os.environ.get(ENV_VAR) or None))
    return out


def probe(source: str, path: str | None, timeout: float = 60.0) -> ProbeResult:
    """Check one candidate: exists, runs, has torch and numpy. Cached by (path, mtime)."""
    res = ProbeResult(source, path)
    if not path:
        res.detail = "not set" if source != "repo .venv" else "not running from a git checkout"
        return res
    p = Path(path).expanduser()
    if p.is_dir():
        p = venv_python(p)
    if not p.exists():
        res.detail = f"{p} does not exist"
        return res
    try:
        key = (str(p), p.stat().st_mtime_ns)
    except OSError as exc:
        res.detail = f"{p}: {exc.strerror}"
        return res
    cached = _cache.get(key)
    if cached is not None:
        return ProbeResult(source, path, cached.ok, cached.detail, cached.executable)
    try:
        out = subprocess.run([str(p), "-c", _PROBE], capture_output=True, text=True, timeout=timeout,
                             env=clean_env(), stdin=subprocess.DEVNULL,
                             creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        info = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        res.detail = f"{p} does not run ({exc})"
        return res
    if info is None:
        res.detail = f"{p} does not run (exit code {out.returncode}: {out.stderr.strip()[-200:]})"
    elif not info.get("torch"):
        res.detail = f"{p} (Python {info.get('version')}) has no torch"
    elif not info.get("numpy"):
        res.detail = f"{p} (Python {info.get('version')}) has no numpy"
    else:
        res.ok, res.detail, res.executable = True, f"Python {info.get('version')}", str(p)
    _cache[key] = res
    return ProbeResult(source, path, res.ok, res.detail, res.executable)


def fix_instructions() -> str:
    """The exact commands that make a working backend Python, for this install."""
    repo = repo_root()
    if repo is not None:
        return f"run `bash {repo / 'scripts' / 'setup.sh'}` (it creates {repo / '.venv'} with PyTorch), then retry"
    try:
        req = backend_root() / "requirements" / "backend.txt"
    except FileNotFoundError:
        req = Path("missing")
    pkgs = f"-r \"{req}\"" if req.is_file() else f"{TORCH_PIN} numpy scipy tqdm"
    if sys.platform == "win32":
        venv = Path(os.environ.get("USERPROFILE", "~")) / ".dposer-venv"
        py = venv_python(venv)
        make = f"py -3.11 -m venv \"{venv}\" && \"{py}\" -m pip install {pkgs}"
    else:
        venv = Path.home() / ".dposer-venv"
        py = venv_python(venv)
        make = f"python3.11 -m venv {venv} && {py} -m pip install {pkgs}"
    return (f"create one with `{make}`, then set Preferences > Add-ons > DPoser > Backend Python to {py} "
            f"(or export {ENV_VAR}={py} before starting Blender)")


def find_python(preference: str | None = None) -> ProbeResult:
    """The first candidate with torch; raises :class:`PythonNotFound` with the fix otherwise."""
    tried = []
    for source, path in candidates(preference):
        res = probe(source, path)
        if res.ok:
            return res
        tried.append(f"{source}: {res.detail}")
    raise PythonNotFound("DPoser needs a Python with PyTorch for its backend and none was found "
                         f"(tried {'; '.join(tried)}). To fix it, {fix_instructions()}.")
