"""Unit tests of backend/protocol/schema.py: arrays, validation, every message type round-trips."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from dposer_core import protocol as S

from server_helpers import REPO


def test_protocol_package_is_torch_and_numpy_free() -> None:
    code = ("import sys; import dposer_core.protocol, dposer_core.protocol.schema as s; "
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules); "
            "r = s.parse_request(b'{\"id\": 1, \"type\": \"score\", \"poses\": [' + b','.join([b'0.5'] * 63) + b']}') "
            "if False else None; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


@pytest.mark.parametrize("shape", [(63,), (3, 63), (1000, 63), (10, 22, 3), (7,)])
def test_array_roundtrip_numpy(shape: tuple[int, ...]) -> None:
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    wire = S.encode_array(a)
    assert isinstance(wire, list if a.size <= S.INLINE_MAX else dict)
    wire = json.loads(json.dumps(wire))
    b = S.decode_array(wire)
    assert b.dtype == np.float32 and b.shape == shape
    np.testing.assert_array_equal(a, b)


def test_array_file_transport(tmp_path) -> None:
    a = np.arange(630, dtype=np.float32).reshape(10, 63)
    wire = S.Array.from_value(a).to_file(str(tmp_path / "a.f32"))
    with pytest.raises(S.ProtocolError, match="does not accept"):  # no array folder registered: refused
        S.decode_array(wire)
    S.allow_array_files(tmp_path)
    try:
        np.testing.assert_array_equal(S.decode_array(wire), a)
    finally:
        S.disallow_array_files(tmp_path)


def test_array_from_lists_and_tolist() -> None:
    arr = S.Array.from_json([[1, 2.5], [3, 4]])
    assert arr.shape == (2, 2) and arr.tolist() == [[1.0, 2.5], [3.0, 4.0]]


@pytest.mark.parametrize("bad,code", [
    ([[1, 2], [3]], S.BAD_INPUT),                       # ragged
    ([1, "x"], S.BAD_REQUEST),                          # not numbers
    ([1, True], S.BAD_REQUEST),                         # bools are not numbers
    ([], S.BAD_INPUT),                                  # empty
    ({"$array": "float32", "shape": [2], "base64": "AAAA"}, S.BAD_INPUT),   # wrong length
    ({"$array": "float32", "shape": [10**9, 63], "base64": ""}, S.BAD_INPUT),  # too large
    ({"$array": "float64", "shape": [1], "base64": "AAAAAA=="}, S.BAD_REQUEST),
    ({"$array": "float32", "shape": [1], "base64": "!!!!!!!!"}, S.BAD_REQUEST),
    ({"$array": "float32", "shape": [1]}, S.BAD_REQUEST),
    ({"$array": "float32", "shape": [1], "file": "/nonexistent/x"}, S.BAD_INPUT),
    ("abc", S.BAD_REQUEST),
])
def test_array_errors(bad: object, code: str) -> None:
    with pytest.raises(S.ProtocolError) as e:
        S.Array.from_json(bad)
    assert e.value.code == code


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e39])
def test_non_finite_detected(value: float) -> None:
    pose = [0.0] * 63
    pose[17] = value
    with pytest.raises(S.ProtocolError) as e:
        S.make_request("variations", 1, pose=pose)
    assert e.value.code == S.BAD_INPUT and "NaN or infinite" in e.value.message
    a = np.zeros((500, 63), np.float64)
    a[499, 62] = value  # 1e39 overflows float32 -> inf on the wire
    with pytest.raises(S.ProtocolError):
        with np.errstate(over="ignore"):
            wire = S.encode_array(a)
        S.parse_request(S.make_request("score", 2, poses=np.zeros((2, 63))).to_json() | {"poses": wire})


EXAMPLES = {
    "hello": dict(protocol="1.0", client="test"),
    "load": dict(path="/tmp/w.pt", device="cpu"),
    "sample": dict(n=3, sampler="em", steps=10, seed=1),
    "variations": dict(pose=np.zeros(63), strength=0.2, n=2, seed=3),
    "inbetween": dict(keys=np.zeros((3, 63)), n_frames=4, ease="ease_in_out", root_orient=np.zeros((3, 3))),
    "complete": dict(pose=np.zeros((2, 63)), keep=["left_knee", "head"], n_hypotheses=3, steps=5,
                     root_orient=np.zeros((2, 3))),
    "denoise": dict(joints=np.zeros((400, 22, 3)), noise_mm=40.0),
    "score": dict(poses=np.ones((5, 63))),
    "retarget_bvh": dict(path="/tmp/a.bvh", family="cmu_cgspeed", fps=30),
    "read_amass": dict(path="/tmp/a.npz"),
    "fit_image": dict(path="/tmp/a.png", n_hypotheses=3, seed=2),
    "cancel": dict(target=4),
    "ping": {},
    "shutdown": {},
}


def test_examples_cover_every_request_type() -> None:
    assert set(EXAMPLES) == set(S.REQUEST_TYPES)


@pytest.mark.parametrize("rtype", sorted(EXAMPLES))
def test_request_roundtrip(rtype: str) -> None:
    req = S.make_request(rtype, 11, **EXAMPLES[rtype])
    line = req.to_line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    back = S.parse_request(line)
    assert type(back) is type(req) and back == req
    assert json.loads(line)["type"] == rtype


@pytest.mark.parametrize("obj,code", [
    ({"type": "ping"}, S.BAD_REQUEST),                                   # no id
    ({"id": 1.5, "type": "ping"}, S.BAD_REQUEST),
    ({"id": 1, "type": "dance"}, S.BAD_REQUEST),
    ({"id": 1, "type": "ping", "extra": 1}, S.BAD_REQUEST),
    ({"id": 1, "type": "sample", "n": "3"}, S.BAD_REQUEST),
    ({"id": 1, "type": "sample", "n": 0}, S.BAD_INPUT),
    ({"id": 1, "type": "sample", "sampler": "magic"}, S.BAD_INPUT),
    ({"id": 1, "type": "variations", "pose": [0.0] * 62}, S.BAD_INPUT),
    ({"id": 1, "type": "variations", "pose": [0.0] * 63, "strength": 2}, S.BAD_INPUT),
    ({"id": 1, "type": "inbetween", "keys": [[0.0] * 63], "n_frames": 3}, S.BAD_INPUT),
    ({"id": 1, "type": "complete", "pose": [0.0] * 63, "keep": []}, S.BAD_INPUT),
    ({"id": 1, "type": "complete", "pose": [0.0] * 63, "keep": [True] * 20}, S.BAD_INPUT),
    ({"id": 1, "type": "complete", "pose": [0.0] * 63, "keep": [1, "a"]}, S.BAD_REQUEST),
    ({"id": 1, "type": "denoise"}, S.BAD_INPUT),
    ({"id": 1, "type": "denoise", "poses": [[0.0] * 63], "joints": [[[0.0] * 3] * 22]}, S.BAD_INPUT),
    ({"id": 1, "type": "denoise", "poses": [[0.0] * 63] * 2, "root_orient": [[0.0] * 3]}, S.BAD_INPUT),
    ({"id": 1, "type": "load", "device": "tpu"}, S.BAD_INPUT),
    ({"id": 1, "type": "cancel"}, S.BAD_REQUEST),
])
def test_request_validation_codes(obj: dict, code: str) -> None:
    with pytest.raises(S.ProtocolError) as e:
        S.parse_request(json.dumps(obj))
    assert e.value.code == code, e.value.message
    assert e.value.request_id == obj.get("id") if isinstance(obj.get("id"), int) else e.value.request_id is None


def test_unknown_joint_names_rejected_with_context() -> None:
    req = S.make_request("complete", 1, pose=np.zeros(63), keep=["left_knee", "tail"])
    with pytest.raises(S.ProtocolError) as e:
        req.validate(["left_knee", "head"])
    assert e.value.code == S.BAD_INPUT and "'tail'" in e.value.message


def test_nan_literals_and_garbage_lines() -> None:
    for line in (b'{"id": 2, "type": "sample", "n": NaN}', b'{"id": 2, "type"', b"\xff\xfe", b"[]", b"nul"):
        with pytest.raises(S.ProtocolError) as e:
            S.parse_request(line)
        assert e.value.code == S.BAD_REQUEST


def test_protocol_major_check() -> None:
    S.check_protocol("1.7", side="client")
    with pytest.raises(S.ProtocolError) as e:
        S.check_protocol("2.0", side="client")
    assert "mismatch" in e.value.message and "2.0" in e.value.message and S.PROTOCOL_VERSION in e.value.message


def test_replies_and_typed_results() -> None:
    hello = S.Hello(protocol="1.0", backend_version="0.1.0", torch_version="2.13.0", device="cpu",
                    joint_names=["a"] * 21).to_json()
    assert isinstance(S.parse_reply(dict(hello, future_field=1)), S.Hello)
    assert isinstance(S.parse_reply(b'{"id": 1, "type": "progress", "fraction": 0.5}'), S.Progress)
    err = S.parse_reply(b'{"id": null, "type": "error", "code": "bad_request", "message": "x"}')
    assert isinstance(err, S.Error) and err.id is None
    data = S.encode_result("complete", {"poses": np.zeros((2, 3, 63)), "scores": np.zeros((2, 3))})
    res = S.parse_result("complete", json.loads(json.dumps(data)))
    assert res.poses.shape == (2, 3, 63) and res.scores.dtype == np.float32
    data = S.encode_result("denoise", {"poses": np.zeros((300, 63)), "joints": np.zeros((300, 22, 3)),
                                       "noise_mm": np.float32(20)})
    res = S.parse_result("denoise", json.loads(json.dumps(data)))
    assert res.joints.shape == (300, 22, 3) and res.noise_mm == 20.0 and res.trans is None
    assert math.isfinite(res.noise_mm)
