"""What every task shares: progress and cancellation (:class:`Monitor`), the checks of array
arguments (shape, finite values, rotation norms; numeric bounds of request fields are the
protocol's, ``dposer_core.protocol``), seeds, z-space -> pose output and the CPU thread policy."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, TypeVar

import numpy as np
import torch

from backend.engine import samplers
from backend.engine.prior import PosePrior, chunk_listener, set_chunk_listener
from dposer_core import protocol as S
from dposer_core.constants import POSE_DIM
from dposer_core.protocol.errors import BadInput, TaskCancelled

T_ = TypeVar("T_")

Progress = Callable[[float, str], None] | None
ShouldCancel = Callable[[], bool] | None
T_EPS = 1e-3
"""The small end time of sampling and of the ODE encode/decode."""


class Monitor:
    """Progress reporting (throttled to 1% steps) and cancellation, polled once per step.

    The newest monitor of a thread is also the chunk listener of the network
    (:func:`backend.engine.prior.set_chunk_listener`), so a cancel is answered within one row
    chunk of a large batch even when one step is long."""

    def __init__(self, progress: Progress, should_cancel: ShouldCancel, total: int, label: str) -> None:
        self.progress, self.should_cancel = progress, should_cancel
        self.total, self.label = max(int(total), 1), label
        self.done, self._last, self._t_last = 0, -1.0, 0.0
        self._listener = self.on_chunk
        set_chunk_listener(self._listener)

    def _release(self) -> None:
        if chunk_listener() is self._listener:
            set_chunk_listener(None)

    def check(self) -> None:
        """Raises ``TaskCancelled`` if the caller asked to stop."""
        if self.should_cancel is not None and self.should_cancel():
            self._release()
            raise TaskCancelled(f"{self.label} cancelled")

    def tick(self, n: int = 1) -> None:
        """One step done: report progress, then check for cancellation (before the next step)."""
        self.done += n
        self.report(self.done / self.total)
        self.check()

    def report(self, frac: float) -> None:
        """Progress callback at every 1% (or every 0.5 s when steps are slow), never backwards."""
        if self.progress is not None:
            frac = min(max(frac, 0.0), 1.0)
            now = time.monotonic()
            if (frac - self._last >= 0.01 or frac >= 1.0 > self._last
                    or (frac > self._last and now - self._t_last >= 0.5)):
                self._last, self._t_last = frac, now
                self.progress(frac, self.label)

    def on_chunk(self, i: int, n_chunks: int) -> None:
        """Before row chunk ``i`` of a network call: check for cancellation, report fractional progress."""
        self.check()
        if i:
            self.report((self.done + i / n_chunks) / self.total)

    def callback(self) -> Callable[[dict], None]:
        """A sampler callback (``backend.engine.samplers`` contract): one :meth:`tick` per step."""
        return lambda info: self.tick()

    def finish(self) -> None:
        self.report(1.0)
        self._release()


# ---------------------------------------------------------------------------------------- arguments


def array_arg(x: object, name: str) -> np.ndarray:
    """Any array-like -> float32 numpy; BadInput when not numeric or not finite."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a numeric array, got {type(x).__name__}") from None
    if not np.all(np.isfinite(a)):
        raise BadInput(f"{name} contains NaN or infinite values")
    return a


def check_rotations(a: np.ndarray, name: str) -> None:
    """BadInput when an axis-angle triple of ``a`` (...,3k) has a norm above the protocol's
    ``MAX_ROTATION_RAD`` (4 pi: not radians, or values so large that the network would return NaN)."""
    lim = S.MAX_ROTATION_RAD
    if a.size and float(np.abs(a).max()) > lim:
        n = np.linalg.norm(a.reshape(-1, 3).astype(np.float64), axis=1)
    else:
        n = np.linalg.norm(a.reshape(-1, 3), axis=1)
    if n.size and float(n.max()) > lim:
        k = int(np.argmax(n))
        per = max(a.shape[-1] // 3, 1)
        raise BadInput(f"{name} holds an axis-angle rotation of {n[k]:.4g} rad (row {k // per}, joint {k % per}); "
                       f"rotations must be at most 4 pi = {lim:.2f} rad. Use axis-angle in radians (not degrees).")


def poses_arg(x: object, name: str = "poses", allow_single: bool = True, min_rows: int = 1) -> tuple[np.ndarray, bool]:
    """(N,63) or (63,) -> ((N,63) float32, was_single); rotations checked (not for latents)."""
    a = array_arg(x, name)
    single = a.ndim == 1
    if single and allow_single:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != POSE_DIM:
        want = "(N,63) or (63,)" if allow_single else "(N,63)"
        raise BadInput(f"{name} must have shape {want}, got {tuple(a.shape)}")
    if a.shape[0] < min_rows:
        raise BadInput(f"{name} needs at least {min_rows} row(s), got {a.shape[0]}")
    if name != "latents":
        check_rotations(a, name)
    return a, single


def rows3_arg(x: object | None, n: int, name: str = "root_orient", rotation: bool = True) -> np.ndarray | None:
    """None, (3,) (broadcast) or (n,3) -> (n,3) float32 or None; ``rotation``: norms checked."""
    if x is None:
        return None
    a = array_arg(x, name)
    if a.ndim == 1 and a.shape == (3,):
        a = np.broadcast_to(a, (n, 3)).copy()
    if a.shape != (n, 3):
        raise BadInput(f"{name} must have shape ({n},3), got {tuple(a.shape)}")
    if rotation:
        check_rotations(a, name)
    return a


def int_arg(x: object, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer (BadInput otherwise), within [lo, hi] where given (task options that are not
    request fields; the protocol holds the bounds of those)."""
    try:
        v = int(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be an integer, got {x!r}") from None
    if v != x and not isinstance(x, (np.integer, int)):
        raise BadInput(f"{name} must be an integer, got {x!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise BadInput(f"{name} must be in [{lo}, {hi if hi is not None else 'inf'}], got {v}")
    return v


def generator(seed: Any, device: torch.device) -> torch.Generator | None:
    """A torch.Generator seeded with ``seed``; None (random) for a seed of None."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise BadInput(f"seed must be an integer or None, got {seed!r}")
    return samplers.make_generator(int(seed), device)


def randn(shape: tuple[int, ...], gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=gen, device=device, dtype=torch.float32)


# ---------------------------------------------------------------------------------------- outputs


def to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).numpy()


def canonical_axis_angle(poses: np.ndarray) -> np.ndarray:
    """(...,63) axis-angle -> the same rotations with every joint's angle in [0, pi].

    The network works in z-space and can return a joint turned by more than pi; that is the same
    rotation as a turn by 2*pi - angle about the opposite axis, which is the form the training data
    (and Blender's quaternions, read back) use. Joints already in range are returned bit-exact.
    """
    v = poses.reshape(poses.shape[:-1] + (-1, 3))
    theta = np.linalg.norm(v, axis=-1, keepdims=True)
    wrapped = np.mod(theta, 2 * np.pi)
    wrapped = np.where(wrapped > np.pi, wrapped - 2 * np.pi, wrapped)
    fixed = v / np.maximum(theta, 1e-12) * wrapped
    return np.where(theta > np.pi, fixed, v).astype(poses.dtype).reshape(poses.shape)


def z_to_pose(prior: PosePrior, z: torch.Tensor) -> np.ndarray:
    """z-space (...,63) -> float32 axis-angle poses in canonical form (angles <= pi)."""
    return canonical_axis_angle(to_numpy(prior.denormalize(z)))


# ---------------------------------------------------------------------------------------- threads

# On the CPU the tasks run single-threaded up to this many rows per network call: the per-step work
# is small matmuls (weight-bandwidth bound) and many small elementwise ops (forward kinematics), and
# intra-op threads spin-waiting on a busy 2-core machine (Blender's UI, other processes) made them
# up to 100x slower in measurements; even 1,000-frame denoising was 4x faster on one thread there.
SMALL_BATCH_ROWS = 1 << 20


class cpu_threads:
    """Context manager: ``torch.set_num_threads(1)`` on CPU when ``rows`` < SMALL_BATCH_ROWS (small
    batches run faster on one core than split across cores).

    :meth:`map` then spreads independent jobs (e.g. denoise window groups) over the cores instead, one
    single-threaded worker per core, and returns their results in order."""

    def __init__(self, prior: PosePrior, rows: int) -> None:
        self.active = prior.device.type == "cpu" and rows < SMALL_BATCH_ROWS
        self.saved = torch.get_num_threads()

    def __enter__(self) -> "cpu_threads":
        if self.active and self.saved != 1:
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.active and self.saved != 1:
            torch.set_num_threads(self.saved)

    def map(self, fn: Callable[[int], T_], items: range) -> Iterator[T_]:
        """``fn(i)`` for every item, on min(cores, items) single-threaded workers when active (else in
        this thread), yielded in order. An exception (e.g. ``TaskCancelled``) is raised at its item."""
        workers = min(self.saved, len(items)) if self.active else 1
        if workers <= 1:
            yield from (fn(i) for i in items)
            return

        def one_thread(i: int) -> T_:
            torch.set_num_threads(1)  # a new thread starts with the default thread count
            return fn(i)

        with ThreadPoolExecutor(workers, thread_name_prefix="dposer-task") as pool:
            futures = [pool.submit(one_thread, i) for i in items]
            try:
                for f in futures:
                    yield f.result()
            finally:
                for f in futures:
                    f.cancel()


def group_generator(seed: Any, i: int, device: torch.device) -> torch.Generator | None:
    """The generator of the i-th independent part of a seeded task (None: random)."""
    if seed is None:
        return None
    return samplers.make_generator((int(seed) * 1_000_003 + 7919 * i) % (1 << 63), device)
