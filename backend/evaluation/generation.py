"""Generation: diversity, realism and plausibility of sampled poses against held-out real poses."""

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


def _gen_metrics(poses: np.ndarray, real_j: np.ndarray, train_j: np.ndarray, limits: mt.JointLimits,
                 n_apd: int = 500) -> dict[str, float]:
    j = forward_kinematics(poses)
    return {"apd_cm": mt.apd(j[:n_apd]),
            "frechet_fk": mt.frechet_distance(j[:, 4:].reshape(len(j), -1), real_j[:, 4:].reshape(len(real_j), -1)),
            "nn_to_train_mm": mean(mt.nearest_neighbour_mpjpe(j, train_j)),
            "floor_violation_rate": mean(mt.floor_violation(j)),
            "feet_flat_share": mean(mt.feet_flat_under_hips(j)),
            "joint_limit_violation_rate": mean(limits.violations(poses))}


def eval_generation(prior: PosePrior, data: EvalData, n_samples: int, n_em: int, seed: int,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """APD, Fréchet distance on FK joints vs held-out real poses, NN distance to train, floor and
    joint-limit violation rates for DPoser (EM 1000 steps; DDIM-style 10/20 steps with eta 1; deterministic
    DDIM 10 steps; probability-flow ODE), a Gaussian fitted to the
    training poses, and the held-out real poses themselves (reference)."""
    rng = np.random.default_rng(seed)
    real = subset(data.frames(), max(n_samples, 1000), rng)
    real_j = forward_kinematics(real)
    train_j = forward_kinematics(subset(data.train_poses, 50_000, rng))
    limits = mt.JointLimits(data.train_poses)
    out: dict[str, Any] = {}
    runs: list[tuple[str, Callable[[], np.ndarray]]] = [
        ("dposer_em1000", lambda: tasks.sample(prior, n_em, sampler="em", seed=seed)),
        ("dposer_ddim10", lambda: tasks.sample(prior, n_samples, sampler="ddim", seed=seed)),
        ("dposer_ddim20", lambda: tasks.sample(prior, n_samples, sampler="ddim", steps=20, seed=seed)),
        ("dposer_ddim10_eta0", lambda: tasks.sample(prior, n_samples, sampler="ddim", eta=0.0, seed=seed)),
        ("dposer_ode_heun25", lambda: tasks.sample(prior, n_samples, sampler="ode", seed=seed)),
        ("gaussian", lambda: bl.GaussianPoseModel(data.train_poses).sample(n_samples, seed)),
    ]
    for name, fn in runs:
        t0 = time.perf_counter()
        poses = fn()
        dt = time.perf_counter() - t0
        out[name] = {**_gen_metrics(poses, real_j, train_j, limits), "n": int(len(poses)), "seconds": dt}
    held = subset(data.frames(), n_samples, np.random.default_rng(seed + 1))
    out["real_heldout"] = {**_gen_metrics(held, real_j, train_j, limits), "n": int(len(held))}
    by_src = {}
    if len(data.sources()) > 1:
        fs = data.frame_sources()
        frames = data.frames()
        srng = np.random.default_rng(seed + 2)
        for src in data.sources():
            h = subset(frames[fs == src], min(n_samples, 500), srng)
            hj = forward_kinematics(h)
            by_src[src] = {"apd_cm": mt.apd(hj), "feet_flat_share": mean(mt.feet_flat_under_hips(hj)), "n": int(len(h))}
    out["real_heldout"]["by_source"] = by_src
    # the held-out poses resampled to the source mix the prior was trained on (checkpoint provenance)
    prov = prior.checkpoint.provenance if getattr(prior, "checkpoint", None) else {}
    dprov = prov.get("data") if isinstance(prov, dict) else None
    shares = dprov.get("source_shares") if isinstance(dprov, dict) else None
    if shares and len(data.sources()) > 1:
        fs = data.frame_sources()
        frames = data.frames()
        have = {k: float(v) for k, v in shares.items() if np.any(fs == k)}
        if have:
            tot = sum(have.values())
            w = np.zeros(len(fs))
            for k, v in have.items():
                sel = fs == k
                w[sel] = v / tot / sel.sum()
            mix = frames[np.random.default_rng(seed + 3).choice(len(frames), n_samples, p=w / w.sum())]
            out["real_heldout_training_mix"] = {**_gen_metrics(mix, real_j, train_j, limits), "n": int(len(mix)),
                                                "shares": {k: v / tot for k, v in have.items()}}
    ref = out["real_heldout"]["apd_cm"]
    ref_mix = out.get("real_heldout_training_mix", {}).get("apd_cm")
    for k, v in out.items():
        if k.startswith("dposer"):
            v["apd_vs_real"] = v["apd_cm"] / ref
            if ref_mix:
                v["apd_vs_real_training_mix"] = v["apd_cm"] / ref_mix
    for k, v in out.items():
        if "apd_cm" not in v:
            continue
        log(f"[eval] generation {k}: APD {v['apd_cm']:.1f} cm, FD {v['frechet_fk']:.4f}, NN {v['nn_to_train_mm']:.1f} mm, "
            f"floor {v['floor_violation_rate']:.3f}, limits {v['joint_limit_violation_rate']:.3f}, "
            f"feet flat {v['feet_flat_share']:.2f}")
    out["settings"] = {"frechet": "on flattened FK joints 4..21 (54-D, metres; 0-3 are fixed by the zero root) vs held-out real poses",
                       "floor": "non-leg joint > 5 cm below the lower foot joint",
                       "feet_flat": "both ankles and toes within 4 cm of one height, each ankle within 15 cm of its hip "
                                    "horizontally and > 70 cm below it (a standing pose)",
                       "apd": "over the first 500 poses (cm); apd_vs_real = ratio to the held-out real poses' APD; "
                              "real_heldout_training_mix = held-out poses resampled to the checkpoint's training source shares",
                       "joint_limits": "outside the training 0.1-99.9% range per component (+10%)"}
    return out
