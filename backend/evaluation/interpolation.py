"""Interpolation: the ODE round trip (pose -> latent -> pose) and in-betweening of held-out frames."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from backend import tasks
from backend.engine.prior import PosePrior
from backend.evaluation import baselines as bl
from backend.evaluation import metrics as mt
from backend.evaluation.eval_data import EvalData, mean, subset
from dposer_core.kinematics_np import forward_kinematics

INBETWEEN_K = (5, 15, 30)


def eval_interpolation(prior: PosePrior, data: EvalData, n_roundtrip: int, n_clips: int, seed: int,
                       adaptive: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """ODE round trip (fixed-step Heun and adaptive RK45) and in-betweening hold-out."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"roundtrip": {}}
    p = subset(data.frames(), n_roundtrip, rng)
    pj = forward_kinematics(p)
    configs = [("heun", tasks.ODE_DEFAULTS["steps"])]
    if adaptive:
        configs.append(("RK45", None))
    for method, steps in configs:
        pp = p if method == "heun" else p[: max(8, len(p) // 4)]
        t0 = time.perf_counter()
        lat = tasks.encode(prior, pp, method=method, steps=steps)
        rec = tasks.decode(prior, lat, method=method, steps=steps)
        key = f"ode_{method.lower()}" + (f"_{steps}" if steps else "")
        out["roundtrip"][key] = {"mpjpe_mm": mean(mt.mpjpe(forward_kinematics(rec), pj[: len(pp)])),
                                 "n": int(len(pp)), "seconds": time.perf_counter() - t0}
    log(f"[eval] ODE round trip: " + ", ".join(f"{k} {v['mpjpe_mm']:.2f} mm" for k, v in out["roundtrip"].items()))
    for K in INBETWEEN_K:
        need = K + 2
        cands = [(i, len(pp)) for i, (_, pp) in enumerate(data.clips) if len(pp) >= need]
        if not cands:
            continue
        sel = [cands[i] for i in rng.choice(len(cands), min(n_clips, len(cands)), replace=False)]
        meths = ("dposer", "dposer_latent_T1", "slerp", "cubic")
        errs: dict[str, list] = {m: [] for m in meths}
        fills: dict[str, list] = {m: [] for m in meths + ("real",)}
        t_d = 0.0
        for ci, T in sel:
            poses = data.clips[ci][1]
            s = int(rng.integers(0, T - need + 1))
            a, b = s, s + K + 1
            real = poses[a + 1:b]
            t0 = time.perf_counter()
            d = tasks.inbetween(prior, poses[[a, b]], K, seed=0)["poses"][1:-1]
            t_d += time.perf_counter() - t0
            d1 = tasks.inbetween(prior, poses[[a, b]], K, seed=0, t_latent=1.0)["poses"][1:-1]
            sl = bl.slerp_fill(poses[a], poses[b], K)
            kt = [t for t in (a - (K + 1), a, b, b + (K + 1)) if 0 <= t < T]
            cu = bl.cubic_fill(poses[kt], np.asarray(kt, float), np.arange(a + 1, b, dtype=float))
            rj = forward_kinematics(real)
            for name, f in (("dposer", d), ("dposer_latent_T1", d1), ("slerp", sl), ("cubic", cu)):
                errs[name].append(mt.mpjpe(forward_kinematics(f), rj).mean())
                fills[name].append(f)
            fills["real"].append(real)
        res: dict[str, Any] = {}
        for name in meths + ("real",):
            sc = tasks.score(prior, np.concatenate(fills[name], 0))["pose"]
            res[name] = {"plausibility": mean(sc)}
            if name != "real":
                res[name]["mpjpe_mm"] = mean(np.asarray(errs[name]))
        res["dposer"]["seconds_per_clip"] = t_d / len(sel)
        res["n_clips"] = len(sel)
        out[f"inbetween_k{K}"] = res
        log(f"[eval] in-between K={K}: mpjpe dposer {res['dposer']['mpjpe_mm']:.1f} slerp {res['slerp']['mpjpe_mm']:.1f} "
            f"cubic {res['cubic']['mpjpe_mm']:.1f} mm; plausibility dposer {res['dposer']['plausibility']:.3f} "
            f"slerp {res['slerp']['plausibility']:.3f} real {res['real']['plausibility']:.3f}")
    out["settings"] = {"roundtrip_poses": int(len(p)), "ode": tasks.ODE_DEFAULTS, "K": list(INBETWEEN_K),
                       "inbetween_t_latent": tasks.INBETWEEN_T_LATENT,
                       "holdout": "keys = the frames just before/after K held-out middle frames of a real clip",
                       "plausibility": "tasks.score, lower = more plausible"}
    return out
