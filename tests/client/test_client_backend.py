"""BackendClient against real servers (no bpy): lazy start, every request type, progress, cancel,
timeouts, crash recovery (kill -9), restart-once policy, protocol mismatch, packaging layouts."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from client_helpers import REPO, packaged_extension


def _has(mod: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(mod) is not None
    except ModuleNotFoundError:
        return False


def test_client_is_bpy_and_torch_free() -> None:
    code = textwrap.dedent("""
        import sys
        from dposer_blender.client import BackendClient
        c = BackendClient()
        assert not c.is_running and c.pid is None
        bad = [k for k in ("torch", "bpy", "backend") if k in sys.modules]
        assert not bad, bad
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/", env=env)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_packaged_layout_finds_backend_inside_extension(tmp_path: Path) -> None:
    """In the zip, backend/ and dposer_core/ sit inside the extension folder next to client/; the client
    imports the extension's own dposer_core (relative import), never the checkout's."""
    ext = packaged_extension(tmp_path / "extensions" / "dposer_ext")
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ext.parent)!r})
        import dposer_ext.client as m
        assert str(m.backend_root()) == {str(ext)!r}, m.backend_root()
        assert m.repo_root() is None
        S = sys.modules["dposer_ext.dposer_core.protocol"]
        assert S.__file__.startswith({str(ext)!r}) and S.PROTOCOL_VERSION
        assert "dposer_core" not in sys.modules and "dposer_blender" not in sys.modules
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-B", "-c", code], capture_output=True, text=True, timeout=60, cwd="/",
                         env=env)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_checkout_layout(client_pkg: ModuleType) -> None:
    assert client_pkg.backend_root() == REPO and client_pkg.repo_root() == REPO


# ---------------------------------------------------------------------------------------- requests

def test_every_request_type_through_the_client(client: object, client_pkg: ModuleType, weights: Path,
                                                tmp_path: Path) -> None:
    c = client
    pose = (0.1 * np.random.default_rng(0).standard_normal(63)).astype(np.float32)
    hello = c.start()  # type: ignore[attr-defined]
    assert hello["device"] == "cpu" and len(hello["joint_names"]) == 21 and hello["weights_sha256"]
    assert c.call("ping").pong  # type: ignore[attr-defined]
    assert c.load(str(weights), device="cpu").already_loaded  # type: ignore[attr-defined]
    r = c.call("sample", n=4, steps=3, seed=0)  # type: ignore[attr-defined]
    assert isinstance(r.poses, np.ndarray) and r.poses.shape == (4, 63) and r.poses.dtype == np.float32
    assert c.call("variations", pose=pose, strength=0.2, n=3, seed=1).poses.shape == (3, 63)  # type: ignore[attr-defined]
    ib = c.call("inbetween", keys=np.stack([pose, -pose, pose]), n_frames=2, steps=2)  # type: ignore[attr-defined]
    assert ib.poses.shape == (7, 63) and ib.root_orient is None and ib.trans is None
    trans = np.array([[0.0, 0.9, 0.0], [1.0, 0.9, 0.0], [1.0, 1.2, 2.0]], np.float32)
    ib = c.call("inbetween", keys=np.stack([pose, -pose, pose]), n_frames=2, steps=2, trans=trans)  # type: ignore[attr-defined]
    assert ib.trans.shape == (7, 3) and np.allclose(ib.trans[::3], trans)  # the keys' translations, exactly
    cp = c.call("complete", pose=pose, keep=[True] * 10 + [False] * 11, n_hypotheses=2, steps=4)  # type: ignore[attr-defined]
    assert cp.poses.shape == (1, 2, 63) and np.array_equal(cp.poses[0, 0, :30], pose[:30])
    dn = c.call("denoise", poses=np.tile(pose, (6, 1)), noise_mm=20.0)  # type: ignore[attr-defined]
    assert dn.poses.shape == (6, 63) and dn.joints.shape == (6, 22, 3)
    sc = c.call("score", poses=np.tile(pose, (300, 1)))  # base64 both ways  # type: ignore[attr-defined]
    assert sc.pose.shape == (300,) and sc.joints.shape == (300, 21)
    if _has("backend.data.retarget"):
        sys.path.insert(0, str(REPO / "tests" / "backend" / "server"))
        from server_helpers import write_test_bvh

        m = c.call("retarget_bvh", path=str(write_test_bvh(tmp_path / "w.bvh")))  # type: ignore[attr-defined]
        assert m.body_pose.shape[1] == 63 and m.fps == 30.0
    with pytest.raises(client_pkg.BackendError) as e:
        c.call("read_amass", path=str(tmp_path / "missing.npz"))  # type: ignore[attr-defined]
    assert e.value.code == "bad_input"
    fut = c.submit("sample", n=1, steps=2)  # type: ignore[attr-defined]
    fut.result(30)
    assert fut.cancel() is False  # already done
    assert c.call("cancel", target=987654).state == "unknown"  # type: ignore[attr-defined]


def test_submit_progress_and_cancel_mid_denoise(client: object, client_pkg: ModuleType) -> None:
    """A real denoise is cancelled after its first progress event; the reply comes within 0.5 s."""
    import torch

    from backend.engine.kinematics import forward_kinematics

    j = forward_kinematics(torch.zeros(240, 63))[0].numpy()
    joints = (j + np.random.default_rng(0).normal(0, 0.02, j.shape)).astype(np.float32)
    got_progress = threading.Event()
    fut = client.submit("denoise", joints=joints, noise_mm=100.0,  # type: ignore[attr-defined]
                        progress=lambda f, m: got_progress.set())
    assert got_progress.wait(60), "no progress from denoise"
    assert 0.0 <= fut.progress[0] <= 1.0 and fut.drain_progress()
    t0 = time.monotonic()
    assert fut.cancel()
    with pytest.raises(client_pkg.BackendError) as e:
        fut.result(5)
    dt = time.monotonic() - t0
    assert e.value.code == "cancelled" and dt < 0.5, dt
    assert client.ping() < 5  # type: ignore[attr-defined]


def test_close_shuts_the_shared_server_down(client: object) -> None:
    pid = client.pid  # type: ignore[attr-defined]
    assert pid is not None
    client.close()  # type: ignore[attr-defined]
    assert not client.is_running and client.pid is None  # type: ignore[attr-defined]
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]


def test_lazy_start_local_validation_queue_order_and_timeout(stub_client_factory, client_pkg: ModuleType) -> None:
    c = stub_client_factory(step_s=0.02)
    assert not c.is_running and c.pid is None
    with pytest.raises(client_pkg.BackendError) as e:
        c.submit("variations", pose=np.zeros(62), strength=0.3)
    assert e.value.code == "bad_input" and "(63,)" in e.value.message
    with pytest.raises(client_pkg.BackendError) as e:
        c.submit("teleport")
    assert e.value.code == "bad_request"
    assert not c.is_running, "invalid requests must not start the server"
    futs = [c.submit("sample", n=1, steps=3, seed=i) for i in range(5)]
    done_order = []
    for f in futs:
        f.add_done_callback(lambda f: done_order.append(f.id))
    for f in futs:
        assert f.result(30).poses.shape == (1, 63)
    assert done_order == sorted(done_order)  # one at a time, in order
    with pytest.raises(client_pkg.BackendError) as e:
        c.call("denoise", poses=np.zeros((2, 63)), timeout=0.3)  # ~20 s of stub steps
    assert e.value.code == "timeout"
    assert c.ping() < 5  # the timed-out request was cancelled, the server serves on
    assert c.hello["protocol"].startswith("1.")
    c.close()
    assert not c.is_running


# ---------------------------------------------------------------------------------------- failures

def test_kill9_mid_request_then_fresh_server(stub_client_factory, client_pkg: ModuleType) -> None:
    c = stub_client_factory(step_s=0.05)
    assert c.state == "not_started"
    c.start()
    assert c.state == "ready" and c.last_error is None
    pid1 = c.pid
    started = threading.Event()
    fut = c.submit("denoise", poses=np.zeros((3, 63)), progress=lambda f, m: started.set())
    assert started.wait(30)
    os.kill(pid1, signal.SIGKILL)
    with pytest.raises(client_pkg.BackendCrashed) as e:
        fut.result(10)
    msg = e.value.message
    assert e.value.code == "backend_crashed" and "SIGKILL" in msg and "restarted" in msg and "denoise" in msg
    assert "Log:" in msg
    assert c.state == "error" and c.crash_count == 1 and isinstance(c.last_error, client_pkg.BackendCrashed)
    # the next call starts a fresh server
    assert c.call("sample", n=1, steps=1, timeout=60).poses.shape == (1, 63)
    assert c.pid is not None and c.pid != pid1
    assert c.state == "ready" and c.crash_count == 0


def test_crash_twice_then_report(stub_client_factory, client_pkg: ModuleType) -> None:
    c = stub_client_factory(extra_args=("--device", "bogus"))  # argparse rejects it: exits before hello
    for _ in range(2):
        with pytest.raises(client_pkg.BackendCrashed) as e:
            c.call("ping", timeout=60)
        assert "before it finished starting" in e.value.message and "bogus" in e.value.message
    with pytest.raises(client_pkg.BackendUnavailable) as e2:
        c.call("ping", timeout=60)
    assert "crashed twice" in e2.value.message
    c.server_args = ()
    c.restart()  # the user's "Restart backend" button
    assert c.ping() < 60


def test_protocol_mismatch_is_reported(client_pkg: ModuleType, tmp_path: Path, monkeypatch) -> None:
    fake = tmp_path / "fake_server.py"
    fake.write_text("import json, sys, time\n"
                    "print(json.dumps({'type': 'hello', 'protocol': '2.0', 'backend_version': '9', "
                    "'torch_version': 'x', 'device': 'cpu'}), flush=True)\n"
                    "for line in sys.stdin: pass\n")
    c = client_pkg.BackendClient(python=sys.executable, log_path=str(tmp_path / "x.log"))
    monkeypatch.setattr(c, "server_argv", lambda py: [py, str(fake)])
    try:
        with pytest.raises(client_pkg.BackendUnavailable) as e:
            c.call("ping", timeout=30)
        assert "protocol version mismatch" in e.value.message and "2.0" in e.value.message
    finally:
        c.close()


# ---------------------------------------------------------------------------------------- discovery

def test_discovery_order(client_pkg: ModuleType, tmp_path: Path, monkeypatch) -> None:
    disc = client_pkg.discovery
    monkeypatch.delenv("DPOSER_PYTHON", raising=False)
    # preference wins
    assert disc.find_python(sys.executable).source == "preference"
    # the repo's .venv next (this checkout has one)
    if (REPO / ".venv").exists():
        assert disc.find_python(None).source == "repo .venv"
    # then DPOSER_PYTHON (repo .venv hidden)
    monkeypatch.setattr(disc, "repo_root", lambda: None)
    monkeypatch.setenv("DPOSER_PYTHON", sys.executable)
    res = disc.find_python(str(tmp_path / "nope" / "python"))
    assert res.source == "DPOSER_PYTHON" and res.ok
    # a venv folder is accepted as a preference
    assert disc.find_python(str(REPO / ".venv")).ok


def test_discovery_failure_says_how_to_fix(client_pkg: ModuleType, tmp_path: Path, monkeypatch) -> None:
    disc = client_pkg.discovery
    no_torch = shutil.which("python3") or "/usr/bin/python3"
    fake_repo = tmp_path / "repo"
    (fake_repo / "scripts").mkdir(parents=True)
    monkeypatch.setattr(disc, "repo_root", lambda: fake_repo)
    monkeypatch.setenv("DPOSER_PYTHON", str(tmp_path / "missing-python"))
    probe = disc.probe("x", no_torch)
    pref = no_torch if not probe.ok else str(tmp_path / "also-missing")
    with pytest.raises(disc.PythonNotFound) as e:
        disc.find_python(pref)
    msg = str(e.value)
    assert f"bash {fake_repo / 'scripts' / 'setup.sh'}" in msg
    assert "preference" in msg and "DPOSER_PYTHON" in msg and "repo .venv" in msg
    # outside a checkout: a venv + pinned pip command and where to set it
    monkeypatch.setattr(disc, "repo_root", lambda: None)
    with pytest.raises(disc.PythonNotFound) as e:
        disc.find_python(pref)
    msg = str(e.value)
    assert "-m venv" in msg and "pip install" in msg and ("torch==" in msg or "requirements" in msg)
    assert "DPOSER_PYTHON" in msg
    # the client turns it into BackendUnavailable with the same text
    c = client_pkg.BackendClient(python=pref)
    monkeypatch.setattr(client_pkg.backend_client, "find_python", disc.find_python)
    with pytest.raises(client_pkg.BackendUnavailable) as e2:
        c.call("ping")
    assert "pip install" in e2.value.message


def test_server_that_exits_at_once_fails_the_call_instead_of_hanging(client_pkg: ModuleType, tmp_path: Path) -> None:
    """A backend Python that passes discovery but dies before hello: every call errors promptly."""
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\nif [ "$1" = "-c" ]; then exec {sys.executable} "$@"; fi\nexit 3\n')
    fake.chmod(0o755)
    client = client_pkg.BackendClient(python=str(fake))
    try:
        t0 = time.monotonic()
        with pytest.raises(client_pkg.BackendError, match="exited with code 3"):
            client.call("ping", timeout=30)
        with pytest.raises(client_pkg.BackendError):  # the automatic restart dies too, and is reported
            client.call("ping", timeout=30)
        assert time.monotonic() - t0 < 25
    finally:
        client.close()
