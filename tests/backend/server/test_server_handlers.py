"""In-process (no torch, no subprocess): the handler table covers every queued request type of the protocol,
and the handlers hand the request's fields to the tasks module they are given (contract 3: ``trans``
through ``inbetween``; contract 4: a null seed reaches the task as None, i.e. random)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np

from backend.server.handlers import HANDLERS, TaskContext
from dposer_core import protocol as S


def test_every_queued_request_type_has_a_handler() -> None:
    queued = {t for t, spec in S.REQUESTS.items() if not spec.request.CONTROL}
    assert set(HANDLERS) == queued


class RecordingTasks:
    """A tasks stand-in that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def inbetween(self, prior: Any, keys: np.ndarray, n_frames: int, **kw: Any) -> dict:
        self.calls.append(("inbetween", (prior, keys, n_frames), kw))
        frames = (len(keys) - 1) * (n_frames + 1) + 1
        trans = None if kw["trans"] is None else np.zeros((frames, 3), np.float32)
        return {"poses": np.zeros((frames, 63), np.float32), "root_orient": None, "trans": trans}

    def sample(self, prior: Any, n: int, **kw: Any) -> np.ndarray:
        self.calls.append(("sample", (prior, n), kw))
        return np.zeros((n, 63), np.float32)


def _run(req: S.Request, tasks: RecordingTasks) -> dict:
    server = SimpleNamespace(tasks=tasks, weights=SimpleNamespace(prior=lambda: "the prior"),
                             stopping=threading.Event(), out=SimpleNamespace(send=lambda obj: None))
    return HANDLERS[req.TYPE](TaskContext(server, req, threading.Event()))  # type: ignore[arg-type]


def test_inbetween_passes_trans_through() -> None:
    tasks = RecordingTasks()
    keys = np.zeros((2, 63), np.float32)
    trans = np.array([[0.0, 0.9, 0.0], [1.0, 0.9, 0.0]], np.float32)
    out = _run(S.make_request("inbetween", 1, keys=keys, n_frames=3, trans=trans, seed=5), tasks)
    name, args, kw = tasks.calls[-1]
    assert name == "inbetween" and args[0] == "the prior" and args[2] == 3
    assert np.array_equal(kw["trans"], trans) and kw["seed"] == 5 and "steps" not in kw
    assert out["trans"].shape == (5, 3)
    out = _run(S.make_request("inbetween", 2, keys=keys, n_frames=3), tasks)
    assert tasks.calls[-1][2]["trans"] is None and tasks.calls[-1][2]["seed"] is None and out["trans"] is None


def test_null_seed_reaches_the_task_as_none() -> None:
    tasks = RecordingTasks()
    _run(S.make_request("sample", 1, n=2), tasks)
    assert tasks.calls[-1][2]["seed"] is None
    _run(S.make_request("sample", 2, n=2, seed=7, steps=3), tasks)
    assert tasks.calls[-1][2]["seed"] == 7 and tasks.calls[-1][2]["steps"] == 3


def test_missing_tasks_module_is_an_internal_error() -> None:
    import pytest

    with pytest.raises(S.ProtocolError) as e:
        _run(S.make_request("sample", 1, n=1), None)  # type: ignore[arg-type]
    assert e.value.code == S.INTERNAL
