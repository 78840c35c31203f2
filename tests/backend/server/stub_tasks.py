"""A stand-in tasks module for server machinery tests (run by ``stub_server.py``).

Follows the backend.tasks contract (prior first; seed / progress / should_cancel keywords;
``BadInput`` / ``TaskCancelled``) with cheap numpy bodies, plus fault injection by seed:
seed 666 -> MemoryError, 667 -> RuntimeError (internal), 668 -> "CUDA out of memory" RuntimeError,
669 -> prints to stdout (must not reach the protocol stream), 670 -> BadInput, 671 -> torch's CPU
allocator error, 672 -> a NaN in the result (score / sample).
``STUB_STEP_S`` (env) is the sleep per step of the stepping tasks.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable

import numpy as np

STEP_S = float(os.environ.get("STUB_STEP_S", "0.01"))


from dposer_core.protocol.errors import BadInput, TaskCancelled  # the real classes: the server maps them by class


class StubPrior:
    """Pretends to be a PosePrior."""

    device = "cpu"
    skeleton = None

    def __init__(self, path: str) -> None:
        self.path = path


def load_prior(path: str, device: str) -> StubPrior:
    """Any readable file works, except one starting with b"bad" (-> invalid weights)."""
    with open(path, "rb") as f:
        if f.read(3) == b"bad":
            raise ValueError("not a checkpoint")
    return StubPrior(path)


def _faults(seed: int | None) -> None:
    if seed == 666:
        raise MemoryError()
    if seed == 667:
        raise RuntimeError("boom: a deliberate bug")
    if seed == 668:
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
    if seed == 669:
        print("a stray print that must go to stderr")
        sys.stdout.write("more stray output\n")
        os.write(1, b"raw fd 1 output\n")
    if seed == 670:
        raise BadInput("pose is not plausible input for the stub")
    if seed == 671:  # what torch raises when the CPU allocator fails (Linux wording)
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 40000000000 bytes. Error code 12 (Cannot allocate memory)")


def _steps(n: int, progress: Callable | None, should_cancel: Callable | None, label: str) -> None:
    for i in range(n):
        if should_cancel is not None and should_cancel():
            raise TaskCancelled(f"{label} cancelled")
        time.sleep(STEP_S)
        if progress is not None:
            progress((i + 1) / n, f"{label} step {i + 1}/{n}")


def sample(prior: Any, n: int, sampler: str = "ddim", steps: int | None = None, seed: int | None = None,
           progress: Callable | None = None, should_cancel: Callable | None = None) -> np.ndarray:
    _faults(seed)
    _steps(steps or 1, progress, should_cancel, "sample")
    out = np.random.default_rng(seed).standard_normal((n, 63)).astype(np.float32) * 0.1
    if seed == 672:
        out[0, 5] = np.nan
    return out


def denoise(prior: Any, sequence: np.ndarray, root_orient: Any = None, noise_mm: Any = None, trans: Any = None,
            seed: int | None = 0, progress: Callable | None = None,
            should_cancel: Callable | None = None) -> dict:
    _faults(seed)
    _steps(int(os.environ.get("STUB_DENOISE_STEPS", "1000")), progress, should_cancel, "denoise")
    t = sequence.shape[0]
    return {"poses": np.zeros((t, 63), np.float32), "joints": np.zeros((t, 22, 3), np.float32),
            "noise_mm": 20.0, "root_orient": np.zeros((t, 3), np.float32), "trans": np.zeros((t, 3), np.float32)}


def score(prior: Any, poses: np.ndarray, seed: int | None = None, progress: Callable | None = None,
          should_cancel: Callable | None = None) -> dict:
    _faults(seed)
    return {"pose": np.abs(poses).sum(1).astype(np.float32), "joints": np.abs(poses).reshape(-1, 21, 3).sum(2)}
