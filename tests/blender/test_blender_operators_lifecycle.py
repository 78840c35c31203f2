"""Enable the checkout's ``dposer_blender`` as an add-on: preferences drive the backend settings, and
disabling (``unregister()``) leaves nothing behind - classes, Scene property, menus, handlers, timers and
the backend process. (The installed-zip round trip is in test_blender_package.py.)"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from types import SimpleNamespace

import addon_utils
import bpy
import pytest

MOD = "dposer_blender"


@pytest.fixture
def enabled():
    mod = addon_utils.enable(MOD, default_set=True, handle_error=lambda ex: pytest.fail(f"enable failed: {ex}"))
    assert mod is not None and MOD in bpy.context.preferences.addons
    yield mod
    if MOD in bpy.context.preferences.addons:
        addon_utils.disable(MOD, default_set=True)


def _ours() -> list[str]:
    return [n for n in dir(bpy.types) if n.startswith(("DPOSER_OT_", "VIEW3D_PT_dposer", "DPoser"))]


class _Layout:
    def __init__(self, log: list) -> None:
        object.__setattr__(self, "_log", log)

    def __getattr__(self, name):
        return lambda *a, **k: (self._log.append((name, a, k)), _Layout(self._log))[1]

    def __setattr__(self, name, value) -> None:
        self._log.append(("set", name, value))


def test_preferences_drive_the_backend_settings(enabled, tmp_path: Path, monkeypatch) -> None:
    from dposer_blender import runtime

    monkeypatch.delenv("DPOSER_WEIGHTS", raising=False)
    monkeypatch.delenv("DPOSER_DEVICE", raising=False)
    prefs = bpy.context.preferences.addons[MOD].preferences
    assert runtime.preferences() == prefs
    assert (prefs.device, prefs.weights_path, prefs.backend_python) == ("auto", "", "")
    s = runtime.settings()
    assert s.weights is None and s.device == "auto" and s.python is None  # shipped weights, discovery
    w = tmp_path / "w.pt"
    prefs.weights_path, prefs.device, prefs.backend_python = str(w), "cpu", "/opt/py/bin/python"
    prefs.smpl_model_path = str(tmp_path / "SMPL_NEUTRAL.npz")
    s = runtime.settings()
    assert (s.weights, s.device, s.python) == (str(w), "cpu", "/opt/py/bin/python")
    assert s.smpl_model.endswith("SMPL_NEUTRAL.npz")
    c = runtime.client()  # not started: only configured
    assert (c.weights, c.device, c.python) == (str(w), "cpu", "/opt/py/bin/python")
    assert not c.is_running
    prefs.device = "auto"
    assert runtime.client() is not c  # a settings change gives a new client
    # the preferences draw the status, the shipped weights path and the Test button
    log: list = []
    type(prefs).draw(SimpleNamespace(layout=_Layout(log), **{k: getattr(prefs, k) for k in
                                                             ("backend_python", "device", "weights_path",
                                                              "smpl_model_path")}), bpy.context)
    assert any(n == "operator" and a[0] == "dposer.backend_test" for n, a, k in log)
    assert any("Backend not started" in k.get("text", "") for n, a, k in log if n == "label")
    assert runtime.user_dir() and Path(runtime.log_path()).parent.is_dir()
    assert Path(runtime.log_path()).resolve().parent != (Path(__file__).parents[2] / "dposer_blender").resolve()


def test_test_button_starts_the_backend_and_shows_torch_and_device(enabled, dposer_weights: str, capsys) -> None:
    """Preferences > Test: discovery finds the backend Python, the backend starts (blocking in background
    mode) and the status shows the torch version and the device; disabling stops that process."""
    from dposer_blender import runtime

    prefs = bpy.context.preferences.addons[MOD].preferences
    prefs.device, prefs.weights_path = "cpu", dposer_weights
    assert bpy.ops.dposer.backend_test() == {'FINISHED'}
    out = capsys.readouterr().out
    assert "Backend Python:" in out and "torch" in out and "cpu" in out
    state, text = runtime.status()
    assert state == runtime.READY and text.startswith("Ready on cpu") and "torch 2." in text
    hello = runtime.last_hello()
    assert hello["device"] == "cpu" and hello["weights_path"] == dposer_weights
    pid = runtime.current_client().pid
    addon_utils.disable(MOD, default_set=True)
    _wait_gone(pid)


def _wait_gone(pid: int) -> None:
    for _ in range(100):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"backend process {pid} still running after disable")


def test_disable_leaves_nothing_behind(enabled, tmp_path: Path) -> None:
    from dposer_blender import runtime
    from dposer_blender.client import BackendClient
    from dposer_blender.operators import importers

    assert _ours() and hasattr(bpy.types.Scene, "dposer")
    assert importers.menu_func_import in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
    # a running backend process (a stand-in that never exits by itself) and the pump timer
    real = os.environ.get("DPOSER_PYTHON") or str(Path(__file__).parents[2] / ".venv/bin/python")
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\nif [ "$1" = "-c" ]; then exec "{real}" "$@"; fi\nexec sleep 60\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    c = BackendClient(python=str(fake), device="cpu")
    runtime.set_client(c)
    c.submit("ping")
    pid = c.pid
    assert pid is not None
    bpy.app.timers.register(runtime._tick, first_interval=10.0, persistent=True)
    assert runtime.timer_registered()

    addon_utils.disable(MOD, default_set=True)

    assert MOD not in bpy.context.preferences.addons
    assert _ours() == []
    assert not hasattr(bpy.types.Scene, "dposer")
    assert not [h for h in bpy.app.handlers.load_post if getattr(h, "__module__", "").startswith("dposer_blender")]
    assert importers.menu_func_import not in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
    assert not runtime.timer_registered()
    assert runtime.current_client() is None
    _wait_gone(pid)
    import dposer_blender

    assert dposer_blender._registered == [] and dposer_blender._hooks_done == []
