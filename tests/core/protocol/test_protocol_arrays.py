"""dposer_core.protocol.arrays: the float32 Array codec (lists, base64, session files) and its checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dposer_core import protocol as S


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
