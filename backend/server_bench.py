"""Benchmarks of the server path, called by ``python -m backend.bench`` (see :func:`bench_server`).

Measures what the extension adds on top of the engine: the round trip of a ``ping`` and of a
single-pose ``complete`` through ``BackendClient`` -> ``python -m backend.server`` -> back, against
the same ``complete`` called directly in-process. Target: added overhead <= 10 ms.

Also measures the array transports for a 10,000-frame motion (JSON lists vs base64 vs temp file);
the table in ``dposer_core/protocol/README.md`` comes from :func:`bench_array_encoding`.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from backend import DEFAULT_WEIGHTS
from dposer_core import protocol as S

TARGET_OVERHEAD_MS = 10.0


def _median_ms(fn: Callable[[], Any], n: int, warmup: int = 2) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def _weights(tmp: Path) -> Path:
    if DEFAULT_WEIGHTS.is_file():
        return DEFAULT_WEIGHTS
    import torch

    from backend.engine.checkpoint import Checkpoint, make_provenance, save_checkpoint
    from backend.engine.network import NetworkConfig, ScoreMLP

    torch.manual_seed(0)
    cfg = NetworkConfig()
    ckpt = Checkpoint(config=cfg, state_dict=ScoreMLP(cfg).state_dict(), mean=torch.zeros(63),
                      std=torch.full((63,), 0.3), provenance=make_provenance("random bench network", 0))
    return save_checkpoint(tmp / "bench_random.pt", ckpt)


def bench_array_encoding(frames: int = 10_000, repeats: int = 5) -> list[dict]:
    """Encode + decode a (frames, 63) float32 motion three ways; bytes on the wire and ms per side."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((frames, 63)).astype(np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "motion.f32")
        S.allow_array_files(tmp)  # as the server does for the client's --array-dir

        def json_enc() -> bytes:
            return S.dumps({"id": 1, "type": "score", "poses": a.tolist()})

        def json_dec(line: bytes) -> Any:
            return S.Array.from_json(S.loads(line)["poses"]).to_numpy()

        def b64_enc() -> bytes:
            return S.dumps({"id": 1, "type": "score", "poses": S.Array.from_value(a).to_json()})

        def file_enc() -> bytes:
            return S.dumps({"id": 1, "type": "score", "poses": S.Array.from_value(a).to_file(path)})

        for name, enc in (("json lists", json_enc), ("base64 float32", b64_enc), ("temp file", file_enc)):
            line = enc()
            enc_ms, _ = _median_ms(enc, repeats, warmup=1)
            dec_ms, _ = _median_ms(lambda: json_dec(line), repeats, warmup=1)
            back = json_dec(line)
            rows.append({"op": f"array transport {frames} frames: {name}", "median_s": (enc_ms + dec_ms) / 1e3,
                         "note": f"{len(line) / 1e6:.2f} MB line, encode {enc_ms:.1f} ms + decode {dec_ms:.1f} ms",
                         "frames": frames, "line_bytes": len(line), "encode_ms": round(enc_ms, 2),
                         "decode_ms": round(dec_ms, 2), "total_ms": round(enc_ms + dec_ms, 2),
                         "exact": bool(np.array_equal(back, a))})
        S.disallow_array_files(tmp)
    return rows


def bench_server(device: str = "cpu", n: int = 30, weights: str | Path | None = None) -> list[dict]:
    """Round-trip overhead of the server vs a direct call, as rows for ``backend.bench``.

    Rows (``op``, ``median_s``, ``target_s``, ``note`` as ``backend.bench`` prints them, plus
    ``server_ms`` / ``direct_ms`` / ``overhead_ms`` / ``pass``): the ``ping`` round trip (its
    overhead is the whole round trip), the single-pose ``complete`` overhead (median through the
    server minus median of the same call in-process, interleaved) and the array-transport rows of
    :func:`bench_array_encoding`. ``weights``: default the shipped checkpoint, else a random
    full-size network.
    """
    import numpy as np

    from backend import tasks
    from backend.engine.prior import PosePrior
    from dposer_blender.client import BackendClient  # bpy-free: the extension's __init__ imports bpy lazily

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(weights) if weights else _weights(Path(tmp))
        client = BackendClient(python=sys.executable, weights=str(weights), device=device,
                                          log_path=str(Path(tmp) / "server.log"))
        try:
            t0 = time.perf_counter()
            hello = client.start(timeout=300)
            start_s = time.perf_counter() - t0
            dev = hello["device"]
            ping_med, ping_p90 = _median_ms(lambda: client.call("ping", timeout=60), n * 3)
            rows.append({"op": "server ping round trip (overhead)", "median_s": ping_med / 1e3,
                         "target_s": TARGET_OVERHEAD_MS / 1e3,
                         "note": f"p90 {ping_p90:.2f} ms; server start to hello {start_s:.1f} s",
                         "device": dev, "server_ms": round(ping_med, 3), "server_p90_ms": round(ping_p90, 3),
                         "direct_ms": 0.0, "overhead_ms": round(ping_med, 3), "target_ms": TARGET_OVERHEAD_MS,
                         "pass": ping_med <= TARGET_OVERHEAD_MS, "startup_s": round(start_s, 2)})

            prior = PosePrior.load(weights, device=dev)
            pose = (0.1 * np.random.default_rng(0).standard_normal(63)).astype(np.float32)
            keep = [n_ for n_ in hello["joint_names"] if "left" not in n_]
            params = dict(n_hypotheses=10, steps=50, seed=0)

            def direct() -> Any:
                return tasks.complete(prior, pose, keep, **params)

            added: list[float] = []

            def served() -> Any:
                t0 = time.perf_counter()
                fut = client.submit("complete", pose=pose, keep=keep, **params)
                fut.result(300)
                if fut.server_run_ms is not None:
                    added.append(1e3 * (time.perf_counter() - t0) - fut.server_run_ms)

            # interleave so machine load affects both alike
            d_times, s_times = [], []
            for _ in range(2):
                direct(), served()
            added.clear()
            for _ in range(n):
                t0 = time.perf_counter()
                direct()
                d_times.append(1e3 * (time.perf_counter() - t0))
                t0 = time.perf_counter()
                served()
                s_times.append(1e3 * (time.perf_counter() - t0))
            d_med, s_med = statistics.median(d_times), statistics.median(s_times)
            add_med = statistics.median(added)
            add_p90 = sorted(added)[int(0.9 * (len(added) - 1))]
            rows.append({"op": "server complete 1 pose (added overhead)", "median_s": add_med / 1e3,
                         "target_s": TARGET_OVERHEAD_MS / 1e3,
                         "note": (f"round trip minus server run time; p90 {add_p90:.2f} ms. Via server {s_med:.1f} ms "
                                  f"vs direct {d_med:.1f} ms (10 hyp x 50 steps, n={n})"),
                         "device": dev, "server_ms": round(s_med, 2), "direct_ms": round(d_med, 2),
                         "overhead_ms": round(add_med, 3), "overhead_p90_ms": round(add_p90, 3),
                         "difference_of_medians_ms": round(s_med - d_med, 2), "target_ms": TARGET_OVERHEAD_MS,
                         "pass": add_med <= TARGET_OVERHEAD_MS})
        finally:
            client.close()
    rows += bench_array_encoding()
    return rows


def server_bench(ctx: Any) -> list[dict]:
    """Adapter for ``backend.bench.EXTRA_BENCHES`` (``ctx``: its ``BenchContext``)."""
    return bench_server(ctx.device, n=max(10, 4 * int(ctx.repeats)), weights=ctx.extra.get("weights"))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=30)
    args = ap.parse_args()
    for row in bench_server(args.device, args.n):
        print(json.dumps(row))
