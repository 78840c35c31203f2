"""The animator tasks as a batched, pure API: numpy in / numpy out, torch inside.

    sample(prior, n, sampler="ddim"|"em"|"ode", steps=None, seed=None) -> (n,63)
    variations(prior, pose (63,), strength, n, seed=None) -> (n,63)
    inbetween(prior, keys (M,63), n_frames, ease="linear"|"ease_in_out", root_orient=None (M,3))
        -> dict(poses ((M-1)(n_frames+1)+1, 63), root_orient (same length, 3) | None)
    complete(prior, pose (N,63)|(63,), keep (21,) bool | joint names | indices, n_hypotheses=10, steps=200,
             seed=None, root_orient=None) -> dict(poses (N,H,63) best first, scores (N,H))
    denoise(prior, joints (T,22,3) | poses (T,63), root_orient=None, noise_mm=None)
        -> dict(poses (T,63), joints (T,22,3), noise_mm, root_orient (T,3), trans (T,3))
    score(prior, poses (N,63)) -> dict(pose (N,), joints (N,21))   (lower = more plausible)
    encode(prior, poses (N,63)) -> (N,63) ; decode(prior, latents (N,63)) -> (N,63)

Every task takes ``prior: PosePrior`` first and the keywords ``seed`` (int or None; the same seed gives
the same result on the same device), ``progress`` (``progress(fraction in [0,1], message)``) and
``should_cancel`` (polled before every step; when it returns True the task raises ``TaskCancelled``
within one step). Wrong shapes / NaN / unknown joints raise ``BadInput`` (a ``ValueError`` with a
one-line message). Poses are SMPL body poses: joints 1..21, parent-relative axis-angle, float32,
SMPL native frame. The root orientation is never modelled by the prior; tasks carry it along
(in-between slerps it, denoise fits it, the others leave it unchanged).

Speed: all hypotheses / frames of a call go through the network as one batch; everything without a
gradient runs under ``torch.inference_mode``; the DPoser regulariser uses its closed-form gradient
(no back-propagation through the network, paper Eq. 10); when all rows share one diffusion time
(every loop here) the network's time path is computed once per time and cached (``_FastEps``).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from backend.engine import samplers as _samplers
from backend.engine.kinematics import forward_kinematics
from backend.engine.network import TIME_SCALE, timestep_embedding
from backend.engine.prior import PosePrior
from backend.engine.regularizer import dposer_weight, truncated_schedule
from backend.engine.rotations import (axis_angle_to_quat, matrix_to_axis_angle, quat_slerp,
                                      quat_to_axis_angle)
from dposer_core.constants import BODY_MASKS, MASK_NAMES, NUM_BODY_JOINTS, POSE_DIM
from dposer_core.protocol.errors import BadInput, TaskCancelled
from dposer_core.skeleton import body_joint_names, smpl_skeleton

Progress = Callable[[float, str], None] | None
T_EPS_SAMPLE = 1e-3
ShouldCancel = Callable[[], bool] | None

__all__ = ["BadInput", "TaskCancelled", "sample", "variations", "inbetween", "complete", "denoise",
           "score", "encode", "decode", "denoise_windows", "parse_keep", "keep_from_mask", "estimate_noise_mm",
           "DENOISE_SCHEDULES", "MASK_NAMES"]



# =============================================================================================== helpers


_ACTIVE = threading.local()  # .mon: the _Monitor of the task running on this thread (for _FastEps)


class _Monitor:
    """Progress reporting (throttled to 1% steps) and cancellation, polled once per step.

    The newest monitor of a thread is also polled by the network between row chunks of a large
    batch (:class:`_FastEps`), so a cancel is answered within one chunk even when one step is long."""

    def __init__(self, progress: Progress, should_cancel: ShouldCancel, total: int, label: str) -> None:
        self.progress, self.should_cancel = progress, should_cancel
        self.total, self.label = max(int(total), 1), label
        self.done, self._last = 0, -1.0
        _ACTIVE.mon = self

    def check(self) -> None:
        """Raises ``TaskCancelled`` if the caller asked to stop."""
        if self.should_cancel is not None and self.should_cancel():
            if getattr(_ACTIVE, "mon", None) is self:
                _ACTIVE.mon = None
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
                    or (frac > self._last and now - getattr(self, "_t_last", 0.0) >= 0.5)):
                self._last, self._t_last = frac, now
                self.progress(frac, self.label)

    def finish(self) -> None:
        self.report(1.0)
        if getattr(_ACTIVE, "mon", None) is self:
            _ACTIVE.mon = None


def _array(x: object, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be a numeric array, got {type(x).__name__}") from None
    if not np.all(np.isfinite(a)):
        raise BadInput(f"{name} contains NaN or infinite values")
    return a


def _poses_arg(x: object, name: str = "poses", allow_single: bool = True, min_rows: int = 1) -> tuple[np.ndarray, bool]:
    """(N,63) or (63,) -> ((N,63) float32, was_single)."""
    a = _array(x, name)
    single = a.ndim == 1
    if single and allow_single:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != POSE_DIM:
        want = "(N,63) or (63,)" if allow_single else "(N,63)"
        raise BadInput(f"{name} must have shape {want}, got {tuple(a.shape)}")
    if a.shape[0] < min_rows:
        raise BadInput(f"{name} needs at least {min_rows} row(s), got {a.shape[0]}")
    if name != "latents":
        _check_rotations(a, name)
    return a, single


MAX_ROTATION_RAD = 4 * math.pi  # the protocol's bound (dposer_core.protocol.schema.MAX_ROTATION_RAD)


def _check_rotations(a: np.ndarray, name: str) -> None:
    """BadInput when an axis-angle triple of ``a`` (...,3k) has a norm above 4 pi (not radians, or
    values so large that the network would return NaN)."""
    if a.size and float(np.abs(a).max()) > MAX_ROTATION_RAD:
        n = np.linalg.norm(a.reshape(-1, 3).astype(np.float64), axis=1)
    else:
        n = np.linalg.norm(a.reshape(-1, 3), axis=1)
    if n.size and float(n.max()) > MAX_ROTATION_RAD:
        k = int(np.argmax(n))
        per = max(a.shape[-1] // 3, 1)
        raise BadInput(f"{name} holds an axis-angle rotation of {n[k]:.4g} rad (row {k // per}, joint {k % per}); "
                       f"rotations must be at most 4 pi = {MAX_ROTATION_RAD:.2f} rad. Use axis-angle in radians "
                       "(not degrees).")


def _root_arg(x: object | None, n: int, name: str = "root_orient") -> np.ndarray | None:
    if x is None:
        return None
    a = _array(x, name)
    if a.ndim == 1 and a.shape == (3,):
        a = np.broadcast_to(a, (n, 3)).copy()
    if a.shape != (n, 3):
        raise BadInput(f"{name} must have shape ({n},3), got {tuple(a.shape)}")
    if name == "root_orient":
        _check_rotations(a, name)
    return a


def _int_arg(x: object, name: str, lo: int = 1, hi: int | None = None) -> int:
    try:
        v = int(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadInput(f"{name} must be an integer, got {x!r}") from None
    if v != x and not isinstance(x, (np.integer, int)):
        raise BadInput(f"{name} must be an integer, got {x!r}")
    if v < lo or (hi is not None and v > hi):
        raise BadInput(f"{name} must be in [{lo}, {hi if hi is not None else 'inf'}], got {v}")
    return v


def _generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise BadInput(f"seed must be an integer or None, got {seed!r}")
    return _samplers.make_generator(int(seed), device)


def _randn(shape: tuple[int, ...], gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=gen, device=device, dtype=torch.float32)


class _FastEps:
    """``prior.eps_model`` for a batch that shares one time ``t`` (a float): the time embedding and
    every layer's time projection (+ biases) are computed once per ``t`` and cached, so a call costs
    only the x-path matmuls. Numerically the same network (up to float rounding)."""

    _MAX_CACHE = 4096

    def __init__(self, prior: PosePrior) -> None:
        self.prior = prior
        net = prior.net
        self.layers = [net.stem] + [l for b in net.blocks for l in (b.layer1, b.layer2)]
        self.head = net.head
        self.groups = net.config.groups
        self.cache: dict[float, list[torch.Tensor]] = {}
        self.calls = 0
        self.call_log: list[int] | None = None  # batch size of every call while a list (bench)

    def _time_terms(self, t: float) -> list[torch.Tensor]:
        c = self.cache.get(t)
        if c is None:
            net = self.prior.net
            tt = torch.full((1,), t, dtype=torch.float32, device=self.prior.device)
            temb = net.time_embed(timestep_embedding(TIME_SCALE * tt, net.config.time_embed_dim))
            c = [(l.dense.bias + l.dense_t(temb)).contiguous() for l in self.layers]  # each (1,H)
            if len(self.cache) >= self._MAX_CACHE:
                self.cache.clear()
            self.cache[t] = c
        return c

    def chunk_rows(self) -> int:
        """Rows per network call: 512 for the shipped width-512 network (fewer for wider ones), so
        one call takes a fraction of a second (cancel latency), activations stay small (memory),
        and the matmuls stay in cache (this is also faster per row than one huge batch; the
        results are bit-identical because every row is computed independently)."""
        hidden = int(self.head.weight.shape[1])
        return max(128, min(65536, int(512 * (512 / max(hidden, 1)) ** 2)))

    def __call__(self, z: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        """z (B,63) z-space, t float (or a (B,) tensor of equal values) -> eps (B,63).

        Large batches run in row chunks (:meth:`chunk_rows`); between chunks the running task's
        monitor is polled for cancellation and gets fractional progress."""
        if isinstance(t, torch.Tensor):
            t = float(t.reshape(-1)[0])
        self.calls += 1
        if self.call_log is not None:
            self.call_log.append(int(z.shape[0]))
        rows = self.chunk_rows()
        if z.shape[0] <= 2 * rows:  # e.g. a denoise group (600 rows) stays one call
            return self._eval(z, float(t))
        mon = getattr(_ACTIVE, "mon", None)
        starts = range(0, z.shape[0], rows)
        out = []
        for i, s in enumerate(starts):
            if mon is not None:
                mon.check()
                if i:
                    mon.report((mon.done + i / len(starts)) / mon.total)
            out.append(self._eval(z[s:s + rows], float(t)))
        return torch.cat(out, 0)

    def _eval(self, z: torch.Tensor, t: float) -> torch.Tensor:
        with torch.inference_mode():
            c = self._time_terms(float(t))
            g = self.groups
            ls = self.layers
            h = F.silu(F.group_norm(torch.addmm(c[0], z, ls[0].dense.weight.t()), g,
                                    ls[0].norm.weight, ls[0].norm.bias, ls[0].norm.eps))
            for k in range(1, len(ls), 2):
                l1, l2 = ls[k], ls[k + 1]
                u = F.silu(F.group_norm(torch.addmm(c[k], h, l1.dense.weight.t()), g,
                                        l1.norm.weight, l1.norm.bias, l1.norm.eps))
                u = F.silu(F.group_norm(torch.addmm(c[k + 1], u, l2.dense.weight.t()), g,
                                        l2.norm.weight, l2.norm.bias, l2.norm.eps))
                h = h + u
            return F.linear(h, self.head.weight, self.head.bias)


def _fast(prior: PosePrior) -> _FastEps:
    """The cached :class:`_FastEps` of ``prior``."""
    f = getattr(prior, "_tasks_fast_eps", None)
    if f is None or f.prior is not prior:
        f = _FastEps(prior)
        setattr(prior, "_tasks_fast_eps", f)
    return f


def _schedule_coefs(sde: object, n: int, t_max: float, t_min: float
                    ) -> tuple[list[float], list[float], list[float], list[float]]:
    """Truncated schedule t_max -> t_min (n steps) with alpha_t, sigma_t and the DPoser weight w_t
    per step, as Python floats (computed once, not per step)."""
    t = truncated_schedule(n, t_max, t_min).double()
    return (t.tolist(), sde.alpha(t).tolist(), sde.sigma(t).tolist(),  # type: ignore[attr-defined]
            dposer_weight(sde, t).tolist())  # type: ignore[arg-type]


def _cb(mon: _Monitor) -> Callable[[dict], None]:
    return lambda info: mon.tick()


def _np(x: torch.Tensor) -> np.ndarray:
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


def _np_pose(prior: PosePrior, z: torch.Tensor) -> np.ndarray:
    """z-space (...,63) -> float32 axis-angle poses in canonical form (angles <= pi)."""
    return canonical_axis_angle(_np(prior.denormalize(z)))


# On the CPU the tasks run single-threaded up to this many rows per network call: the per-step work
# is small matmuls (weight-bandwidth bound) and many small elementwise ops (forward kinematics), and
# intra-op threads spin-waiting on a busy 2-core machine (Blender's UI, other processes) made them
# up to 100x slower in measurements; even 1,000-frame denoising was 4x faster on one thread there.
SMALL_BATCH_ROWS = 1 << 20


class _cpu_threads:
    """Context manager: ``torch.set_num_threads(1)`` on CPU when ``rows`` < SMALL_BATCH_ROWS."""

    def __init__(self, prior: PosePrior, rows: int) -> None:
        self.active = prior.device.type == "cpu" and rows < SMALL_BATCH_ROWS
        self.saved = torch.get_num_threads()

    def __enter__(self) -> "_cpu_threads":
        if self.active and self.saved != 1:
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.active and self.saved != 1:
            torch.set_num_threads(self.saved)


# =============================================================================================== sample

SAMPLER_DEFAULT_STEPS = {"em": 1000, "ddim": 10, "ode": 25}
DDIM_ETA = 1.0


def _ddim_step(x: torch.Tensor, eps: torch.Tensor, i: int, al: list[float], sg: list[float], eta: float,
               gen: torch.Generator | None) -> torch.Tensor:
    """One DDIM(eta) step from t_i to t_{i+1} on the schedule (al, sg): x0_hat = (x - sigma eps) / alpha,
    then the DDIM update with fresh noise of scale c (eta = 0: deterministic); the last step returns x0_hat."""
    x0 = (x - sg[i] * eps) / al[i]
    if i == len(al) - 1:
        return x0
    a_t, s_t, a_s, s_s = al[i], sg[i], al[i + 1], sg[i + 1]
    c = eta * s_s / s_t * math.sqrt(max(s_t ** 2 - (a_t / a_s) ** 2 * s_s ** 2, 0.0))
    return a_s * x0 + math.sqrt(max(s_s ** 2 - c * c, 0.0)) * eps + c * _randn(tuple(x.shape), gen, x.device)


def _ddim_eta(prior: PosePrior, x: torch.Tensor, steps: int, t_start: float, eta: float,
              gen: torch.Generator | None, mon: _Monitor, t_end: float = T_EPS_SAMPLE) -> torch.Tensor:
    """DDIM-style few-step sampler with stochasticity ``eta`` on the sub-VP schedule (Song et al.
    2021, DDIM Eq. 12, written with the sub-VP alpha_t and std sigma_t): at times
    linspace(t_start, t_end, steps), x0 = (x - sigma_t eps)/alpha_t and
    x_s = alpha_s x0 + sqrt(sigma_s^2 - c^2) eps + c z, with c = eta sigma_s/sigma_t sqrt(sigma_t^2 -
    (alpha_t/alpha_s)^2 sigma_s^2) (the forward transition's std). eta = 0 is deterministic DDIM
    (``samplers.sample_ddim``); eta = 1 is ancestral sampling. The last step returns x0.
    x (B,D) at t_start -> (B,D)."""
    if eta == 0.0:
        return _samplers.sample_ddim(_fast(prior), prior.sde, x, steps=steps, t_start=t_start, t_end=t_end,
                                     callback=_cb(mon))
    fe, sde = _fast(prior), prior.sde
    ts = np.linspace(t_start, t_end, steps).tolist()
    co = torch.tensor(ts, dtype=torch.float64)
    al, sg = sde.alpha(co).tolist(), sde.sigma(co).tolist()
    for i, t in enumerate(ts):
        x = _ddim_step(x, fe(x, t), i, al, sg, eta, gen)
        mon.tick()
    return x


def sample(prior: PosePrior, n: int, sampler: str = "ddim", steps: int | None = None, seed: int | None = None,
           eta: float = DDIM_ETA, progress: Progress = None, should_cancel: ShouldCancel = None) -> np.ndarray:
    """Draws ``n`` poses from the prior.

    Args:
        n: number of poses (>= 1).
        sampler: "em" (Euler-Maruyama on the reverse SDE, 1000 steps, the paper's), "ddim"
            (DDIM-style few-step, 10 steps, stochasticity ``eta``) or "ode" (probability-flow ODE,
            fixed-step Heun, 25 steps = 50 network calls).
        steps: overrides the sampler's default number of steps.
        eta: DDIM stochasticity (1.0 = ancestral, default; 0.0 = deterministic DDIM). Measured on
            our val poses, deterministic 10-step DDIM / the ODE gave far too spread-out poses
            (Frechet distance ~15x EM-1000's), eta = 1 with 10 steps ~2.5x and with 20 steps ~1x.
    Returns:
        (n,63) float32 poses.
    """
    n = _int_arg(n, "n", 1, 1_000_000)
    if sampler not in SAMPLER_DEFAULT_STEPS:
        raise BadInput(f"sampler must be one of {', '.join(SAMPLER_DEFAULT_STEPS)}, got {sampler!r}")
    steps = SAMPLER_DEFAULT_STEPS[sampler] if steps is None else _int_arg(steps, "steps", 1, 100_000)
    dev = prior.device
    gen = _generator(seed, dev)
    mon = _Monitor(progress, should_cancel, steps, f"sample ({sampler})")
    mon.check()
    fe = _fast(prior)
    with _cpu_threads(prior, n), torch.inference_mode():
        x = prior.sde.prior_sample((n, prior.dim), generator=gen, device=dev)
        if sampler == "em":
            z = _samplers.sample_euler_maruyama(fe, prior.sde, x, steps=steps, generator=gen, callback=_cb(mon))
        elif sampler == "ddim":
            z = _ddim_eta(prior, x, steps, prior.sde.T, eta, gen, mon)
        else:
            z = _samplers.ode_solve(fe, prior.sde, x, prior.sde.T, 1e-3, method="heun", steps=steps, callback=_cb(mon))
        out = _np_pose(prior, z)
    mon.finish()
    return out


def variations(prior: PosePrior, pose: np.ndarray, strength: float, n: int, seed: int | None = None,
               sampler: str = "ddim", steps: int | None = None,
               progress: Progress = None, should_cancel: ShouldCancel = None) -> np.ndarray:
    """SDEdit-style variations: noise ``pose`` to t = ``strength`` and solve back to t = 0.

    Args:
        pose: (63,) (or (1,63)) the animator's pose.
        strength: in (0, 1]: small keeps the pose recognisable (0.1-0.3); 1.0 is a free sample.
        n: number of variations.
        sampler: "ddim" (default; max(4, round(25 strength)) steps) or "em" (max(10, round(1000 strength))).
    Returns:
        (n,63) float32.
    """
    p, _ = _poses_arg(pose, "pose")
    if p.shape[0] != 1:
        raise BadInput(f"pose must be a single pose (63,), got {p.shape[0]} poses")
    try:
        strength = float(strength)
    except (TypeError, ValueError):
        raise BadInput(f"strength must be a number in (0, 1], got {strength!r}") from None
    if not 0.0 < strength <= 1.0:
        raise BadInput(f"strength must be in (0, 1], got {strength}")
    n = _int_arg(n, "n", 1, 1_000_000)
    if sampler not in ("ddim", "em"):
        raise BadInput(f"sampler must be 'ddim' or 'em' for variations, got {sampler!r}")
    if steps is None:
        steps = max(4, round(25 * strength)) if sampler == "ddim" else max(10, round(1000 * strength))
    steps = _int_arg(steps, "steps", 1, 100_000)
    dev = prior.device
    gen = _generator(seed, dev)
    mon = _Monitor(progress, should_cancel, steps, "variations")
    mon.check()
    t0 = max(strength * prior.sde.T, 2e-3)
    fe = _fast(prior)
    with _cpu_threads(prior, n), torch.inference_mode():
        z0 = prior.normalize(p).expand(n, -1)
        x = prior.sde.perturb(z0, t0, _randn((n, prior.dim), gen, dev))
        if sampler == "ddim":
            z = _ddim_eta(prior, x, steps, t0, DDIM_ETA, gen, mon)
        else:
            z = _samplers.sample_euler_maruyama(fe, prior.sde, x, steps=steps, t_start=t0, generator=gen,
                                                callback=_cb(mon))
        out = _np_pose(prior, z)
    mon.finish()
    return out


# =============================================================================================== encode / decode

ODE_DEFAULTS = {"method": "heun", "steps": 20}
T_EPS = 1e-3


def _ode(prior: PosePrior, x: torch.Tensor, t_from: float, t_to: float, method: str, steps: int | None,
         mon: _Monitor | None) -> torch.Tensor:
    m = method.lower()
    fe = _fast(prior)
    cb = None
    if mon is not None:
        if m in ("euler", "heun"):
            cb = _cb(mon)
        else:  # adaptive: progress by time covered
            span = abs(t_to - t_from)
            base = mon.done

            def cb(info: dict) -> None:
                mon.report((base + mon.total * 0.5 * abs(info["t"] - t_from) / span) / mon.total
                           if mon.total > 1 else abs(info["t"] - t_from) / span)
                mon.check()
    return _samplers.ode_solve(fe, prior.sde, x, t_from, t_to, method=method, steps=steps, callback=cb)


def encode(prior: PosePrior, poses: np.ndarray, method: str = ODE_DEFAULTS["method"],
           steps: int | None = ODE_DEFAULTS["steps"], seed: int | None = None,
           progress: Progress = None, should_cancel: ShouldCancel = None) -> np.ndarray:
    """Poses -> ODE latents (probability-flow ODE from t = 1e-3 to 1 in z-space).

    Args:
        poses: (N,63) or (63,).
        method: "heun" (fixed steps, default 20 steps = 40 network calls), "euler" or an adaptive
            scipy method ("RK45", with rtol = atol = 1e-4 as the official code).
        seed: unused (the ODE is deterministic); accepted for a uniform signature.
    Returns:
        (N,63) float32 latents (or (63,) for a single pose).
    """
    p, single = _poses_arg(poses, "poses")
    mon = _Monitor(progress, should_cancel, steps or 1, "encode")
    mon.check()
    with _cpu_threads(prior, len(p)), torch.inference_mode():
        lat = _ode(prior, prior.normalize(p), T_EPS, prior.sde.T, method, steps, mon)
    mon.finish()
    out = _np(lat)
    return out[0] if single else out


def decode(prior: PosePrior, latents: np.ndarray, method: str = ODE_DEFAULTS["method"],
           steps: int | None = ODE_DEFAULTS["steps"], seed: int | None = None,
           progress: Progress = None, should_cancel: ShouldCancel = None) -> np.ndarray:
    """ODE latents -> poses (the inverse of :func:`encode`). latents (N,63)|(63,) -> (N,63)|(63,)."""
    lat, single = _poses_arg(latents, "latents")
    mon = _Monitor(progress, should_cancel, steps or 1, "decode")
    mon.check()
    with _cpu_threads(prior, len(lat)), torch.inference_mode():
        z = _ode(prior, torch.as_tensor(lat, device=prior.device), prior.sde.T, T_EPS, method, steps, mon)
        out = _np_pose(prior, z)
    mon.finish()
    return out[0] if single else out


# =============================================================================================== inbetween

EASES = ("linear", "ease_in_out", "ease_in", "ease_out")
# Time to which the keys are ODE-encoded for in-betweening. The paper encodes to T = 1; measured on
# our val clips (hold-out K = 5/15/30), slerping T = 1 latents of nearby keys leaves the pose
# manifold (4x slerp's error, worse plausibility), while latents at t = 0.4 keep slerp-like error
# with the prior's pull at decode time. ``t_latent=1.0`` gives the paper's variant.
INBETWEEN_T_LATENT = 0.4
# After decoding, the in-between frames take a few DPoser-regulariser steps (Algorithm 1 at small t,
# one noise draw shared by all frames so the motion stays smooth) anchored to the decoded path.
# Measured on the val clips (K = 5/15/30): plausibility 1.52/1.60/1.61 -> 1.44/1.51/1.52 (slerp:
# 1.48/1.57/1.58) for +0.5/+0.8/+0.5 mm MPJPE. ``refine_steps=0`` turns it off.
INBETWEEN_REFINE = {"steps": 20, "lr": 0.3, "t_max": 0.15, "t_min": 0.02, "anchor": 0.3}


def _ease(u: np.ndarray, ease: str) -> np.ndarray:
    if ease == "linear":
        return u
    if ease == "ease_in_out":
        return u * u * (3.0 - 2.0 * u)
    if ease == "ease_in":
        return u * u
    return 1.0 - (1.0 - u) ** 2  # ease_out


def _slerp_latent(a: torch.Tensor, b: torch.Tensor, u: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Slerp of whole latent vectors (one angle over all 63 dims; unnormalised vectors, as the
    official code), with a linear fallback when a and b are nearly parallel.
    a, b (D,), u (K,) -> (K,D)."""
    na, nb = a.norm(), b.norm()
    cos = (a @ b / (na * nb).clamp_min(1e-12)).clamp(-1.0, 1.0)
    omega = torch.acos(cos)
    so = torch.sin(omega)
    u = u[:, None]
    if float(so) < eps:
        return (1.0 - u) * a + u * b
    return (torch.sin((1.0 - u) * omega) / so) * a + (torch.sin(u * omega) / so) * b


def _refine_frames(prior: PosePrior, z: torch.Tensor, steps: int, gen: torch.Generator | None,
                   mon: "_Monitor") -> torch.Tensor:
    """A few DPoser-regulariser steps on a run of frames, anchored to where they started.

    Gradient descent on ``||z - sg(x0_hat(z_t, t))||^2 + anchor ||z - z_start||^2`` (Algorithm 1,
    Eq. 8-9) with t running ``t_max -> t_min``; one noise draw per step is shared by every frame.
    z: (F,63) in z-space -> (F,63).
    """
    cfg = INBETWEEN_REFINE
    z_start, fe = z, _fast(prior)
    for t in np.linspace(cfg["t_max"], cfg["t_min"], steps):
        a, s = float(prior.sde.alpha(float(t))), float(prior.sde.sigma(float(t)))
        xt = a * z + s * _randn((1, prior.dim), gen, z.device)
        x0_hat = (xt - s * fe(xt, float(t))) / a
        z = z - cfg["lr"] * ((z - x0_hat) + cfg["anchor"] * (z - z_start))
        mon.tick()
    return z


def inbetween(prior: PosePrior, keys: np.ndarray, n_frames: int, ease: str = "linear",
              root_orient: np.ndarray | None = None, method: str = ODE_DEFAULTS["method"],
              steps: int | None = ODE_DEFAULTS["steps"], seed: int | None = None, t_latent: float | None = None,
              refine_steps: int = INBETWEEN_REFINE["steps"],
              progress: Progress = None, should_cancel: ShouldCancel = None) -> dict[str, np.ndarray | None]:
    """In-between frames by slerping ODE latents of the keys.

    The keys are ODE-encoded (probability-flow ODE from t = 1e-3 to ``t_latent``), consecutive
    latents are slerped (linear fallback when nearly parallel) at the eased parameter, and every
    frame is decoded in one batch. The decoded key
    round-trip residual is cross-faded out so the motion is continuous, and the keys themselves are
    pasted: frame 0, every (n_frames+1)-th frame and the last frame equal the keys *exactly*.

    Args:
        keys: (M,63), M >= 2 (a chain over M-1 segments).
        n_frames: in-between frames per segment (K >= 0); total frames (M-1)(K+1)+1 (K+2 for two keys).
        ease: "linear", "ease_in_out", "ease_in" or "ease_out" (applied per segment).
        root_orient: optional (M,3) root orientation per key, slerped on quaternions with the same
            eased parameter (ends exact).
        method, steps: ODE solver (see :func:`encode`).
        t_latent: encode time (default ``INBETWEEN_T_LATENT`` = 0.4; 1.0 = the paper's full encode).
        refine_steps: DPoser-regulariser steps on the decoded in-between frames (0 = none); see
            ``INBETWEEN_REFINE``. ``seed`` (default 0 here) fixes their noise.
    Returns:
        dict(poses ((M-1)(K+1)+1, 63) float32, root_orient (same, 3) float32 or None).
    """
    k, _ = _poses_arg(keys, "keys", allow_single=False, min_rows=2)
    K = _int_arg(n_frames, "n_frames", 0, 100_000)
    if ease not in EASES:
        raise BadInput(f"ease must be one of {', '.join(EASES)}, got {ease!r}")
    M = k.shape[0]
    ro = _root_arg(root_orient, M)
    total = (M - 1) * (K + 1) + 1
    dev = prior.device
    n_steps = steps or 1
    refine_steps = _int_arg(refine_steps, "refine_steps", 0, 10_000) if K else 0
    gen = _generator(0 if seed is None else seed, dev)
    mon = _Monitor(progress, should_cancel, 2 * n_steps + refine_steps, "in-between")
    mon.check()
    u = np.arange(1, K + 1, dtype=np.float64) / (K + 1)
    ue = torch.as_tensor(_ease(u, ease), dtype=torch.float32, device=dev)  # (K,)
    with _cpu_threads(prior, M + (M - 1) * K), torch.inference_mode():
        zk = prior.normalize(k)  # (M,63)
        t_lat = float(INBETWEEN_T_LATENT if t_latent is None else t_latent)
        if not T_EPS < t_lat <= prior.sde.T:
            raise BadInput(f"t_latent must be in ({T_EPS}, {prior.sde.T}], got {t_lat}")
        lat = _ode(prior, zk, T_EPS, t_lat, method, steps, mon)  # (M,63)
        # batch: decoded keys (M) then the in-betweens of every segment
        parts = [lat] + [_slerp_latent(lat[s], lat[s + 1], ue) for s in range(M - 1)] if K else [lat]
        zs = _ode(prior, torch.cat(parts, 0), t_lat, T_EPS, method, steps, mon)
        resid = zk - zs[:M]  # round-trip residual at the keys (z-space)
        frames = [zk[0:1]]
        for s in range(M - 1):
            if K:
                mid = zs[M + s * K:M + (s + 1) * K]
                w = ue[:, None]
                frames.append(mid + (1.0 - w) * resid[s] + w * resid[s + 1])
            frames.append(zk[s + 1:s + 2])
        z_all = torch.cat(frames, 0)
        inner = torch.ones(total, dtype=torch.bool, device=dev)
        inner[torch.arange(M, device=dev) * (K + 1)] = False
        if refine_steps:
            z_all[inner] = _refine_frames(prior, z_all[inner], refine_steps, gen, mon)
        poses = _np_pose(prior, z_all)
    key_rows = np.arange(M) * (K + 1)
    poses[key_rows] = k  # exact keys
    out_root = None
    if ro is not None:
        q = axis_angle_to_quat(torch.as_tensor(ro, dtype=torch.float64))
        rows = [q[0:1]]
        uu = torch.as_tensor(_ease(u, ease), dtype=torch.float64)
        for s in range(M - 1):
            if K:
                rows.append(quat_slerp(q[s].expand(K, 4), q[s + 1].expand(K, 4), uu))
            rows.append(q[s + 1:s + 2])
        out_root = quat_to_axis_angle(torch.cat(rows, 0)).numpy().astype(np.float32)
        out_root[key_rows] = ro
    mon.finish()
    assert poses.shape[0] == total
    return {"poses": poses, "root_orient": out_root}


# =============================================================================================== score

SCORE_TIMES = (0.05, 0.1, 0.15, 0.2)
SCORE_DRAWS = 4
SCORE_SEED = 1234


def _score_z(prior: PosePrior, z: torch.Tensor, chunk: int = 8192, mon: "_Monitor | None" = None) -> torch.Tensor:
    """Per-joint plausibility of z-space poses (N,63) -> (N,21): the squared noise-prediction error
    ||eps_hat - eps||^2 (summed over each joint's 3 dims), averaged over ``SCORE_TIMES`` and
    ``SCORE_DRAWS`` noise draws from a fixed seed (deterministic). Lower = more plausible."""
    fe = _fast(prior)
    dev = z.device
    N = z.shape[0]
    out = torch.zeros(N, NUM_BODY_JOINTS, device=dev)
    gen = _samplers.make_generator(SCORE_SEED, dev)
    D = z.shape[1]
    noise_all = torch.randn((len(SCORE_TIMES), SCORE_DRAWS, 1, D), generator=gen, device=dev)
    # common random numbers across poses: the same draws for every pose (comparable scores)
    for s in range(0, N, chunk):
        zz = z[s:s + chunk]
        n = zz.shape[0]
        acc = torch.zeros(n, NUM_BODY_JOINTS, device=dev)
        for i, t in enumerate(SCORE_TIMES):
            eps = noise_all[i].expand(SCORE_DRAWS, n, D).reshape(-1, D)
            x = prior.sde.perturb(zz.repeat(SCORE_DRAWS, 1), t, eps)
            err = (fe(x, t) - eps).reshape(SCORE_DRAWS, n, NUM_BODY_JOINTS, 3).pow(2).sum(-1)
            acc += err.mean(0)
            if mon is not None:
                mon.tick()
        out[s:s + chunk] = acc / len(SCORE_TIMES)
    return out


def score(prior: PosePrior, poses: np.ndarray, seed: int | None = None, progress: Progress = None,
          should_cancel: ShouldCancel = None) -> dict[str, np.ndarray]:
    """Plausibility of each pose and joint under the prior (lower = more plausible).

    The value is the denoising (noise-prediction) error averaged over a few small diffusion times
    and noise draws with a fixed internal seed, so it is deterministic (``seed`` is ignored).
    A typical training pose scores low; implausible joints stand out in ``joints``.

    Args:
        poses: (N,63) or (63,).
    Returns:
        dict(pose (N,) float32, joints (N,21) float32).
    """
    p, _ = _poses_arg(poses, "poses")
    mon = _Monitor(progress, should_cancel, len(SCORE_TIMES) * math.ceil(len(p) / 8192), "score")
    mon.check()
    with _cpu_threads(prior, len(p) * SCORE_DRAWS), torch.inference_mode():
        j = _score_z(prior, prior.normalize(p), mon=mon)
    mon.finish()
    jn = _np(j)
    return {"pose": jn.mean(1), "joints": jn}


# =============================================================================================== complete


def _clip(value: object, limit: int = 60) -> str:
    """repr of echoed input, cut to ~limit characters (a 100k-character name stays out of messages)."""
    text = repr(value[:limit + 1] if isinstance(value, str) else value)
    return text if len(text) <= limit + 2 else text[:limit] + f"... ({len(value) if isinstance(value, str) else '?'} chars)"


def keep_from_mask(mask: str) -> np.ndarray:
    """(21,) bool keep-array for an occlusion mask name (the masked joints are hidden)."""
    if mask not in BODY_MASKS:
        raise BadInput(f"unknown mask {_clip(mask)}; known masks: {', '.join(sorted(BODY_MASKS))}")
    keep = np.ones(NUM_BODY_JOINTS, bool)
    keep[list(BODY_MASKS[mask])] = False
    return keep


def parse_keep(keep: object) -> np.ndarray:
    """A keep specification -> (21,) bool. Accepts a (21,) bool array, a sequence of joint names
    (``body_joint_names()``, e.g. "left_knee") or of indices 0..20 into the body joints, or a
    comma-separated string of names."""
    names = body_joint_names()
    if isinstance(keep, str):
        keep = [s.strip() for s in keep.split(",") if s.strip()]
    if isinstance(keep, torch.Tensor):
        keep = keep.cpu().numpy()
    a = np.asarray(keep, dtype=object) if not isinstance(keep, np.ndarray) else keep
    if a.dtype == bool:
        if a.shape != (NUM_BODY_JOINTS,):
            raise BadInput(f"keep mask must have shape (21,), got {a.shape}")
        return a.astype(bool)
    out = np.zeros(NUM_BODY_JOINTS, bool)
    for item in list(a.reshape(-1)):
        if isinstance(item, (str, np.str_)):
            if item not in names:
                raise BadInput(f"unknown joint name {_clip(item)}; known joints: {', '.join(names)}")
            out[names.index(item)] = True
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not 0 <= int(item) < NUM_BODY_JOINTS:
                raise BadInput(f"joint index {item} out of range 0..20")
            out[int(item)] = True
        else:
            raise BadInput(f"keep entries must be joint names or indices, got {item!r}")
    return out


COMPLETE_METHODS = ("dposer", "inpaint")
COMPLETE_METHOD = "inpaint"
INPAINT_STEPS = 60
# "inpaint": the best-scored sample of each pose is then polished by the DPoser regulariser from where
# it is (start="pose"), and all H are ranked again by score; None = no polish.
INPAINT_REFINE: dict[str, float] | None = {"steps": 60, "rounds": 1, "lr": 0.05, "t_max": 0.15, "t_min": 0.03}


def _inpaint(prior: PosePrior, obs: torch.Tensor, kd: torch.Tensor, steps: int, gen: torch.Generator | None,
             mon: "_Monitor") -> torch.Tensor:
    """Conditional sampling by replacement (issue 11): the ancestral DDIM sampler (eta 1) from t = 1,
    with the kept dims replaced at every step by their forward-noised observed values
    ``alpha_t obs + sigma_t z``; the hidden dims are a sample of the prior given the kept ones, so the
    hypotheses differ. obs (B,63) z-space, kd (63,) bool -> x (B,63) z-space (kept dims = obs)."""
    fe, sde = _fast(prior), prior.sde
    ts = np.linspace(sde.T, T_EPS_SAMPLE, steps).tolist()
    co = torch.tensor(ts, dtype=torch.float64)
    al, sg = sde.alpha(co).tolist(), sde.sigma(co).tolist()
    shape = tuple(obs.shape)
    x = _randn(shape, gen, obs.device)
    for i, t in enumerate(ts):
        x = torch.where(kd, al[i] * obs + sg[i] * _randn(shape, gen, obs.device), x)
        x = _ddim_step(x, fe(x, t), i, al, sg, 1.0, gen)
        mon.tick()
    return torch.where(kd, obs, x)


def complete(prior: PosePrior, pose: np.ndarray, keep: object, n_hypotheses: int = 10, steps: int = 200,
             seed: int | None = None, root_orient: np.ndarray | None = None, lr: float = 0.1,
             t_max: float = 0.2, t_min: float = 0.05, rounds: int = 2, hard_keep: bool = False,
             progress: Progress = None, should_cancel: ShouldCancel = None,
             method: str | None = None, start: str = "noise") -> dict[str, np.ndarray]:
    """Pose completion with the DPoser regulariser (paper Algorithm 1, official schedule).

    Variables live in z-space; the hidden dims start as N(0,1), the kept ones at their values.
    ``rounds`` (2) outer rounds of ``steps/rounds`` Adam steps (lr 0.1); in round ``it`` the loss is
    ``100/(1+it) MSE(kept dims) + 0.1 (it+1) w_t ||x - sg(x0_hat)||^2`` with t running linearly
    t_max -> t_min within each round and a fresh noise draw per step (gradient in closed form, no
    back-propagation through the network). All poses x hypotheses are one batch. The kept dims are
    pasted back at the end (bit-exact copies of the input), and the hypotheses are sorted by the
    prior's own :func:`score` (best first); no ground truth is used.

    Args:
        pose: (N,63) or (63,) poses (the hidden joints' values are ignored).
        keep: which of the 21 body joints are kept (see :func:`parse_keep`).
        n_hypotheses: H >= 1.
        steps: total optimisation steps (200 = 2 x 100).
        root_orient: optional (N,3); passed through unchanged (the prior ignores it).
        method: "dposer" (the regulariser above) or "inpaint" (:func:`_inpaint`, ``INPAINT_STEPS``
            sampler steps instead of the optimisation, then ``INPAINT_REFINE`` on the best-scored
            hypothesis); None = ``COMPLETE_METHOD``.
        start: "noise" (hidden dims start as N(0,1), the paper's) or "pose" (at the given pose's values).
            With method "inpaint", ``steps``, ``rounds``, ``lr``, ``t_max``, ``t_min``, ``hard_keep`` and
            ``start`` do not apply (measured on held-out poses, issue 11: best of 10 and the score-ranked
            first both better than "dposer", the hypotheses about twice as spread, 2-3x faster).
    Returns:
        dict(poses (N,H,63) float32 best first, scores (N,H) float32 ascending,
             root_orient (N,3) if given).
    """
    p, _ = _poses_arg(pose, "pose")
    keep_b = parse_keep(keep)
    H = _int_arg(n_hypotheses, "n_hypotheses", 1, 10_000)
    steps = _int_arg(steps, "steps", 0, 100_000)
    rounds = _int_arg(rounds, "rounds", 1, 100)
    method = COMPLETE_METHOD if method is None else method
    if method not in COMPLETE_METHODS:
        raise BadInput(f"method must be one of {', '.join(COMPLETE_METHODS)}, got {method!r}")
    if method == "inpaint":
        steps, rounds = 0, 1
    N = p.shape[0]
    ro = _root_arg(root_orient, N)
    dev = prior.device
    gen = _generator(seed, dev)
    mon = _Monitor(progress, should_cancel, (INPAINT_STEPS if method == "inpaint" else steps) + 1, "complete")
    mon.check()
    kd = torch.as_tensor(np.repeat(keep_b, 3), device=dev)  # (63,) bool
    n_obs = int(kd.sum())
    fe = _fast(prior)
    sde = prior.sde
    B = N * H
    with _cpu_threads(prior, B), torch.inference_mode():
        obs = prior.normalize(p).repeat_interleave(H, 0)  # (B,63)
        x = obs.clone() if start == "pose" else torch.where(kd, obs, _randn((B, prior.dim), gen, dev))
        if method == "inpaint":
            x = _inpaint(prior, obs, kd, INPAINT_STEPS, gen, mon)
        m = torch.zeros_like(x)
        v = torch.zeros_like(x)
        b1, b2, aeps = 0.9, 0.999, 1e-8
        per_round = [steps // rounds + (1 if r < steps % rounds else 0) for r in range(rounds)]
        kdf = kd.to(x.dtype)
        step = 0
        for it in range(rounds):
            n_r = per_round[it]
            if n_r == 0:
                continue
            ts, alphas, sigmas, weights = _schedule_coefs(sde, n_r, t_max, t_min)
            c_data = 100.0 / (1 + it) * 2.0 / max(n_obs, 1)
            c_prior = 0.1 * (it + 1) * 2.0
            for t, a_t, s_t, w_t in zip(ts, alphas, sigmas, weights):
                z = _randn((B, prior.dim), gen, dev)
                xt = a_t * x + s_t * z
                x0_hat = (xt - s_t * fe(xt, t)) / a_t
                g = c_prior * w_t * (x - x0_hat)
                if n_obs:
                    g = g + c_data * kdf * (x - obs)
                step += 1
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                mhat = m / (1 - b1 ** step)
                vhat = v / (1 - b2 ** step)
                x = x - lr * mhat / (vhat.sqrt() + aeps)
                if hard_keep:
                    x = torch.where(kd, obs, x)
                mon.tick()
        poses = _np_pose(prior, x).reshape(N, H, POSE_DIM)
        dims = np.repeat(keep_b, 3)
        poses[:, :, dims] = p[:, None, dims]  # bit-exact kept joints
        # rank by the prior's own score of the returned poses (no ground truth)
        scn = _np(_score_z(prior, prior.normalize(poses.reshape(B, POSE_DIM))).mean(1)).reshape(N, H)
    order = np.argsort(scn, axis=1, kind="stable")
    poses = np.take_along_axis(poses, order[:, :, None], 1)
    scn = np.take_along_axis(scn, order, 1)
    if method == "inpaint" and INPAINT_REFINE:
        rf = INPAINT_REFINE
        r1 = complete(prior, poses[:, 0], keep_b, n_hypotheses=1, steps=int(rf["steps"]), rounds=int(rf["rounds"]),
                      lr=float(rf["lr"]), t_max=float(rf["t_max"]), t_min=float(rf["t_min"]),
                      seed=None if seed is None else seed + 1, method="dposer", start="pose",
                      should_cancel=should_cancel)
        poses[:, 0], scn[:, 0] = r1["poses"][:, 0], r1["scores"][:, 0]
        order = np.argsort(scn, axis=1, kind="stable")
        poses = np.take_along_axis(poses, order[:, :, None], 1)
        scn = np.take_along_axis(scn, order, 1)
    mon.finish()
    out: dict[str, np.ndarray] = {"poses": poses, "scores": scn}
    if ro is not None:
        out["root_orient"] = ro
    return out


# =============================================================================================== denoise

# noise level (mm) -> (steps per round, rounds, t_max, t_min)   (official DPoser motion-denoise settings)
DENOISE_SCHEDULES: dict[int, tuple[int, int, float, float]] = {
    20: (40, 3, 0.2, 0.05),
    40: (60, 3, 0.25, 0.05),
    100: (80, 3, 0.15, 0.05),
}


def _schedule_for(noise_mm: float) -> tuple[int, int, float, float]:
    if noise_mm < 30.0:
        return DENOISE_SCHEDULES[20]
    if noise_mm < 70.0:
        return DENOISE_SCHEDULES[40]
    return DENOISE_SCHEDULES[100]


def estimate_noise_mm(joints: np.ndarray) -> float:
    """Per-coordinate Gaussian noise std (mm) of a joint sequence (T,22,3) metres (or (W,T,22,3)),
    from the robust spread of second temporal differences: for white noise of std s, the second
    difference has std sqrt(6) s (clean 30 fps motion adds little). Returns 0 for T < 3."""
    j = np.asarray(joints, np.float64)
    if j.shape[-3] < 3:
        return 0.0
    d2 = j[..., 2:, :, :] - 2 * j[..., 1:-1, :, :] + j[..., :-2, :, :]
    mad = np.median(np.abs(d2 - np.median(d2)))
    return float(1000.0 * mad / 0.6745 / math.sqrt(6.0))


def _kabsch_root(joints: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """Root orientation (axis-angle (...,3)) aligning the rest pelvis/hips/spine1 to ``joints``
    (...,22,3) (those four positions depend on the root orientation only)."""
    idx = [0, 1, 2, 3]
    src = (rest[idx] - rest[0]).to(joints.dtype)  # (4,3)
    tgt = joints[..., idx, :] - joints[..., :1, :]  # (...,4,3)
    h = src.transpose(-1, -2) @ tgt  # (...,3,3) = sum src^T tgt
    u, _, vt = torch.linalg.svd(h)
    d = torch.sign(torch.det(vt.transpose(-1, -2) @ u.transpose(-1, -2)))
    diag = torch.ones(h.shape[:-2] + (3,), dtype=h.dtype, device=h.device)
    diag[..., 2] = d
    r = vt.transpose(-1, -2) @ torch.diag_embed(diag) @ u.transpose(-1, -2)
    return matrix_to_axis_angle(r)


def _windows(T: int, L: int, overlap: int) -> list[int]:
    if T <= L:
        return [0]
    hop = max(L - overlap, 1)
    starts = list(range(0, T - L + 1, hop))
    if starts[-1] != T - L:
        starts.append(T - L)
    return starts


def _blend_weights(L: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    w = np.ones(L)
    o = min(overlap, L // 2)
    if o > 0:
        ramp = np.arange(1, o + 1) / (o + 1)
        if not first:
            w[:o] = ramp
        if not last:
            w[-o:] = ramp[::-1]
    return w


# Temporal smoothness of the denoiser (issue 11): weight of the squared joint acceleration
# ``w_acc it^2 mean ||J_{f+1} - 2 J_f + J_{f-1}||^2`` in round it (metres; 30 fps): none in the first
# round (the fit converges first), then it removes the frame-to-frame jitter of the stochastic prior term.
# (The prior weight w_prior is 0.03, not the official 0.1: on held-out windows 0.1 pulled the fit toward
# the training styles, 23.7 -> 19.7 mm at 40 mm noise, 19.4 -> 17.2 at 20 mm, 32.6 -> 32.8 at 100 mm.)
# Per noise level like DENOISE_SCHEDULES; tuned on held-out windows so the result's mean acceleration
# stays near the clean motion's (<= 1.25x) at a small MPJPE cost.
DENOISE_ACC_WEIGHTS: dict[int, float] = {20: 500.0, 40: 160.0, 100: 200.0}


def _acc_weight_for(noise_mm: float) -> float:
    return DENOISE_ACC_WEIGHTS[20 if noise_mm < 30.0 else 40 if noise_mm < 70.0 else 100]


def _fit_windows(prior: PosePrior, target: torch.Tensor, init_pose: torch.Tensor, root: torch.Tensor,
                 trans: torch.Tensor, fit_root: bool, fit_trans: bool, schedule: tuple[int, int, float, float],
                 use_prior: bool, gen: torch.Generator | None, mon: _Monitor, lr: float = 0.03,
                 w_data: float = 100.0, w_temp: float = 10.0, w_prior: float = 0.03, w_acc: float | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fits W windows jointly (one batch). target (W,L,22,3); init_pose (W,L,63); root, trans (W,L,3).
    Losses per window, round ``it``: data ``w_data/(1+it^2) mean ||J - J_noisy||``, temporal
    ``w_temp (1+it) mean ||J_{f+1} - J_f||``, acceleration ``w_acc it^2 mean ||J_{f+1} - 2J_f + J_{f-1}||^2``
    (callers pass :func:`_acc_weight_for`; None = 0), prior ``w_prior (1+it) sum 1/2 (x - sg(x0_hat))^2 / L``
    (x the z-scored pose; closed-form gradient). Returns fitted (pose, root, trans)."""
    steps_per_round, rounds, t_max, t_min = schedule
    W, L = target.shape[:2]
    dev = target.device
    fe = _fast(prior)
    sde = prior.sde
    rest = torch.as_tensor(smpl_skeleton().rest_joints[:22], dtype=torch.float32, device=dev)
    pose = init_pose.clone().requires_grad_(True)
    params = [pose]
    root_v = root.clone().requires_grad_(fit_root)
    trans_v = trans.clone().requires_grad_(fit_trans)
    if fit_root:
        params.append(root_v)
    if fit_trans:
        params.append(trans_v)
    opt = torch.optim.Adam(params, lr=lr)
    inv_std = 1.0 / prior.std
    for it in range(rounds):
        ts, alphas, sigmas, _ = _schedule_coefs(sde, steps_per_round, t_max, t_min)
        cd, ct, cp = w_data / (1 + it * it), w_temp * (1 + it), w_prior * (1 + it)
        ca = (w_acc or 0.0) * it * it
        for t, a_t, s_t in zip(ts, alphas, sigmas):
            opt.zero_grad(set_to_none=False)
            j = forward_kinematics(pose, root_v, trans_v)[0]  # (W,L,22,3)
            d = ((j - target).pow(2).sum(-1) + 1e-12).sqrt().mean((1, 2))  # (W,)
            loss = cd * d.sum()
            if L > 1:
                vel = ((j[:, 1:] - j[:, :-1]).pow(2).sum(-1) + 1e-12).sqrt().mean((1, 2))
                loss = loss + ct * vel.sum()
            if L > 2 and ca > 0:
                acc = (j[:, 2:] - 2 * j[:, 1:-1] + j[:, :-2]).pow(2).sum(-1).mean((1, 2))
                loss = loss + ca * acc.sum()
            loss.backward()
            if use_prior:
                with torch.inference_mode():
                    x = ((pose.detach() - prior.mean) * inv_std).reshape(W * L, -1)
                    z = _randn(x.shape, gen, dev)
                    xt = a_t * x + s_t * z
                    x0_hat = (xt - s_t * fe(xt, t)) / a_t
                    gp = (cp / L) * (x - x0_hat).reshape(W, L, -1) * inv_std
                pose.grad.add_(gp)
            opt.step()
            mon.tick()
    return pose.detach(), root_v.detach(), trans_v.detach()


def denoise_windows(prior: PosePrior, joints: np.ndarray, noise_mm: float, use_prior: bool = True,
                    seed: int | None = 0, progress: Progress = None, should_cancel: ShouldCancel = None) -> np.ndarray:
    """Batch form for evaluation: W independent canonical windows (root at the origin, zero root
    orientation and translation held fixed), fitted as one batch from the mean pose.
    joints (W,L,22,3) noisy -> poses (W,L,63)."""
    a = _array(joints, "joints")
    if a.ndim != 4 or a.shape[2:] != (22, 3):
        raise BadInput(f"joints must have shape (W,L,22,3), got {tuple(a.shape)}")
    W, L = a.shape[:2]
    dev = prior.device
    gen = _generator(seed, dev)
    sched = _schedule_for(float(noise_mm))
    per = max(1, (600 if dev.type == "cpu" else 16384) // L)  # windows per batch (see denoise)
    mon = _Monitor(progress, should_cancel, sched[0] * sched[1] * math.ceil(W / per), "denoise")
    out = np.empty((W, L, POSE_DIM), np.float32)
    for s in range(0, W, per):
        w = min(per, W - s)
        zeros = torch.zeros(w, L, 3, device=dev)
        ip = prior.mean.expand(w, L, -1) + 0.01 * _randn((w, L, POSE_DIM), gen, dev)
        with _cpu_threads(prior, w * L):
            pose, _, _ = _fit_windows(prior, torch.as_tensor(a[s:s + w], device=dev), ip, zeros, zeros, False,
                                      False, sched, use_prior, gen, mon, w_acc=_acc_weight_for(float(noise_mm)))
        out[s:s + w] = _np(pose)
    mon.finish()
    return out


def denoise(prior: PosePrior, sequence: np.ndarray, root_orient: np.ndarray | None = None,
            noise_mm: float | None = None, trans: np.ndarray | None = None, seed: int | None = 0,
            use_prior: bool = True, window: int = 60, overlap: int = 20, max_batch_frames: int | None = None,
            progress: Progress = None, should_cancel: ShouldCancel = None) -> dict[str, np.ndarray | float]:
    """Motion denoising: fit clean poses to a noisy motion with a data term on FK joints, a temporal
    term and the DPoser regulariser (official schedules: 20/40/100 mm -> 3x40/3x60/3x80 Adam steps,
    t 0.2/0.25/0.15 -> 0.05, lr 0.03).

    Any length works: the motion is cut into overlapping windows of ``window`` frames (hop
    ``window - overlap``), the windows are fitted as one batch (in groups of at most
    ``max_batch_frames`` frames, which bounds memory), and the overlaps are blended (quaternion
    weighted average with linear cross-fades).

    Args:
        sequence: noisy joints (T,22,3) metres (any frame: the root orientation and translation
            are fitted too unless given), or noisy poses (T,63) (then FK joints of the poses
            with ``root_orient`` / ``trans`` (zero if None) are the data, and the fit starts at
            the poses).
        root_orient: (T,3) known root orientation, held fixed; None: estimated per frame (Kabsch
            on pelvis/hips/spine) and optimised (joints input) or zero (poses input).
        noise_mm: noise std per coordinate in mm; None = :func:`estimate_noise_mm`. Selects the
            schedule (< 30 -> 20 mm one, < 70 -> 40 mm one, else 100 mm one).
        trans: (T,3) known translation, held fixed; None: optimised from the noisy pelvis (joints
            input) or zero (poses input).
        seed: seeds the initial jitter and the regulariser's noise (default 0: deterministic).
        max_batch_frames: frames per optimisation batch (default 600 on the CPU, where larger
            batches fall out of cache and got slower per frame, 16384 on CUDA).
        use_prior: False drops the prior term (the "no prior" ablation).
    Returns:
        dict(poses (T,63), joints (T,22,3) FK of the result with its root_orient/trans,
             root_orient (T,3), trans (T,3), noise_mm float (used)).
    """
    a = _array(sequence, "sequence")
    if a.ndim == 3 and a.shape[1:] == (22, 3):
        is_joints = True
    elif a.ndim == 2 and a.shape[1] == POSE_DIM:
        is_joints = False
    else:
        raise BadInput(f"sequence must be joints (T,22,3) or poses (T,63), got {tuple(a.shape)}")
    T = a.shape[0]
    if T < 1:
        raise BadInput("sequence is empty")
    ro = _root_arg(root_orient, T)
    tr = _root_arg(trans, T, "trans")
    window = _int_arg(window, "window", 2, 100_000)
    overlap = _int_arg(overlap, "overlap", 0, window - 1)
    dev = prior.device
    gen = _generator(seed, dev)
    rest = torch.as_tensor(smpl_skeleton().rest_joints[:22], dtype=torch.float32, device=dev)

    # ---- data in torch, full length
    if is_joints:
        target = torch.as_tensor(a, device=dev)
        fit_root, fit_trans = ro is None, tr is None
        with torch.no_grad():
            root0 = torch.as_tensor(ro, device=dev) if ro is not None else _kabsch_root(target, rest).float()
            trans0 = torch.as_tensor(tr, device=dev) if tr is not None else target[:, 0] - rest[0]
        init = None
    else:
        fit_root = fit_trans = False
        root0 = torch.as_tensor(ro, device=dev) if ro is not None else torch.zeros(T, 3, device=dev)
        trans0 = torch.as_tensor(tr, device=dev) if tr is not None else torch.zeros(T, 3, device=dev)
        init = torch.as_tensor(a, device=dev)
        with torch.no_grad():
            target = forward_kinematics(init, root0, trans0)[0]
    if noise_mm is None:
        noise_mm = estimate_noise_mm(target.cpu().numpy())
    else:
        try:
            noise_mm = float(noise_mm)
        except (TypeError, ValueError):
            raise BadInput(f"noise_mm must be a number, got {noise_mm!r}") from None
        if not (math.isfinite(noise_mm) and noise_mm >= 0):
            raise BadInput(f"noise_mm must be >= 0, got {noise_mm}")
    sched = _schedule_for(noise_mm)

    if max_batch_frames is None:
        max_batch_frames = 600 if dev.type == "cpu" else 16384
    L = min(window, T)
    starts = _windows(T, L, overlap)
    groups_n = max(1, max_batch_frames // L)
    groups = [starts[i:i + groups_n] for i in range(0, len(starts), groups_n)]
    mon = _Monitor(progress, should_cancel, sched[0] * sched[1] * len(groups), "denoise")
    mon.check()

    acc_q = torch.zeros(T, 22, 4, dtype=torch.float64, device=dev)  # root + 21 body joints
    acc_t = torch.zeros(T, 3, dtype=torch.float64, device=dev)
    acc_w = torch.zeros(T, dtype=torch.float64, device=dev)
    for grp in groups:
        idx = torch.as_tensor(np.stack([np.arange(s, s + L) for s in grp]), device=dev)  # (W,L)
        tgt = target[idx]
        if init is None:
            ip = prior.mean.expand(len(grp), L, -1) + 0.01 * _randn((len(grp), L, POSE_DIM), gen, dev)
        else:
            ip = init[idx]
        with _cpu_threads(prior, len(grp) * L):
            pose_w, root_w, trans_w = _fit_windows(prior, tgt, ip, root0[idx], trans0[idx], fit_root,
                                                   fit_trans, sched, use_prior, gen, mon,
                                                   w_acc=_acc_weight_for(float(noise_mm)))
        with torch.no_grad():
            q = axis_angle_to_quat(torch.cat([root_w[..., None, :], pose_w.reshape(len(grp), L, 21, 3)], -2)).double()
            for gi, s in enumerate(grp):
                w = torch.as_tensor(_blend_weights(L, overlap, s == 0, s + L >= T), device=dev)
                sl = slice(s, s + L)
                qq = q[gi]
                sign = torch.where((qq * acc_q[sl]).sum(-1, keepdim=True) < 0, -1.0, 1.0)
                acc_q[sl] += w[:, None, None] * sign * qq
                acc_t[sl] += w[:, None] * trans_w[gi].double()
                acc_w[sl] += w
    with torch.no_grad():
        aa = quat_to_axis_angle(acc_q).float()  # (T,22,3)
        root_out = aa[:, 0]
        poses = aa[:, 1:].reshape(T, POSE_DIM)
        trans_out = (acc_t / acc_w[:, None]).float()
        if ro is not None or not is_joints:
            root_out = root0  # held fixed: returned exactly
        if tr is not None or not is_joints:
            trans_out = trans0
        joints = forward_kinematics(poses, root_out, trans_out)[0]
    mon.finish()
    return {"poses": _np(poses), "joints": _np(joints), "root_orient": _np(root_out),
            "trans": _np(trans_out), "noise_mm": float(noise_mm)}
