"""Issue 12 (hardening) on the client side: no ``.pyc`` files in an installed extension and a
working directory outside it, SIGSTOP (hung server) detection, crash messages without template
text, the crashed-twice rule after hello, and the per-session array folder."""

from __future__ import annotations

import os
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

from dposer_core import protocol as S

from client_helpers import packaged_extension


def _result_in_thread(fut: object, limit: float) -> BaseException | object:
    """``fut.result()`` *without* a timeout, run in a thread so a hang fails the test instead."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(_capture(fut.result)), daemon=True)  # type: ignore[attr-defined]
    t.start()
    t.join(limit)
    assert out, f"result() without a timeout still waiting after {limit} s"
    return out[0]


def _capture(fn):  # noqa: ANN001, ANN202
    try:
        return fn()
    except BaseException as exc:  # noqa: BLE001
        return exc


def _wait(cond, limit: float = 20.0) -> None:  # noqa: ANN001
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < limit, "condition not reached"
        time.sleep(0.02)


def test_installed_extension_gets_no_pyc_and_server_cwd_is_outside(tmp_path: Path, weights: Path) -> None:
    """A packaged extension (client/, dposer_core/ and backend/ in one folder) runs a real session;
    afterwards the folder holds no ``__pycache__`` / ``.pyc``, and the server's cwd was not inside it. The
    test's own process imports the client with -B and runs without PYTHONDONTWRITEBYTECODE, so only the
    client's way of starting the server decides."""
    ext = packaged_extension(tmp_path / "extensions" / "dposer_ext", full_backend=True)
    assert not list(ext.rglob("*.pyc"))
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ext.parent)!r})
        import dposer_ext.client as m
        c = m.BackendClient(python=sys.executable, weights={str(weights)!r}, device="cpu",
                            log_path={str(tmp_path / "server.log")!r})
        assert c.call("sample", n=1, steps=2, seed=1, timeout=300).poses.shape == (1, 63)
        cwd = os.readlink(f"/proc/{{c.pid}}/cwd")
        print("CWD", cwd)
        c.close()
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    out = subprocess.run([sys.executable, "-B", "-c", code], capture_output=True, text=True, timeout=600, cwd="/",
                         env=env)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]
    cwd = Path(out.stdout.split("CWD", 1)[1].split()[0])
    assert ext not in cwd.parents and cwd != ext, cwd
    assert not cwd.exists(), "the per-session temp folder was not removed"
    left = [str(p.relative_to(ext)) for p in ext.rglob("*") if p.suffix == ".pyc" or p.name == "__pycache__"]
    assert not left, left


def test_sigstop_is_detected_while_a_request_runs(stub_client_factory, client_pkg: ModuleType) -> None:
    c = stub_client_factory(step_s=0.05, liveness_interval=0.3, liveness_timeout=1.5)
    c.start()
    started = threading.Event()
    fut = c.submit("denoise", poses=np.zeros((3, 63)), progress=lambda f, m: started.set())  # ~50 s of steps
    assert started.wait(30)
    pid = c.pid
    assert c.state == "ready"
    os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        err = _result_in_thread(fut, 20)
        assert time.monotonic() - t0 < 10
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert isinstance(err, client_pkg.BackendCrashed), err
    assert "stopped responding" in err.message and "denoise request" in err.message and "{" not in err.message
    assert c.state == "error" and c.crash_count == 1 and "{" not in c.last_error.message
    _wait(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3])
    # the next request starts a fresh server
    assert c.call("sample", n=1, steps=1, timeout=60).poses.shape == (1, 63) and c.pid != pid


def test_a_slow_but_alive_server_is_not_killed(stub_client_factory) -> None:
    """Liveness pings are answered by the server's reader while a long task runs without progress."""
    c = stub_client_factory(step_s=5.0, liveness_interval=0.3, liveness_timeout=2.5)  # a step > the timeout
    assert c.call("sample", n=1, steps=1, timeout=60).poses.shape == (1, 63)
    assert c.crash_count == 0 and c.state == "ready"


def test_idle_kill_message_has_no_template_and_says_idle(stub_client_factory, client_pkg: ModuleType) -> None:
    c = stub_client_factory()
    c.start()
    os.kill(c.pid, signal.SIGKILL)
    _wait(lambda: c.last_error is not None)  # state says "error" as soon as the process is gone, a moment earlier
    assert c.state == "error"
    msg = c.last_error.message
    assert "while idle" in msg and "while running" not in msg and "{" not in msg, msg
    assert "SIGKILL" in msg and "restarted" in msg


def test_two_crashes_after_hello_stop_restarts(stub_client_factory, client_pkg: ModuleType) -> None:
    """The hello (and pings) no longer count as a successful request, so two crashes in a row of
    servers that did start make the backend unavailable; a successful task resets the count."""
    c = stub_client_factory(step_s=0.05)

    def crash_mid_request() -> None:
        started = threading.Event()
        fut = c.submit("denoise", poses=np.zeros((2, 63)), progress=lambda f, m: started.set())
        assert started.wait(60)
        os.kill(c.pid, signal.SIGKILL)
        err = fut.exception(20)
        assert isinstance(err, client_pkg.BackendCrashed) and "while running denoise request" in err.message
        assert "{" not in err.message

    crash_mid_request()
    assert c.crash_count == 1
    assert c.call("sample", n=1, steps=1, timeout=60).poses.shape == (1, 63)  # a real success resets it
    assert c.crash_count == 0
    crash_mid_request()
    assert c.ping() < 30 and c.crash_count == 1  # hello + ping succeed: still one crash
    crash_mid_request()
    assert c.crash_count == 2
    with pytest.raises(client_pkg.BackendUnavailable) as e:
        c.call("sample", n=1, steps=1, timeout=60)
    assert "crashed twice" in e.value.message and "{" not in e.value.message
    assert c.state == "error"
    c.restart()
    assert c.call("sample", n=1, steps=1, timeout=60).poses.shape == (1, 63)


def test_session_array_folder(stub_client_factory, client_pkg: ModuleType) -> None:
    c = stub_client_factory(step_s=0.001)
    assert c.array_dir is None
    c.start()
    folder = Path(c.array_dir)
    assert folder.is_dir() and oct(folder.stat().st_mode & 0o777) == "0o700"
    wire = S.Array.from_value(np.full((4, 3), 0.25, np.float32)).to_file(str(folder / "trans.f32"))
    res = c.call("denoise", poses=np.zeros((4, 63)), trans=wire, timeout=120)
    assert res.poses.shape == (4, 63)
    # a file outside the folder is refused before anything is sent
    outside = folder.parent / f"outside-{os.getpid()}.f32"
    try:
        wire2 = S.Array.from_value(np.zeros((4, 3), np.float32)).to_file(str(outside))
        with pytest.raises(client_pkg.BackendError) as e:
            c.submit("denoise", poses=np.zeros((4, 63)), trans=wire2)
        assert e.value.code == "bad_input" and "outside" in e.value.message
    finally:
        outside.unlink(missing_ok=True)
    c.close()
    assert not folder.exists()
