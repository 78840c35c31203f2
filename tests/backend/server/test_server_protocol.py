"""The server against real subprocesses: handshake, a round trip per request type, errors,
cancel, memory errors, stdout purity, stdin EOF / parent death, and a 1,000-request load run."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dposer_core import protocol as S

from server_helpers import REPO, STUB_SERVER, STUB_TASKS, RawServer, write_test_amass, write_test_bvh


def _ok(reply: dict) -> dict:
    assert reply["type"] == "result", reply
    return reply["data"]


def _err(reply: dict, code: str) -> str:
    assert reply["type"] == "error" and reply["code"] == code, reply
    assert "Traceback" not in reply["message"]
    return reply["message"]


def _alive(server: RawServer, rid: int = 999_999) -> None:
    assert _ok(server.request({"id": rid, "type": "ping"}, timeout=30))["pong"] is True


# ---------------------------------------------------------------------------------------- handshake

def test_hello(real_server: RawServer, weights: Path) -> None:
    h = S.Hello.from_json(real_server.hello, strict=False)
    assert h.protocol == S.PROTOCOL_VERSION and h.backend_version
    import torch

    assert h.torch_version == torch.__version__ and h.device == "cpu" and h.device_name
    assert h.weights_path == str(weights)
    assert h.weights_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert len(h.joint_names) == 21 and h.joint_names[3] == "left_knee"
    assert set(h.requests) == set(S.REQUEST_TYPES)


def test_client_hello_and_protocol_mismatch(real_server: RawServer) -> None:
    assert _ok(real_server.request({"id": 1, "type": "hello", "protocol": "1.9"}))["protocol"] == S.PROTOCOL_VERSION
    msg = _err(real_server.request({"id": 2, "type": "hello", "protocol": "2.0"}), S.BAD_REQUEST)
    assert "mismatch" in msg and "2.0" in msg
    _alive(real_server)


# ---------------------------------------------------------------------------------------- round trips

def test_roundtrip_every_request_type(real_server: RawServer, weights: Path, tmp_path: Path) -> None:
    """One real request of each type through the protocol, typed results checked."""
    rng = np.random.default_rng(0)
    pose = (0.1 * rng.standard_normal(63)).astype(np.float32)
    seen: set[str] = set()

    def run(rtype: str, **params: object) -> object:
        req = S.make_request(rtype, 100 + len(seen), **params)
        real_server.send(req.to_line())
        msgs = real_server.replies(req.id, timeout=120)
        assert all(m["type"] == "progress" for m in msgs[:-1])
        seen.add(rtype)
        return S.parse_result(rtype, _ok(msgs[-1]))

    assert run("hello", protocol=S.PROTOCOL_VERSION).joint_names  # type: ignore[attr-defined]
    assert run("ping").pong  # type: ignore[attr-defined]
    load = run("load", path=str(weights), device="cpu")
    assert load.already_loaded and load.weights_sha256 == real_server.hello["weights_sha256"]  # type: ignore[attr-defined]
    assert run("sample", n=3, steps=4, seed=1).poses.shape == (3, 63)  # type: ignore[attr-defined]
    v = run("variations", pose=pose, strength=0.3, n=2, seed=2)
    assert v.poses.shape == (2, 63)  # type: ignore[attr-defined]
    ib = run("inbetween", keys=np.stack([pose, -pose]), n_frames=3, steps=2, root_orient=np.zeros((2, 3)))
    assert ib.poses.shape == (5, 63) and ib.root_orient.shape == (5, 3)  # type: ignore[attr-defined]
    c = run("complete", pose=pose, keep=["left_knee", "right_knee", "spine1"], n_hypotheses=3, steps=4, seed=3)
    assert c.poses.shape == (1, 3, 63) and c.scores.shape == (1, 3)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(c.poses[0, :, 9:12], np.broadcast_to(pose[9:12], (3, 3)))  # type: ignore[attr-defined]
    d = run("denoise", poses=np.tile(pose, (8, 1)), noise_mm=20.0)
    assert d.poses.shape == (8, 63) and d.joints.shape == (8, 22, 3) and d.noise_mm == 20.0  # type: ignore[attr-defined]
    sc = run("score", poses=np.stack([pose, 3 * pose]))
    assert sc.pose.shape == (2,) and sc.joints.shape == (2, 21)  # type: ignore[attr-defined]
    try:
        import backend.data.retarget  # noqa: F401
        bvh = run("retarget_bvh", path=str(write_test_bvh(tmp_path / "walk.bvh")), fps=30)
        assert bvh.body_pose.shape[1] == 63 and bvh.trans.shape == (bvh.body_pose.shape[0], 3)  # type: ignore[attr-defined]
    except ImportError:
        seen.add("retarget_bvh")
    try:
        import backend.data.amass  # noqa: F401
        am = run("read_amass", path=str(write_test_amass(tmp_path / "a.npz")))
        assert am.body_pose.shape == (4, 63) and am.fps == 30.0  # type: ignore[attr-defined]  # 60 -> 30 fps
    except ImportError:
        seen.add("read_amass")
    cancel = run("cancel", target=12345)
    assert cancel.state == "unknown"  # type: ignore[attr-defined]
    seen.add("shutdown")  # covered by test_shutdown (it ends the server)
    seen.add("fit_image")  # covered by tests/backend/photo/test_photo_interfaces.py (needs optional mediapipe)
    assert seen == set(S.REQUEST_TYPES)


def test_large_arrays_base64_roundtrip(real_server: RawServer) -> None:
    poses = np.random.default_rng(1).standard_normal((600, 63)).astype(np.float32) * 0.2
    req = S.make_request("score", 7, poses=poses)
    assert "base64" in req.to_line().decode()
    res = S.parse_result("score", _ok(real_server.request(json.loads(req.to_line()))))
    assert res.pose.shape == (600,) and np.isfinite(res.pose).all()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("line,code", [
    (b"this is not json", S.BAD_REQUEST),
    (b'{"id": 5, "type": "sample", "n": "many"}', S.BAD_REQUEST),
    (b'{"id": 5, "type": "teleport"}', S.BAD_REQUEST),
    (b'{"id": 5, "type": "variations", "pose": [NaN' + b", 0" * 62 + b"]}", S.BAD_INPUT),
    (b'{"id": 5, "type": "complete", "pose": [0' + b", 0" * 62 + b'], "keep": ["left_knee", "tail"]}', S.BAD_INPUT),
    (b'{"id": 5, "type": "retarget_bvh", "path": "/nonexistent/walk.bvh"}', S.BAD_INPUT),
    (b'{"id": 5, "type": "read_amass", "path": "/nonexistent/walk.npz"}', S.BAD_INPUT),
    (b'{"id": 5, "type": "load", "path": "/nonexistent/w.pt"}', S.WEIGHTS_MISSING),
])
def test_bad_requests_get_one_error_and_server_keeps_serving(real_server: RawServer, line: bytes, code: str) -> None:
    real_server.send(line + b"\n")
    rid = json.loads(line)["id"] if line.startswith(b'{"id": 5') else None
    msg = real_server.next(timeout=30)
    assert msg["id"] == rid
    _err(msg, code)
    _alive(real_server)


def test_invalid_weights_file(real_server: RawServer, tmp_path: Path) -> None:
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint at all")
    _err(real_server.request({"id": 9, "type": "load", "path": str(bad)}), S.WEIGHTS_INVALID)
    # the old weights are still loaded and used
    assert _ok(real_server.request({"id": 10, "type": "sample", "n": 1, "steps": 2}))["poses"]


def test_memory_errors_internal_errors_and_task_bad_input(stub_server: RawServer) -> None:
    """MemoryError / CUDA OOM -> out_of_memory, a bug -> internal, tasks.BadInput -> bad_input; serving goes on."""
    for rid, seed, code in ((1, 666, S.OUT_OF_MEMORY), (2, 668, S.OUT_OF_MEMORY), (3, 667, S.INTERNAL),
                            (4, 670, S.BAD_INPUT)):
        msg = _err(stub_server.request({"id": rid, "type": "sample", "n": 1, "seed": seed}), code)
        assert msg
    _alive(stub_server)


def test_stdout_carries_only_protocol_lines(stub_server: RawServer) -> None:
    _ok(stub_server.request({"id": 21, "type": "sample", "n": 1, "seed": 669}))
    _alive(stub_server)
    for raw in stub_server.raw:
        msg = json.loads(raw)
        assert msg["type"] in ("hello", "progress", "result", "error"), raw
    time.sleep(0.2)
    assert any(b"stray" in line for line in stub_server.stderr)


def test_weights_missing_traceback_in_log_and_shutdown(raw_server_factory, tmp_path: Path) -> None:
    """CUDA fallback in hello; no weights -> weights_missing; a bug -> internal with the traceback in
    the log only; shutdown."""
    s = raw_server_factory("--no-preload", "--weights", str(tmp_path / "missing.pt"), "--device", "cuda", stub=True)
    # CUDA asked for but absent (CUDA_VISIBLE_DEVICES=""): CPU fallback, announced in hello
    assert s.hello["device"] == "cpu" and "CUDA" in s.hello["device_note"] and "CPU" in s.hello["device_note"]
    _err(s.request({"id": 1, "type": "sample", "n": 1}), S.WEIGHTS_MISSING)
    _alive(s)
    _ok(s.request({"id": 2, "type": "load", "path": str(STUB_TASKS)}))
    msg = _err(s.request({"id": 3, "type": "sample", "n": 1, "seed": 667}), S.INTERNAL)
    assert "log" in msg
    assert _ok(s.request({"id": 4, "type": "shutdown"})) == {}
    assert s.proc.wait(timeout=5) == 0
    log = (tmp_path / "server0.log").read_text()
    assert "Traceback" in log and "boom: a deliberate bug" in log


# ---------------------------------------------------------------------------------------- cancel / queue

def test_cancel_queued_and_running(stub_server: RawServer) -> None:
    stub_server.send({"id": 31, "type": "denoise", "poses": [[0.0] * 63] * 4})   # ~10 s of 10 ms steps
    stub_server.send({"id": 32, "type": "sample", "n": 1, "steps": 1})           # queued behind it
    first = stub_server.next(timeout=10)
    assert first["id"] == 31 and first["type"] == "progress"
    ping = stub_server.request({"id": 33, "type": "ping"})
    assert ping["data"]["busy"] is True and ping["data"]["queued"] == 1
    stub_server.send({"id": 34, "type": "cancel", "target": 32})
    _err(stub_server.replies(32)[-1], S.CANCELLED)
    assert stub_server.replies(34)[-1]["data"]["state"] == "queued"
    t0 = time.monotonic()
    stub_server.send({"id": 35, "type": "cancel", "target": 31})
    final = stub_server.replies(31, timeout=5)[-1]
    assert time.monotonic() - t0 < 0.5
    _err(final, S.CANCELLED)
    assert stub_server.replies(35)[-1]["data"]["state"] == "running"
    _alive(stub_server)


def test_cancel_mid_denoise_real(real_server: RawServer) -> None:
    """A real denoise (long clip) is cancelled after its first progress; the reply comes within 0.5 s."""
    joints = np.zeros((240, 22, 3), np.float32)
    from backend.engine.kinematics import forward_kinematics

    import torch

    j = forward_kinematics(torch.zeros(240, 63))[0].numpy()
    joints = (j + np.random.default_rng(0).normal(0, 0.02, j.shape)).astype(np.float32)
    req = S.make_request("denoise", 41, joints=joints, noise_mm=100.0)
    real_server.send(req.to_line())
    while True:
        m = real_server.next(timeout=60)
        if m.get("id") == 41:
            assert m["type"] == "progress", m
            break
    t0 = time.monotonic()
    real_server.send({"id": 42, "type": "cancel", "target": 41})
    final = real_server.replies(41, timeout=10)[-1]
    dt = time.monotonic() - t0
    _err(final, S.CANCELLED)
    assert dt < 0.5, f"cancel took {dt:.3f} s"
    real_server.replies(42)


# ---------------------------------------------------------------------------------------- lifetime

def test_stdin_eof_exits_promptly_even_mid_task(raw_server_factory) -> None:
    s = raw_server_factory("--weights", str(STUB_TASKS), env={"STUB_STEP_S": "0.5"}, stub=True)
    s.send({"id": 1, "type": "denoise", "poses": [[0.0] * 63]})
    time.sleep(0.2)
    t0 = time.monotonic()
    s.proc.stdin.close()  # type: ignore[union-attr]
    s.proc.wait(timeout=5)
    assert time.monotonic() - t0 < 1.0


def test_parent_death_kills_server(tmp_path: Path) -> None:
    """kill -9 of the parent: the server notices (stdin EOF / re-parenting) and exits promptly."""
    code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, {str(STUB_SERVER)!r}, "
        f"'--no-preload', '--log', {str(tmp_path / 'p.log')!r}], stdin=subprocess.PIPE, stdout=subprocess.PIPE)\n"
        "p.stdout.readline()\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=REPO, env=env)
    pid = int(parent.stdout.readline())  # type: ignore[union-attr]
    parent.kill()
    parent.wait()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
            if state in ("Z", "X"):
                break
        except FileNotFoundError:
            break
        time.sleep(0.02)
    assert time.monotonic() - t0 < 1.5, "server outlived its parent"


# ---------------------------------------------------------------------------------------- load

def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


RSS_GROWTH_BOUND_MB = 25.0
"""Resident-memory growth allowed over 1,000 sample requests (after a 100-request warm-up)."""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_1000_back_to_back_samples(real_server: RawServer) -> None:
    pid = real_server.hello["pid"]
    for i in range(100):  # warm-up: allocator pools, caches
        real_server.send({"id": 10_000 + i, "type": "sample", "n": 1, "steps": 2, "seed": i})
    for i in range(100):
        real_server.replies(10_000 + i)
    rss0 = _rss_mb(pid)
    t0 = time.monotonic()
    n = 1000
    for i in range(n):
        real_server.send({"id": 20_000 + i, "type": "sample", "n": 2, "steps": 2, "seed": i})
    finals: dict[int, dict] = {}
    while len(finals) < n:
        m = real_server.next(timeout=60)
        if m["type"] in ("result", "error"):
            assert m["id"] not in finals, f"two replies for {m['id']}"
            finals[m["id"]] = m
    dt = time.monotonic() - t0
    rss1 = _rss_mb(pid)
    assert set(finals) == set(range(20_000, 20_000 + n))
    assert all(m["type"] == "result" and len(m["data"]["poses"]) == 2 for m in finals.values())
    print(f"\n1000 samples in {dt:.2f} s ({1e3 * dt / n:.2f} ms each); RSS {rss0:.1f} -> {rss1:.1f} MB")
    assert rss1 - rss0 < RSS_GROWTH_BOUND_MB
