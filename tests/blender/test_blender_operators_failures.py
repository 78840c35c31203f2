"""The ``dposer.*`` operators against the real backend (CPU; shipped weights or a tiny checkpoint): failures and other rigs.

In the bpy module ``bpy.app.background`` is True, so every operator runs blocking (``execute``) -
the same code path scripts use; the modal path only differs in how the request is waited for.
Each test starts from an empty factory scene (conftest ``factory_scene``).
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import bpy
import numpy as np
import pytest

from dposer_blender.blender import actions
from dposer_blender.blender import rig as smpl_rig
from operator_helpers import keyed_pair, run, select_bone, smpl

pytestmark = pytest.mark.usefixtures("dposer_addon")


# --------------------------------------------------------------------------- failures

def test_bad_armature_disables_operators_and_says_which_bones() -> None:
    obj = smpl()
    bpy.ops.object.mode_set(mode='EDIT')
    for name in ("left_knee", "right_wrist"):
        obj.data.edit_bones.remove(obj.data.edit_bones[name])
    bpy.ops.object.mode_set(mode='OBJECT')
    for op in ("sample", "variations", "inbetween", "complete", "denoise", "plausibility"):
        assert not getattr(bpy.ops.dposer, op).poll()
        with pytest.raises(RuntimeError, match=r"missing bones left_knee, right_wrist"):
            run(op)


def test_not_an_armature_reports() -> None:
    me = bpy.data.meshes.new("m")
    ob = bpy.data.objects.new("Cube", me)
    bpy.context.scene.collection.objects.link(ob)
    bpy.context.view_layer.objects.active = ob
    with pytest.raises(RuntimeError, match="'Cube' is not an armature"):
        run("sample")


def _fake_python(tmp_path: Path, body: str) -> str:
    """A 'python' that answers the discovery probe with the real backend Python and does ``body`` otherwise."""
    real = os.environ["DPOSER_PYTHON"]
    p = tmp_path / "fakepython"
    p.write_text(f'#!/bin/sh\nif [ "$1" = "-c" ]; then exec "{real}" "$@"; fi\n{body}\n')
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return str(p)


@contextmanager
def client_in_use(runtime, client) -> Iterator[None]:
    """``client`` as the runtime's backend client for the block; then the previous one again (``client`` closed)."""
    old = runtime.set_client(client)
    try:
        yield
    finally:
        runtime.set_client(old)
        client.close()


def test_dead_backend_is_reported_and_scene_unchanged(tmp_path: Path, dposer_addon) -> None:
    from dposer_blender.client import BackendClient

    runtime = dposer_addon
    obj = smpl()
    # the fake dies 0.3 s after starting (an instant exit can race the client's thread start-up: the
    # reader may finish before the stderr thread is started, see the report)
    bad = BackendClient(python=_fake_python(tmp_path, "sleep 0.3; echo 'Segmentation fault' >&2; exit 139"),
                        device="cpu")
    with client_in_use(runtime, bad):
        with pytest.raises(RuntimeError, match=r"DPoser backend exited with code 139"):
            run("sample", n=2, steps=2)
        assert not any(o.get("dposer_ghost_of") for o in bpy.data.objects)
        state, text = runtime.status()
        assert state == runtime.ERROR and "139" in text
    assert obj.animation_data is None


def test_backend_missing_is_reported(monkeypatch, dposer_addon) -> None:
    from dposer_blender.client import BackendClient, PythonNotFound
    from dposer_blender.client import backend_client as bc

    def nope(pref=None):
        raise PythonNotFound("DPoser needs a Python with PyTorch for its backend and none was found (tried x)")

    monkeypatch.setattr(bc, "find_python", nope)
    runtime = dposer_addon
    smpl()
    with client_in_use(runtime, BackendClient(python="/nonexistent/python", device="cpu")):
        with pytest.raises(RuntimeError, match="needs a Python with PyTorch"):
            run("sample", n=1, steps=1)


def test_protocol_mismatch_is_reported(tmp_path: Path, dposer_addon) -> None:
    from dposer_blender.client import BackendClient

    runtime = dposer_addon
    smpl()
    hello = ('{"type":"hello","protocol":"99.0","backend_version":"0","torch_version":"0","device":"cpu"}')
    fake = _fake_python(tmp_path, f"echo '{hello}'; sleep 5")
    with client_in_use(runtime, BackendClient(python=fake, device="cpu")):
        with pytest.raises(RuntimeError, match="protocol version mismatch"):
            run("sample", n=1, steps=1)


def test_cancel_message_is_plain(dposer_addon) -> None:
    """Cancelling (Esc in the modal operator) cancels the request; the operator reports this sentence and
    writes nothing. The modal path needs an interactive event loop, so here the request is cancelled
    directly and the scene checked."""
    runtime = dposer_addon
    obj = smpl()
    fut = runtime.submit("sample", n=64, sampler="em", steps=5000, seed=0)
    fut.cancel()
    with pytest.raises(Exception) as ei:
        fut.result(120)
    assert runtime.describe_error(ei.value) == "Cancelled; nothing was changed."
    assert obj.animation_data is None and len(bpy.data.objects) == 1


def test_operators_work_with_smpl_addon_bone_names() -> None:
    """Rigs named like the SMPL add-on / FBX (m_avg_L_Hip, ...) are SMPL-like: the operators map the bones."""
    obj = smpl()
    for b in obj.data.bones:
        side, _, rest = b.name.partition("_")
        if side in ("left", "right"):
            b.name = f"m_avg_{side[0].upper()}_{rest.capitalize()}"
        else:
            b.name = f"m_avg_{b.name.capitalize()}"
    assert "m_avg_L_Elbow" in obj.data.bones and smpl_rig.check_smpl_armature(obj)[0]
    keyed_pair(obj, 1, 6, seed=4)
    bpy.context.scene.frame_set(2)
    assert run("inbetween", steps=2) == {'FINISHED'}
    assert len(actions.read_smpl_motion(obj)["frames"]) == 6
    for b in obj.data.bones:
        select_bone(obj, b.name, b.name == "m_avg_L_Elbow")
    q = np.array(obj.pose.bones["m_avg_L_Elbow"].rotation_quaternion, dtype=np.float32)
    assert run("complete", hypotheses=2, steps=4, seed=0) == {'FINISHED'}
    assert run("complete_apply") == {'FINISHED'}
    assert np.array(obj.pose.bones["m_avg_L_Elbow"].rotation_quaternion, dtype=np.float32).tobytes() == q.tobytes()
