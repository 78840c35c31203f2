"""Protocol fuzzing with hypothesis: random JSON, wrong types, huge arrays, NaN, truncated lines,
``file`` arrays pointing anywhere (FIFOs, descriptors, links out, system files), huge finite values
and very long strings.

The server must never die, and every line gets exactly one final reply (an ``error`` for every
malformed one). Runs against the stub tasks (no step delay) so valid-by-accident requests are cheap.
Bounded in time: every example has a deadline (a blocked reader would hit it) and the example
counts are fixed, so the module runs in about a minute on the shared 2-core CPU.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dposer_core import protocol as S

from server_helpers import RawServer

_sentinels = itertools.count()
SAFE_TYPES = sorted(set(S.REQUEST_TYPES) - {"shutdown"})
FIELDS = sorted({f for cls in S.REQUEST_TYPES.values() for f in cls.__dataclass_fields__} - {"id"})


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fuzz server's --array-dir, with a FIFO, a link out, a valid array file and a sub-folder."""
    d = tmp_path_factory.mktemp("fuzzarrays")
    os.mkfifo(d / "fifo")
    (d / "out").symlink_to("/etc/passwd")
    (d / "ok.f32").write_bytes(b"\x00" * 4 * 15)
    (d / "sub").mkdir()
    return d


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path, fuzz_dir: Path) -> Iterator[RawServer]:
    s = RawServer("--weights", str(tiny_checkpoint), "--device", "cpu", "--array-dir", str(fuzz_dir), stub=True,
                  log=tmp_path_factory.mktemp("fuzzlog") / "server.log",
                  env={"STUB_STEP_S": "0", "STUB_DENOISE_STEPS": "3"})
    yield s
    assert s.proc.poll() is None, "the server died during fuzzing"
    s.close()


def exchange(server: RawServer, line: bytes) -> list[dict]:
    """Send one line, then a sentinel; return the final replies that came before the sentinel's.

    The sentinel is a queued request (a cheap stub ``sample``), not a ``ping``: control requests are
    answered at once and would overtake a queued request sent before them.
    """
    sid = f"~sentinel~{next(_sentinels)}"
    if not line.endswith(b"\n"):
        line += b"\n"
    server.send(line + (json.dumps({"id": sid, "type": "sample", "n": 1, "steps": 1}) + "\n").encode())
    finals = []
    while True:
        m = server.next(timeout=60)
        if m.get("id") == sid:
            if m["type"] == "progress":
                continue
            assert m["type"] == "result", m
            return finals
        if m["type"] in ("result", "error"):
            assert m["type"] == "result" or (m["code"] in S.ERROR_CODES and m["message"]), m
            finals.append(m)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25)

FUZZ = settings(max_examples=60, deadline=20_000, suppress_health_check=list(HealthCheck))


@FUZZ
@given(value=json_values)
def test_random_json(fuzz_server: RawServer, value: Any) -> None:
    if isinstance(value, dict) and value.get("type") == "shutdown":
        value["type"] = "ping"
    finals = exchange(fuzz_server, _dumps(value))
    assert len(finals) == 1
    if not isinstance(value, dict) or "id" not in value or not isinstance(value.get("type"), str):
        assert finals[0]["type"] == "error" and finals[0]["code"] == S.BAD_REQUEST


@FUZZ
@given(rid=st.integers(0, 2**40) | st.text(min_size=1, max_size=10),
       rtype=st.sampled_from(SAFE_TYPES + ["nonsense", ""]),
       fields=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4))
def test_request_shaped_with_wrong_types(fuzz_server: RawServer, rid: Any, rtype: str, fields: dict) -> None:
    obj = {"id": rid, "type": rtype, **fields}
    finals = exchange(fuzz_server, _dumps(obj))
    assert len(finals) == 1 and finals[0]["id"] == rid


def _valid(rtype: str) -> dict:
    return {
        "variations": {"id": 1, "type": "variations", "pose": [0.1] * 63, "strength": 0.5, "n": 2},
        "score": {"id": 1, "type": "score", "poses": [[0.1] * 63] * 3},
        "complete": {"id": 1, "type": "complete", "pose": [0.1] * 63, "keep": ["left_knee"], "n_hypotheses": 2},
        "denoise": {"id": 1, "type": "denoise", "poses": [[0.1] * 63] * 2},
        "inbetween": {"id": 1, "type": "inbetween", "keys": [[0.1] * 63] * 2, "n_frames": 2},
    }[rtype]


ARRAY_FIELD = {"variations": "pose", "score": "poses", "complete": "pose", "denoise": "poses", "inbetween": "keys"}


def _with_value(rtype: str, rid: int, where: int, value: float) -> dict:
    """A valid ``rtype`` request whose array holds ``value`` at a place chosen by ``where``."""
    obj = _valid(rtype)
    obj["id"] = rid
    arr = obj[ARRAY_FIELD[rtype]]
    if isinstance(arr[0], list):
        arr[where % len(arr)][where % 63] = value
    else:
        arr[where % 63] = value
    return obj


@FUZZ
@given(rtype=st.sampled_from(sorted(ARRAY_FIELD)), bad=st.sampled_from([math.nan, math.inf, -math.inf, 1e300]),
       where=st.integers(0, 10_000), rid=st.integers(0, 10**6))
def test_nan_and_inf_anywhere(fuzz_server: RawServer, rtype: str, bad: float, where: int, rid: int) -> None:
    finals = exchange(fuzz_server, _dumps(_with_value(rtype, rid, where, bad)))
    assert len(finals) == 1 and finals[0]["id"] == rid
    assert finals[0]["type"] == "error" and finals[0]["code"] == S.BAD_INPUT


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(rtype=st.sampled_from(sorted(ARRAY_FIELD)),
       size=st.sampled_from([0, 1, 62, 64, 21 * 4, 200_000]),
       encoded=st.booleans(), rid=st.integers(0, 10**6))
def test_wrong_and_huge_arrays(fuzz_server: RawServer, rtype: str, size: int, encoded: bool, rid: int) -> None:
    obj = _valid(rtype)
    obj["id"] = rid
    if encoded:
        # a claimed shape that does not match the data, or a huge claimed shape
        obj[ARRAY_FIELD[rtype]] = {"$array": "float32", "shape": [max(size, 1), 10**7],
                                   "base64": "AAAAAA=="}
    else:
        obj[ARRAY_FIELD[rtype]] = [0.5] * size
    finals = exchange(fuzz_server, _dumps(obj))
    assert len(finals) == 1 and finals[0]["id"] == rid
    assert finals[0]["type"] == "error" and finals[0]["code"] in (S.BAD_INPUT, S.BAD_REQUEST)


@FUZZ
@given(rtype=st.sampled_from(sorted(ARRAY_FIELD)), cut=st.floats(0.0, 0.999))
def test_truncated_lines(fuzz_server: RawServer, rtype: str, cut: float) -> None:
    line = _dumps(_valid(rtype))
    finals = exchange(fuzz_server, line[: int(cut * (len(line) - 1))])
    if int(cut * (len(line) - 1)) == 0:
        assert finals == []  # an empty line is ignored
        return
    assert len(finals) == 1 and finals[0]["type"] == "error" and finals[0]["code"] == S.BAD_REQUEST
    assert finals[0]["id"] is None


def test_binary_garbage_and_server_still_alive(fuzz_server: RawServer) -> None:
    for junk in (b"\xff\xfe\x00\x01", b"\x00" * 100, b"{" * 5000, b"[" * 100_000):
        finals = exchange(fuzz_server, junk)
        assert len(finals) == 1 and finals[0]["code"] == S.BAD_REQUEST
    assert fuzz_server.proc.poll() is None


PATHS = ["fifo", "out", "ok.f32", "sub", "missing", "/etc/passwd", "/proc/self/fd/0", "/dev/zero", "/dev/stdin",
         "../../../../etc/shadow", "", "x" * 5000]


@settings(max_examples=60, deadline=20_000, suppress_health_check=list(HealthCheck))
@given(rtype=st.sampled_from(sorted(ARRAY_FIELD)), path=st.sampled_from(PATHS) | st.text(max_size=30),
       relative=st.booleans(), rows=st.integers(1, 6), rid=st.integers(0, 10**6))
def test_file_arrays_anywhere(fuzz_server: RawServer, fuzz_dir: Path, rtype: str, path: str, relative: bool,
                              rows: int, rid: int) -> None:
    """Whatever a ``file`` array names, the reply comes at once (the sentinel behind it is answered:
    nothing blocked the reader or swallowed the next line) and never quotes /etc/passwd."""
    obj = _valid(rtype)
    obj["id"] = rid
    field = ARRAY_FIELD[rtype]
    width = 63
    full = path if (path.startswith("/") or not relative) else str(fuzz_dir / path)
    obj[field] = {"$array": "float32", "shape": [rows, width] if isinstance(obj[field][0], list) else [width],
                  "file": full}
    finals = exchange(fuzz_server, _dumps(obj))
    assert len(finals) == 1 and finals[0]["id"] == rid
    assert "root:" not in json.dumps(finals[0])
    if finals[0]["type"] == "error":
        assert finals[0]["code"] in (S.BAD_INPUT, S.BAD_REQUEST)


@FUZZ
@given(rtype=st.sampled_from(sorted(ARRAY_FIELD)), big=st.floats(13.0, 3e38) | st.floats(-3e38, -13.0),
       where=st.integers(0, 10_000), rid=st.integers(0, 10**6))
def test_huge_finite_values(fuzz_server: RawServer, rtype: str, big: float, where: int, rid: int) -> None:
    """Finite but out-of-range axis-angle values: bad_input, never internal, never NaN output."""
    finals = exchange(fuzz_server, _dumps(_with_value(rtype, rid, where, big)))
    assert len(finals) == 1 and finals[0]["type"] == "error" and finals[0]["code"] == S.BAD_INPUT, finals


@settings(max_examples=30, deadline=20_000, suppress_health_check=list(HealthCheck))
@given(n=st.integers(1000, 300_000), where=st.sampled_from(["key", "type", "sampler", "keep", "path"]),
       rid=st.integers(0, 10**6))
def test_long_strings_are_not_echoed(fuzz_server: RawServer, n: int, where: str, rid: int) -> None:
    s = "q" * n
    obj: dict[str, Any] = {"id": rid, "type": "sample"}
    if where == "key":
        obj[s] = 1
    elif where == "type":
        obj["type"] = s
    elif where == "sampler":
        obj["sampler"] = s
    elif where == "keep":
        obj = {"id": rid, "type": "complete", "pose": [0.0] * 63, "keep": [s]}
    else:
        obj = {"id": rid, "type": "retarget_bvh", "path": s}
    finals = exchange(fuzz_server, _dumps(obj))
    assert len(finals) == 1 and finals[0]["type"] == "error" and len(finals[0]["message"]) <= S.MAX_MESSAGE_CHARS
