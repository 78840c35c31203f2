"""dposer_core.protocol: every message type round-trips, validation codes, the registry and its bounds,
the keep field (dposer_core.keep), in-between translations, replies and typed results."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from dposer_core import protocol as S
from dposer_core.keep import parse_keep

EXAMPLES = {
    "hello": dict(protocol="1.0", client="test"),
    "load": dict(path="/tmp/w.pt", device="cpu"),
    "sample": dict(n=3, sampler="em", steps=10, seed=1),
    "variations": dict(pose=np.zeros(63), strength=0.2, n=2, seed=3),
    "inbetween": dict(keys=np.zeros((3, 63)), n_frames=4, ease="ease_in_out", root_orient=np.zeros((3, 3)),
                      trans=np.ones((3, 3))),
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
    assert set(EXAMPLES) == set(S.REQUESTS) == set(S.REQUEST_TYPES)


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
    ({"id": 1, "type": "complete", "pose": [0.0] * 63, "keep": [0, 1]}, S.BAD_REQUEST),       # indices: not on the wire
    ({"id": 1, "type": "complete", "pose": [0.0] * 63, "keep": "head"}, S.BAD_REQUEST),
    ({"id": 1, "type": "complete", "pose": [0.0] * 63, "keep": ["head", "head"]}, S.BAD_INPUT),
    ({"id": 1, "type": "complete", "pose": [0.0] * 63, "keep": ["tail"]}, S.BAD_INPUT),
    ({"id": 1, "type": "complete", "pose": [0.0] * 63, "keep": ["head"], "n_hypotheses": 0}, S.BAD_INPUT),
    ({"id": 1, "type": "inbetween", "keys": [[0.0] * 63] * 2, "n_frames": 1, "trans": [[0.0] * 3]}, S.BAD_INPUT),
    ({"id": 1, "type": "inbetween", "keys": [[0.0] * 63] * 2, "n_frames": 1, "trans": [[0.0, 0, 2e4]] * 2},
     S.BAD_INPUT),                                                                          # metres, not mm
    ({"id": 1, "type": "sample", "seed": -1}, S.BAD_INPUT),
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
    with pytest.raises(S.ProtocolError) as e:
        S.make_request("complete", 1, pose=np.zeros(63), keep=["left_knee", "tail"])
    assert e.value.code == S.BAD_INPUT and "'tail'" in e.value.message and "left_wrist" in e.value.message


@pytest.mark.parametrize("keep", [["left_knee", "head"], [True] * 10 + [False] * 11])
def test_keep_field_is_read_by_parse_keep_and_passed_on_as_sent(keep: list) -> None:
    req = S.make_request("complete", 1, pose=np.zeros(63), keep=keep)
    assert req.keep == keep
    assert np.array_equal(parse_keep(req.keep), parse_keep(keep))


def test_registry_maps_each_type_to_its_classes_and_bounds() -> None:
    for rtype, spec in S.REQUESTS.items():
        assert spec.type == rtype == spec.request.TYPE and S.REQUEST_TYPES[rtype] is spec.request
        assert issubclass(spec.request, S.Request) and issubclass(spec.result, S.Message)
    assert S.REQUESTS["complete"].result is S.CompleteResult and S.REQUESTS["sample"].result is S.PosesResult
    assert S.bounds("complete", "n_hypotheses") == S.REQUESTS["complete"].bounds("n_hypotheses") == (1, 1000)
    assert S.bounds("fit_image", "n_hypotheses") == (1, 32)
    assert S.bounds("sample", "n") == (1, 100_000) and S.bounds("sample", "steps") == (1, 5000)
    assert S.bounds("variations", "strength") == (1e-6, 1.0) and S.bounds("inbetween", "n_frames") == (0, 100_000)
    assert S.bounds("sample", "seed") == (0, 2**63 - 1)
    with pytest.raises(KeyError):
        S.bounds("complete", "keep")
    with pytest.raises(KeyError):
        S.bounds("teleport", "n")


@pytest.mark.parametrize("rtype", sorted(EXAMPLES))
def test_bounds_are_the_ones_the_request_enforces(rtype: str) -> None:
    cls = S.REQUESTS[rtype].request
    example = dict(keys=np.zeros((2, 63)), n_frames=4) if rtype == "inbetween" else EXAMPLES[rtype]  # frames cap
    for f in dataclasses.fields(cls):
        if f.metadata.get("bounds") is None or f.name == "seed":
            continue
        lo, hi = S.bounds(rtype, f.name)
        is_int = isinstance(lo, int) and isinstance(hi, int)
        for ok in (lo, hi):
            S.make_request(rtype, 1, **(example | {f.name: ok}))
        for bad in ((lo - 1, hi + 1) if is_int else (lo - abs(lo) * 0.5 - 1e-3, hi * 1.5 + 1)):
            with pytest.raises(S.ProtocolError, match=f.name) as e:
                S.make_request(rtype, 1, **(example | {f.name: bad}))
            assert e.value.code == S.BAD_INPUT


def test_seed_null_means_random_and_is_the_default() -> None:
    for rtype, spec in S.REQUESTS.items():
        if "seed" in spec.request.__dataclass_fields__:
            assert S.make_request(rtype, 1, **EXAMPLES[rtype] | {"seed": None}).seed is None
            assert spec.request.__dataclass_fields__["seed"].default is None


def test_inbetween_trans_round_trips_and_is_optional() -> None:
    keys, trans = np.zeros((3, 63)), np.array([[0, 0.9, 0], [1, 0.9, 0], [2, 1.0, 0.5]], np.float32)
    req = S.parse_request(S.make_request("inbetween", 1, keys=keys, n_frames=2, trans=trans).to_line())
    assert np.array_equal(req.trans.to_numpy(), trans)
    assert S.make_request("inbetween", 2, keys=keys, n_frames=2).trans is None
    data = S.encode_result("inbetween", {"poses": np.zeros((7, 63)), "trans": np.ones((7, 3))})
    res = S.parse_result("inbetween", json.loads(json.dumps(data)))
    assert res.trans.shape == (7, 3) and res.root_orient is None
    assert S.parse_result("inbetween", S.encode_result("inbetween", {"poses": np.zeros((7, 63))})).trans is None


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
