"""``python -m backend.bench [--device cpu|cuda] [--json OUT] [--weights W] [--repeats N]``

Median latency (after warm-up) of the animator operations, each beside its hardware floor:
the network FLOPs and weight bytes of every network call the operation made (counted while it ran)
against this machine's measured matmul rate and memory bandwidth. ``ratio = median / floor``.
The floor counts the score network only (not forward kinematics, optimiser or Python overhead), and
uses the DRAM bandwidth of a large copy: a small network's weights can stay cache-resident between
calls, so a ratio slightly below 1 is possible for small-batch operations.

Other modules add rows (e.g. the server's round-trip overhead) by appending to ``EXTRA_BENCHES``:

    def my_bench(ctx: BenchContext) -> list[dict]:   # rows: {"op": str, "median_s": float, ...}
        ...
    backend.bench.EXTRA_BENCHES.append(my_bench)

A row may carry ``target_s``, ``floor_s``, ``calls`` and ``note``; missing ones print as "-".
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from backend import DEFAULT_WEIGHTS, tasks
from backend.cli import resolve_device
from backend.engine.prior import PosePrior
from backend.server_bench import server_bench
from dposer_core.constants import DEVICES

# Targets (seconds) on the 2-core CPU, and on an H100.
CPU_TARGETS = {"complete 1 pose x 10 hyp x 200 steps": 0.6, "denoise 60 frames @40mm": 3.0,
               "sample 10 (ddim 10 steps)": 0.15, "in-between 30 frames": 1.5}
CUDA_TARGETS = {"complete 1 pose x 10 hyp x 200 steps": 0.06, "denoise 1000 frames @40mm": 2.0}


@dataclass
class BenchContext:
    """What a bench function gets: the loaded prior, device, repeat count and hardware rates."""

    prior: PosePrior
    device: str
    repeats: int
    matmul_gflops: float
    bandwidth_gbs: float
    extra: dict[str, Any] = field(default_factory=dict)


BenchFn = Callable[[BenchContext], list[dict]]


EXTRA_BENCHES: list[BenchFn] = [server_bench]
"""The server round trip (``ping``, single-pose ``complete``) vs a direct call, and the array transports."""


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def measure_matmul_gflops(device: str, n: int = 1024, reps: int = 10) -> float:
    """Sustained fp32 GEMM rate (GFLOP/s) of an n x n x n matmul with torch's default threads."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    if device.startswith("cuda"):
        n, reps = 4096, 50
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    _sync(device)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        _sync(device)
        best = min(best, (time.perf_counter() - t) / reps)
    return 2.0 * n ** 3 / best / 1e9


def measure_bandwidth_gbs(device: str, mbytes: int = 256) -> float:
    """Memory bandwidth (GB/s): bytes read + written by a large tensor copy."""
    n = mbytes * 2 ** 20 // 4
    a = torch.empty(n, device=device).normal_()
    b = torch.empty_like(a)
    b.copy_(a)
    _sync(device)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        b.copy_(a)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n * 4 / best / 1e9


class _CallCounter:
    """Records the batch size of every network call made through ``prior.fast_eps`` meanwhile."""

    def __init__(self, prior: PosePrior) -> None:
        self.fe = prior.fast_eps
        self.rows: list[int] = []

    def __enter__(self) -> "_CallCounter":
        self.fe.call_log = self.rows
        return self

    def __exit__(self, *exc: object) -> None:
        self.fe.call_log = None


def network_cost(prior: PosePrior) -> tuple[int, int]:
    """(multiply-accumulates per row, weight bytes) of one x-path network call (the time path is
    cached per time and excluded, as in ``PosePrior.fast_eps``)."""
    cfg = prior.net.config
    D, H = cfg.dim, cfg.hidden
    macs = D * H + 2 * cfg.n_blocks * H * H + H * D
    return macs, 4 * macs


def floor_seconds(rows: list[int], prior: PosePrior, gflops: float, gbs: float) -> float:
    """Sum over calls of max(FLOPs / matmul rate, weight bytes / bandwidth)."""
    macs, wbytes = network_cost(prior)
    return float(sum(max(2.0 * macs * r / (gflops * 1e9), wbytes / (gbs * 1e9)) for r in rows))


def time_op(fn: Callable[[], Any], device: str, repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn`` after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), ts


def builtin_benches(ctx: BenchContext) -> list[dict]:
    """The task latencies listed in the issue."""
    prior, dev = ctx.prior, ctx.device
    rng = np.random.default_rng(0)
    pose = tasks.sample(prior, 3, seed=0)
    keep = tasks.keep_from_mask("left_leg")
    from backend.engine.kinematics import forward_kinematics
    base = np.repeat(pose[:1], 1000, 0) + 0.05 * np.sin(np.arange(1000) / 15.0)[:, None].astype(np.float32)
    with torch.no_grad():
        clean = forward_kinematics(torch.as_tensor(base))[0].numpy()
    noisy = clean + rng.standard_normal(clean.shape).astype(np.float32) * 0.04
    zeros = np.zeros((1000, 3), np.float32)
    # 10,000 frames (issue 12): the 1,000-frame clip ten times over (fresh noise), a long motion
    noisy10k = np.tile(clean, (10, 1, 1)) + rng.standard_normal((10_000,) + clean.shape[1:]).astype(np.float32) * 0.04
    zeros10k = np.zeros((10_000, 3), np.float32)
    ops: list[tuple[str, Callable[[], Any], int]] = [
        ("sample 1 (ddim 10 steps)", lambda: tasks.sample(prior, 1, sampler="ddim", seed=0), ctx.repeats),
        ("sample 10 (ddim 10 steps)", lambda: tasks.sample(prior, 10, sampler="ddim", seed=0), ctx.repeats),
        ("sample 1 (ode heun 25 steps)", lambda: tasks.sample(prior, 1, sampler="ode", seed=0), ctx.repeats),
        ("sample 10 (ode heun 25 steps)", lambda: tasks.sample(prior, 10, sampler="ode", seed=0), ctx.repeats),
        ("sample 1 (em 1000 steps)", lambda: tasks.sample(prior, 1, sampler="em", seed=0), max(1, ctx.repeats // 3)),
        ("sample 10 (em 1000 steps)", lambda: tasks.sample(prior, 10, sampler="em", seed=0), max(1, ctx.repeats // 3)),
        ("complete 1 pose x 10 hyp x 200 steps", lambda: tasks.complete(prior, pose[0], keep, 10, seed=0), ctx.repeats),
        ("denoise 60 frames @40mm", lambda: tasks.denoise(prior, noisy[:60], root_orient=zeros[:60],
                                                          trans=zeros[:60], noise_mm=40, seed=0), max(1, ctx.repeats // 2)),
        ("denoise 1000 frames @40mm", lambda: tasks.denoise(prior, noisy, root_orient=zeros, trans=zeros,
                                                            noise_mm=40, seed=0), max(1, ctx.repeats // 3)),
        ("denoise 10000 frames @40mm", lambda: tasks.denoise(prior, noisy10k, root_orient=zeros10k, trans=zeros10k,
                                                             noise_mm=40, seed=0), 1),
        ("in-between 30 frames", lambda: tasks.inbetween(prior, pose[:2], 30, seed=0), ctx.repeats),
        ("ODE encode 1 pose", lambda: tasks.encode(prior, pose[:1]), ctx.repeats),
    ]
    targets = CUDA_TARGETS if dev.startswith("cuda") else CPU_TARGETS
    heavy = ({"denoise 10000 frames @40mm"} if dev.startswith("cuda") else
             {"denoise 1000 frames @40mm", "denoise 10000 frames @40mm", "sample 10 (em 1000 steps)"})
    rows = []
    for name, fn, reps in ops:
        with _CallCounter(prior) as cc:  # the warm-up run also counts the network calls
            _sync(dev)
            t = time.perf_counter()
            fn()
            _sync(dev)
            first = time.perf_counter() - t
        calls = list(cc.rows)
        if name in heavy:  # too slow to repeat on a CPU: the counted run is the measurement
            med, ts = first, [first]
        else:
            med, ts = time_op(fn, dev, reps, warmup=0)
        fl = floor_seconds(calls, prior, ctx.matmul_gflops, ctx.bandwidth_gbs)
        rows.append({"op": name, "median_s": med, "times_s": ts, "calls": len(calls), "rows": int(sum(calls)),
                     "floor_s": fl, "ratio": med / fl if fl > 0 else None, "target_s": targets.get(name)})
        print(f"[bench] {name}: {med:.3f} s", file=sys.stderr, flush=True)
    return rows


def format_table(rows: list[dict], hw: dict) -> str:
    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)
    head = f"{'operation':40s} {'median s':>9s} {'calls':>6s} {'floor s':>9s} {'ratio':>7s} {'target s':>9s}  ok"
    lines = [f"device {hw['device']} | matmul {hw['matmul_gflops']:.1f} GFLOP/s | bandwidth {hw['bandwidth_gbs']:.1f} GB/s"
             f" | threads {hw['threads']}", head, "-" * len(head)]
    for r in rows:
        tgt = r.get("target_s")
        ok = "" if tgt is None else ("yes" if r["median_s"] <= tgt else "NO")
        lines.append(f"{r['op']:40s} {f(r.get('median_s'), '9.3f')} {f(r.get('calls'), '6d')} "
                     f"{f(r.get('floor_s'), '9.4f')} {f(r.get('ratio'), '7.1f')} {f(tgt, '9.2f')}  {ok}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m backend.bench", description="Latency of the tasks vs the hardware floor.")
    p.add_argument("--device", choices=DEVICES, default="cpu")
    p.add_argument("--json", default=None)
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    try:
        dev = resolve_device(args.device)
    except ValueError as e:  # BadInput: asked for a device that is not there
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        prior = PosePrior.load(args.weights, device=dev)
    except Exception as e:  # noqa: BLE001
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    gflops, gbs = measure_matmul_gflops(dev), measure_bandwidth_gbs(dev)
    ctx = BenchContext(prior=prior, device=dev, repeats=max(1, args.repeats), matmul_gflops=gflops, bandwidth_gbs=gbs,
                       extra={"weights": args.weights})
    rows = builtin_benches(ctx)
    for fn in EXTRA_BENCHES:
        try:
            rows += fn(ctx)
        except Exception as e:  # noqa: BLE001 - one failing extra bench must not hide the others
            rows.append({"op": getattr(fn, "__name__", "extra"), "median_s": None, "note": f"failed: {e}"})
    hw = {"device": torch.cuda.get_device_name() if dev == "cuda" else dev, "matmul_gflops": gflops,
          "bandwidth_gbs": gbs, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
          "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    macs, wbytes = network_cost(prior)
    result = {"hardware": hw, "network": {"macs_per_row": macs, "weight_bytes": wbytes,
                                          "config": prior.net.config.to_dict()},
              "weights": args.weights, "rows": rows}
    print(format_table(rows, hw))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
