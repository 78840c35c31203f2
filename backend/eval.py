"""``python -m backend.eval``: the four tasks against baselines in one run.

    python -m backend.eval [--data PATH ...] --json OUT.json [--weights W] [--device auto|cpu|cuda]
                           [--seed 0] [--quick] [--tasks completion,denoising,interpolation,generation,convention]

Data: ``--data`` takes AMASS ``.npz`` files, BVH files (retargeted) or folders of them; clips are at
30 fps. Without ``--data`` the prepared dataset (``backend.data.dataset.load_dataset``) is used and
its *held-out* clips (whole styles / subjects, ``backend.data.dataset.HELD_OUT``) are evaluated, per
source and pooled. Training poses (for the nearest-neighbour baselines, the Gaussian baseline, the
memorisation check and the joint limits) come from the prepared dataset's train split when it exists,
else from the ``--data`` clips whose name hashes to 'train' (``backend.data.dataset.split_for_clip``),
the rest being evaluated.

Metrics: errors in mm on FK joints of the built-in neutral skeleton (root at the origin, zero root
orientation); with ``--smpl-model FILE`` also MPVPE (mm, mean shape) for completion and denoising.
APD in cm. Plausibility = ``tasks.score`` (lower = more plausible). Denoising also reports the mean
joint acceleration as a multiple of the clean motion's; generation the share of standing poses (feet
flat under the hips); ``convention`` the retarget convention of the training poses vs AMASS.
The JSON has one object per task, inside one object per method (pooled), with ``by_source`` copies
per source, plus ``settings`` and ``seed``. stdout: the markdown tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from backend import tasks
from backend.cli_io import InputError, load_input
from backend.engine.prior import PosePrior
from dposer_core.skeleton import BODY_MASKS
from backend.evaluation import baselines as bl
from backend.evaluation import metrics as mt

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS = REPO_ROOT / "weights" / "dposer_cmu_bandai.pt"
COMPLETION_MASKS = ("left_leg", "legs", "arms", "trunk")
NOISE_LEVELS_MM = (20, 40, 100)
INBETWEEN_K = (5, 15, 30)


@dataclass
class EvalData:
    """Evaluation clips and training reference poses.

    Attributes:
        clips: list of (name, poses (T,63) float32) evaluated clips at 30 fps.
        train_poses: (M,63) training poses (reference set for baselines).
        source: description of where they came from.
    """

    clips: list[tuple[str, np.ndarray]]
    train_poses: np.ndarray
    source: str
    clip_sources: list[str] | None = None      # per clip: its data source ('bandai2', 'cmu-daz', ...)
    train_sources: np.ndarray | None = None    # (M,) source of each training pose
    dataset: Any = None                        # the prepared dataset, when used

    def frames(self) -> np.ndarray:
        """(N,63) all evaluated frames."""
        return np.concatenate([p for _, p in self.clips], 0)

    def frame_sources(self) -> np.ndarray:
        """(N,) source of each evaluated frame ('data' when unknown)."""
        srcs = self.clip_sources or ["data"] * len(self.clips)
        return np.concatenate([np.full(len(p), s, dtype=object) for (_, p), s in zip(self.clips, srcs)]).astype(str)

    def sources(self) -> list[str]:
        return sorted(set(self.clip_sources or ["data"]))


def _groups(sources: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """{'pooled': all rows, <source>: its rows} (a source only when there are several)."""
    g = {"pooled": np.arange(len(sources))}
    if len(names) > 1:
        for s in names:
            g[s] = np.flatnonzero(sources == s)
    return g


def _stratified(data: "EvalData", n_per_source: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n_per_source`` evaluated frames of each source -> (poses (N,63), sources (N,))."""
    frames, fs = data.frames(), data.frame_sources()
    idx = []
    for s in data.sources():
        cand = np.flatnonzero(fs == s)
        idx.append(cand if len(cand) <= n_per_source else np.sort(rng.choice(cand, n_per_source, replace=False)))
    sel = np.concatenate(idx)
    return frames[sel], fs[sel]


def acceleration_mm(joints: np.ndarray) -> float:
    """Mean joint acceleration (mm/frame², norm of the second temporal difference) of (...,T,J,3) metres."""
    j = np.asarray(joints, np.float64)
    return float(1000.0 * np.linalg.norm(j[..., 2:, :, :] - 2 * j[..., 1:-1, :, :] + j[..., :-2, :, :], axis=-1).mean())


def _collect_files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.suffix.lower() in (".npz", ".bvh"))
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"{p}: not found")
    if not out:
        raise InputError(f"no .npz/.bvh files in {', '.join(paths)}")
    return out


def load_eval_data(data: list[str] | None, max_train: int = 200_000, seed: int = 0,
                   log: Callable[[str], None] = print, dataset: str | None = None) -> EvalData:
    """See the module docstring. ``dataset``: a prepared dataset .npz (default: the newest build)."""
    rng = np.random.default_rng(seed)
    ds = None
    try:
        from backend.data.dataset import load_dataset
        ds = load_dataset(path=dataset) if dataset else load_dataset()
    except Exception as e:  # noqa: BLE001 - no prepared dataset is fine when --data is given
        if not data or dataset:
            raise InputError(f"no prepared dataset ({' '.join(str(e).split())})") from None
    if data:
        from backend.data.dataset import split_for_clip
        clips, train_clips = [], []
        for f in _collect_files(data):
            try:
                m = load_input(f)
            except InputError as e:
                log(f"[eval] skipping {e}")
                continue
            if m.poses is None or len(m.poses) < 2:
                continue
            (train_clips if ds is None and split_for_clip(f.stem) == "train" else clips).append((f.stem, m.poses))
        if ds is not None:
            train, source = ds.train_poses(), f"--data ({len(clips)} clips); train poses: prepared dataset"
        else:
            if not train_clips or not clips:
                # too few clips to split: evaluate on all, reference = all (memorisation check is then moot)
                clips = clips + train_clips
                train_clips = clips
            train = np.concatenate([p for _, p in train_clips], 0)
            source = f"--data ({len(clips)} eval clips, {len(train_clips)} train clips by name hash)"
    else:
        assert ds is not None
        vc = list(ds.clips("val"))
        clips = [(c.name, c.poses) for c in vc]
        clip_sources = [c.source for c in vc]
        train = ds.train_poses()
        fsrc = np.repeat(ds.clip_sources, np.diff(ds.clip_starts))
        train_sources = fsrc[ds.frame_mask("train") & ds.dedup_mask].astype(str)
        source = (f"prepared dataset held-out split ({len(clips)} clips: whole styles/subjects, "
                  f"backend.data.dataset.HELD_OUT), train split as reference")
    if not clips:
        raise InputError("no evaluation clips with poses")
    if data:
        clip_sources, train_sources = None, None
    if len(train) > max_train:
        pick = np.sort(rng.choice(len(train), max_train, replace=False))
        train = train[pick]
        train_sources = train_sources[pick] if train_sources is not None else None
    return EvalData(clips=clips, train_poses=np.asarray(train, np.float32), source=source, clip_sources=clip_sources,
                    train_sources=train_sources, dataset=ds if not data else None)


def _subset(a: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return a if len(a) <= n else a[np.sort(rng.choice(len(a), n, replace=False))]


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x))


# ================================================================================ completion


def eval_completion(prior: PosePrior, data: EvalData, n_poses: int, n_hyp: int, seed: int,
                    log: Callable[[str], None] = print, vm: mt.VertexMetric | None = None) -> dict[str, Any]:
    """Per mask: MPJPE on the joints moved by the hidden rotations (best of H, mean over H,
    score-ranked first), APD over hypotheses; baselines mean-pose fill and NN retrieval (nearest
    first). ``n_poses`` poses per source; results pooled (top level) and per source (``by_source``)."""
    rng = np.random.default_rng(seed)
    gt, gsrc = _stratified(data, n_poses, rng)
    groups = _groups(gsrc, data.sources())
    gt_j = mt.fk_joints(gt)
    mean_pose = data.train_poses.mean(0)
    out: dict[str, Any] = {}

    def summary(err: np.ndarray, joints: np.ndarray | None, rows: np.ndarray, jidx: list[int]) -> dict[str, float]:
        e = err[rows]
        r = {"best_of_h_mm": _mean(e.min(1)), "mean_over_h_mm": _mean(e.mean(1)),
             "score_ranked_first_mm": _mean(e[:, 0])}
        r["apd_cm"] = mt.apd_batched(joints[rows]) if joints is not None else 0.0
        r["apd_hidden_cm"] = mt.apd_batched(joints[rows][:, :, jidx]) if joints is not None else 0.0
        return r

    for mask in COMPLETION_MASKS:
        keep = tasks.keep_from_mask(mask)
        jidx = mt.hidden_fk_joints(BODY_MASKS[mask])
        t0 = time.perf_counter()
        r = tasks.complete(prior, gt, keep, n_hypotheses=n_hyp, seed=seed)
        dt = time.perf_counter() - t0
        hj = mt.fk_joints(r["poses"])  # (N,H,22,3)
        err = mt.mpjpe(hj, gt_j[:, None], jidx)  # (N,H)
        mp = bl.mean_pose_fill(gt, keep, mean_pose)
        e_mp = mt.mpjpe(mt.fk_joints(mp), gt_j, jidx)[:, None]
        nn = bl.nn_retrieval_fill(gt, keep, data.train_poses, k=n_hyp)
        nj = mt.fk_joints(nn)
        e_nn = mt.mpjpe(nj, gt_j[:, None], jidx)
        if vm is not None:
            ev_, en = vm.mpvpe(r["poses"], gt[:, None]), vm.mpvpe(nn, gt[:, None])
            ep = vm.mpvpe(mp, gt)
        res: dict[str, Any] = {"by_source": {}}
        for g, rows in groups.items():
            gr = {"dposer": summary(err, hj, rows, jidx), "mean_pose_fill": summary(e_mp, None, rows, jidx),
                  "nn_retrieval": summary(e_nn, nj, rows, jidx), "n": int(len(rows))}
            if vm is not None:
                gr["dposer"].update(mpvpe_best_of_h_mm=_mean(ev_[rows].min(1)), mpvpe_ranked_first_mm=_mean(ev_[rows, 0]))
                gr["mean_pose_fill"]["mpvpe_mm"] = _mean(ep[rows])
                gr["nn_retrieval"].update(mpvpe_best_of_h_mm=_mean(en[rows].min(1)), mpvpe_ranked_first_mm=_mean(en[rows, 0]))
            if g == "pooled":
                res.update(gr)
            else:
                res["by_source"][g] = gr
        res["dposer"]["seconds"] = dt
        res["hidden_fk_joints"] = jidx
        out[mask] = res
        log(f"[eval] completion {mask}: dposer best-of-{n_hyp} {res['dposer']['best_of_h_mm']:.1f} mm "
            f"(1st {res['dposer']['score_ranked_first_mm']:.1f}, APD {res['dposer']['apd_cm']:.1f} cm), "
            f"nn {res['nn_retrieval']['best_of_h_mm']:.1f} mm (1st {res['nn_retrieval']['score_ranked_first_mm']:.1f}) "
            f"({dt:.1f} s)")
    out["settings"] = {"n_poses": int(len(gt)), "n_poses_per_source": n_poses, "n_hypotheses": n_hyp, "steps": 200,
                       "metric": "MPJPE (mm) on FK joints moved by the hidden joints",
                       "nn_retrieval": "the H training poses nearest on the kept joints' axis-angle, nearest first"}
    return out


# ================================================================================ denoising


def _windows(data: EvalData, L: int, n: int, rng: np.random.Generator, exclude: set | None = None,
             source: str | None = None) -> tuple[np.ndarray, set]:
    """n non-overlapping L-frame windows (poses (n,L,63)) from clips long enough (of ``source`` only,
    if given); returns the keys used."""
    srcs = data.clip_sources or ["data"] * len(data.clips)
    cands = [(ci, s) for ci, (_, p) in enumerate(data.clips) for s in range(0, len(p) - L + 1, L)
             if source is None or srcs[ci] == source]
    if exclude:
        cands = [c for c in cands if c not in exclude]
    if not cands:
        return np.zeros((0, L, 63), np.float32), set()
    pick = rng.choice(len(cands), min(n, len(cands)), replace=False)
    used = {cands[i] for i in pick}
    return np.stack([data.clips[cands[i][0]][1][cands[i][1]:cands[i][1] + L] for i in pick]), used


def eval_denoising(prior: PosePrior, data: EvalData, n_windows: int, seed: int, L: int = 60,
                   log: Callable[[str], None] = print, vm: mt.VertexMetric | None = None) -> dict[str, Any]:
    """Per noise level: MPJPE and mean joint acceleration for DPoser, DPoser without the prior term,
    and the Gaussian / Butterworth filters tuned on separate held-out windows. ``n_windows`` windows
    per source; pooled (top level) and per source (``by_source``)."""
    rng = np.random.default_rng(seed)
    L = min(L, max(len(p) for _, p in data.clips))
    wins, wsrc, used = [], [], set()
    for src in data.sources():
        w, u = _windows(data, L, n_windows, rng, source=None if src == "data" else src)
        wins.append(w)
        wsrc += [src] * len(w)
        used |= u
    win = np.concatenate(wins)
    wsrc_a = np.asarray(wsrc)
    groups = _groups(wsrc_a, data.sources())
    tune_win, _ = _windows(data, L, max(8, len(win) // 2), rng, exclude=used)
    if len(tune_win) == 0:
        tune_win = win
    clean = mt.fk_joints(win)  # (W,L,22,3)
    tune_clean = mt.fk_joints(tune_win)
    out: dict[str, Any] = {}

    def metrics(y: np.ndarray, rows: np.ndarray) -> dict[str, float]:
        acc, acc0 = acceleration_mm(y[rows]), acceleration_mm(clean[rows])
        return {"mpjpe_mm": _mean(mt.mpjpe(y[rows], clean[rows])), "accel_mm": acc, "accel_ratio": acc / acc0}

    for lvl in NOISE_LEVELS_MM:
        noisy = (clean + rng.standard_normal(clean.shape) * lvl / 1000.0).astype(np.float32)
        tnoisy = tune_clean + rng.standard_normal(tune_clean.shape) * lvl / 1000.0
        outputs: dict[str, np.ndarray] = {"input": noisy}
        extra: dict[str, dict] = {}
        for name, use_prior in (("dposer", True), ("dposer_no_prior", False)):
            t0 = time.perf_counter()
            poses = tasks.denoise_windows(prior, noisy, lvl, use_prior=use_prior, seed=seed)
            outputs[name] = mt.fk_joints(poses)
            extra[name] = {"seconds": time.perf_counter() - t0}
            if vm is not None:
                extra[name]["mpvpe_mm"] = _mean(vm.mpvpe(poses, win))
        for kind in ("gaussian", "butterworth"):
            tuned = bl.tune_filter(tnoisy, tune_clean, kind)
            outputs[f"{kind}_filter"] = bl.apply_filter(noisy, kind, tuned["params"])
            extra[f"{kind}_filter"] = {"params": tuned["params"]}
        res: dict[str, Any] = {"by_source": {}}
        for g, rows in groups.items():
            gr: dict[str, Any] = {k: metrics(y, rows) for k, y in outputs.items()}
            gr["clean"] = {"accel_mm": acceleration_mm(clean[rows])}
            best = min(gr["gaussian_filter"]["mpjpe_mm"], gr["butterworth_filter"]["mpjpe_mm"])
            gr["dposer_vs_best_filter"] = gr["dposer"]["mpjpe_mm"] / best
            gr["n_windows"] = int(len(rows))
            if g == "pooled":
                res.update(gr)
            else:
                res["by_source"][g] = gr
        for k, v in extra.items():
            res[k].update(v)
        est = [tasks.estimate_noise_mm(w) for w in noisy[: min(8, len(noisy))]]
        res["noise_estimate_mm"] = float(np.mean(est))
        out[f"{lvl}mm"] = res
        log(f"[eval] denoising {lvl} mm: input {res['input']['mpjpe_mm']:.1f}, dposer {res['dposer']['mpjpe_mm']:.1f} "
            f"(acc x{res['dposer']['accel_ratio']:.2f}), no prior {res['dposer_no_prior']['mpjpe_mm']:.1f}, "
            f"gauss {res['gaussian_filter']['mpjpe_mm']:.1f} (acc x{res['gaussian_filter']['accel_ratio']:.2f}), "
            f"butter {res['butterworth_filter']['mpjpe_mm']:.1f} mm")
    out["settings"] = {"n_windows": int(len(win)), "n_windows_per_source": n_windows, "window": L,
                       "n_tuning_windows": int(len(tune_win)),
                       "noise": "i.i.d. Gaussian per coordinate on the 22 FK joints",
                       "accel": "mean ||J[t+1] - 2 J[t] + J[t-1]|| (mm/frame^2, 30 fps); ratio to the clean motion's",
                       "filters_tuned_on": "separate held-out windows with their own noise draw"}
    return out


# ================================================================================ interpolation


def eval_interpolation(prior: PosePrior, data: EvalData, n_roundtrip: int, n_clips: int, seed: int,
                       adaptive: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """ODE round trip (fixed-step Heun and adaptive RK45) and in-betweening hold-out."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"roundtrip": {}}
    p = _subset(data.frames(), n_roundtrip, rng)
    pj = mt.fk_joints(p)
    configs = [("heun", tasks.ODE_DEFAULTS["steps"])]
    if adaptive:
        configs.append(("RK45", None))
    for method, steps in configs:
        pp = p if method == "heun" else p[: max(8, len(p) // 4)]
        t0 = time.perf_counter()
        lat = tasks.encode(prior, pp, method=method, steps=steps)
        rec = tasks.decode(prior, lat, method=method, steps=steps)
        key = f"ode_{method.lower()}" + (f"_{steps}" if steps else "")
        out["roundtrip"][key] = {"mpjpe_mm": _mean(mt.mpjpe(mt.fk_joints(rec), pj[: len(pp)])),
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
            d = tasks.inbetween(prior, poses[[a, b]], K)["poses"][1:-1]
            t_d += time.perf_counter() - t0
            d1 = tasks.inbetween(prior, poses[[a, b]], K, t_latent=1.0)["poses"][1:-1]
            sl = bl.slerp_fill(poses[a], poses[b], K)
            kt = [t for t in (a - (K + 1), a, b, b + (K + 1)) if 0 <= t < T]
            cu = bl.cubic_fill(poses[kt], np.asarray(kt, float), np.arange(a + 1, b, dtype=float))
            rj = mt.fk_joints(real)
            for name, f in (("dposer", d), ("dposer_latent_T1", d1), ("slerp", sl), ("cubic", cu)):
                errs[name].append(mt.mpjpe(mt.fk_joints(f), rj).mean())
                fills[name].append(f)
            fills["real"].append(real)
        res: dict[str, Any] = {}
        for name in meths + ("real",):
            sc = tasks.score(prior, np.concatenate(fills[name], 0))["pose"]
            res[name] = {"plausibility": _mean(sc)}
            if name != "real":
                res[name]["mpjpe_mm"] = _mean(np.asarray(errs[name]))
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


# ================================================================================ generation


def _gen_metrics(poses: np.ndarray, real_j: np.ndarray, train_j: np.ndarray, limits: mt.JointLimits,
                 n_apd: int = 500) -> dict[str, float]:
    j = mt.fk_joints(poses)
    return {"apd_cm": mt.apd(j[:n_apd]),
            "frechet_fk": mt.frechet_distance(j[:, 4:].reshape(len(j), -1), real_j[:, 4:].reshape(len(real_j), -1)),
            "nn_to_train_mm": _mean(mt.nearest_neighbour_mpjpe(j, train_j)),
            "floor_violation_rate": _mean(mt.floor_violation(j)),
            "feet_flat_share": _mean(mt.feet_flat_under_hips(j)),
            "joint_limit_violation_rate": _mean(limits.violations(poses))}


def eval_generation(prior: PosePrior, data: EvalData, n_samples: int, n_em: int, seed: int,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """APD, Fréchet distance on FK joints vs held-out real poses, NN distance to train, floor and
    joint-limit violation rates for DPoser (EM 1000 steps; DDIM-style 10/20 steps with eta 1; deterministic
    DDIM 10 steps; probability-flow ODE), a Gaussian fitted to the
    training poses, and the held-out real poses themselves (reference)."""
    rng = np.random.default_rng(seed)
    real = _subset(data.frames(), max(n_samples, 1000), rng)
    real_j = mt.fk_joints(real)
    train_j = mt.fk_joints(_subset(data.train_poses, 50_000, rng))
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
    held = _subset(data.frames(), n_samples, np.random.default_rng(seed + 1))
    out["real_heldout"] = {**_gen_metrics(held, real_j, train_j, limits), "n": int(len(held))}
    by_src = {}
    if len(data.sources()) > 1:
        fs = data.frame_sources()
        frames = data.frames()
        srng = np.random.default_rng(seed + 2)
        for src in data.sources():
            h = _subset(frames[fs == src], min(n_samples, 500), srng)
            hj = mt.fk_joints(h)
            by_src[src] = {"apd_cm": mt.apd(hj), "feet_flat_share": _mean(mt.feet_flat_under_hips(hj)), "n": int(len(h))}
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


# ================================================================================ report


SOURCE_FAMILY = {"bandai1": "bandai_namco", "bandai2": "bandai_namco", "cmu-daz": "cmu_daz",
                 "cmu-cgspeed": "cmu_cgspeed"}


def eval_convention(data: EvalData) -> dict[str, Any]:
    """Retarget convention (issue 11 §1) of the training poses: per joint, mean/std vs DPoser's AMASS
    statistics, for the train split pooled, per skeleton family and per source."""
    from backend.data.retarget_report import CONVENTION_JOINTS, convention_stats, convention_table
    ds = data.dataset
    if ds is None:
        return {}
    fs = np.repeat(ds.clip_sources, np.diff(ds.clip_starts)).astype(str)
    fn = np.repeat(ds.clip_names, np.diff(ds.clip_starts)).astype(str)
    tr = ds.frame_mask("train") & ds.dedup_mask
    fam = np.array([SOURCE_FAMILY.get(x, x) for x in fs], dtype=object)
    fam[np.char.find(fn, "przestr/16/") >= 0] = "cmu_asf"  # the two ASF-named CMU clips (subject 16)
    fam = fam.astype(str)
    groups = {"train (all)": ds.poses[tr]}
    for f in sorted(set(fam[tr])):
        groups[f"family {f}"] = ds.poses[tr & (fam == f)]
    for x in sorted(set(fs[tr])):
        groups[f"source {x}"] = ds.poses[tr & (fs == x)]
    stats = {g: convention_stats(p) for g, p in groups.items()}
    ok = {g: all(stats[g][j]["ok"] for j in CONVENTION_JOINTS) for g in stats}
    return {"stats": stats, "pass": ok, "joints": list(CONVENTION_JOINTS),
            "table_md": convention_table(groups),
            "target": "every axis of the listed joints within 1 AMASS std of the AMASS mean (|z| <= 1)"}


def _fmt(x: float, d: int = 1) -> str:
    return f"{x:.{d}f}"


def format_table(res: dict[str, Any]) -> str:
    """Markdown tables of the results: pooled and per source."""
    lines: list[str] = []
    if "completion" in res:
        comp = {k: v for k, v in res["completion"].items() if k != "settings"}
        groups = ["pooled"] + sorted(next(iter(comp.values())).get("by_source", {})) if comp else []
        for g in groups:
            n = None
            lines += ["", f"Completion, {g}: MPJPE (mm) on the hidden part's joints, {res['completion']['settings']['n_hypotheses']}"
                      " hypotheses; APD (cm) between hypotheses, over all 22 joints and over the hidden part's", "",
                      "| mask | method | best of H | score-ranked 1st (NN: nearest) | mean over H | APD cm (22 joints) | APD cm (hidden part's joints) |",
                      "|---|---|---:|---:|---:|---:|---:|"]
            for mask, r in comp.items():
                rr = r if g == "pooled" else r["by_source"][g]
                n = rr.get("n", n)
                for m in ("dposer", "nn_retrieval", "mean_pose_fill"):
                    x = rr[m]
                    lines.append(f"| {mask} | {m} | {_fmt(x['best_of_h_mm'])} | {_fmt(x['score_ranked_first_mm'])} | "
                                 f"{_fmt(x['mean_over_h_mm'])} | {_fmt(x['apd_cm'])} | {_fmt(x['apd_hidden_cm'])} |")
            if n is not None:
                lines.append(f"({n} poses)")
    if "denoising" in res:
        den = {k: v for k, v in res["denoising"].items() if k != "settings"}
        groups = ["pooled"] + sorted(next(iter(den.values())).get("by_source", {})) if den else []
        for g in groups:
            lines += ["", f"Denoising, {g}: MPJPE (mm) / mean joint acceleration as a multiple of the clean motion's", "",
                      "| noise | input | DPoser | DPoser no prior | Gaussian (tuned) | Butterworth (tuned) | DPoser / best filter |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for lvl, r in den.items():
                rr = r if g == "pooled" else r["by_source"][g]
                cell = lambda m: f"{_fmt(rr[m]['mpjpe_mm'])} / {rr[m]['accel_ratio']:.2f}x"  # noqa: E731
                lines.append(f"| {lvl} | {cell('input')} | {cell('dposer')} | {cell('dposer_no_prior')} | "
                             f"{cell('gaussian_filter')} | {cell('butterworth_filter')} | {rr['dposer_vs_best_filter']:.2f} |")
    if "interpolation" in res:
        r = res["interpolation"]
        lines += ["", "Interpolation", ""]
        for k, v in r["roundtrip"].items():
            lines.append(f"- ODE round trip {k}: {v['mpjpe_mm']:.2f} mm (n={v['n']}, {v['seconds']:.1f} s)")
        lines += ["", "| in-between | DPoser | DPoser (T=1) | slerp | cubic | real |", "|---|---:|---:|---:|---:|---:|"]
        for k, v in r.items():
            if not k.startswith("inbetween"):
                continue
            lines.append(f"| {k} (MPJPE mm / plausibility) | " + " | ".join(
                f"{v[m]['mpjpe_mm']:.1f} / {v[m]['plausibility']:.3f}" for m in ("dposer", "dposer_latent_T1", "slerp", "cubic"))
                + f" | {v['real']['plausibility']:.3f} |")
    if "generation" in res:
        lines += ["", "Generation (pooled held-out poses as reference)", "",
                  "| method | APD cm | APD / real held-out | APD / held-out in the training mix | Fréchet (FK) | NN to train mm | floor viol. | limit viol. | feet flat |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for k, v in res["generation"].items():
            if k == "settings":
                continue
            ratio = f"{v['apd_vs_real']:.2f}" if "apd_vs_real" in v else "-"
            ratio2 = f"{v['apd_vs_real_training_mix']:.2f}" if "apd_vs_real_training_mix" in v else "-"
            lines.append(f"| {k} | {v['apd_cm']:.1f} | {ratio} | {ratio2} | {v['frechet_fk']:.4f} | {v['nn_to_train_mm']:.1f} | "
                         f"{v['floor_violation_rate']:.3f} | {v['joint_limit_violation_rate']:.3f} | {v['feet_flat_share']:.2f} |")
        bs = res["generation"].get("real_heldout", {}).get("by_source", {})
        for src, v in bs.items():
            lines.append(f"| real held-out {src} | {v['apd_cm']:.1f} | | | | | | | {v['feet_flat_share']:.2f} |")
    if res.get("convention"):
        c = res["convention"]
        lines += ["", "Retarget convention (train poses vs AMASS): largest |mean - AMASS mean| / AMASS std over the 3 axes;"
                  " target <= 1", "", c["table_md"]]
    return "\n".join(lines).strip()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backend.eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="*", default=None, help="AMASS .npz / .bvh files or folders (default: prepared val split)")
    p.add_argument("--dataset", default=None, help="prepared dataset .npz (default: the newest build in the cache)")
    p.add_argument("--json", required=True, help="output JSON path")
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="few poses/windows/clips (smoke test)")
    p.add_argument("--tasks", default="completion,denoising,interpolation,generation,convention")
    p.add_argument("--n-complete", type=int, default=None,
                   help="poses per source per completion mask (default 64; quick 4)")
    p.add_argument("--n-windows", type=int, default=None, help="60-frame denoising windows per source (default 12; quick 2)")
    p.add_argument("--n-clips", type=int, default=None, help="clips per in-between K (default 24; quick 2)")
    p.add_argument("--n-samples", type=int, default=None, help="generated poses (default 1000; quick 32)")
    p.add_argument("--n-em", type=int, default=None, help="EM-1000 samples (default 500; quick 4)")
    p.add_argument("--smpl-model", default=None, help="SMPL model file (.npz/.pkl): adds MPVPE")
    p.add_argument("--debug", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    q = args.quick
    n_complete = args.n_complete or (4 if q else 64)
    n_windows = args.n_windows or (2 if q else 12)
    n_clips = args.n_clips or (2 if q else 24)
    n_samples = args.n_samples or (32 if q else 1000)
    n_em = args.n_em or (4 if q else 500)
    wanted = [t.strip() for t in args.tasks.split(",") if t.strip()]
    try:
        device = "cuda" if args.device == "auto" and torch.cuda.is_available() else (
            "cpu" if args.device == "auto" else args.device)
        prior = PosePrior.load(args.weights, device=device)
        data = load_eval_data(args.data, seed=args.seed, max_train=20_000 if q else 200_000, dataset=args.dataset)
        print(f"[eval] data: {data.source}; {sum(len(p) for _, p in data.clips)} eval frames, "
              f"{len(data.train_poses)} train poses", file=sys.stderr)
        res: dict[str, Any] = {}
        log = lambda s: print(s, file=sys.stderr)  # noqa: E731
        vm = mt.VertexMetric(args.smpl_model) if args.smpl_model else None
        t0 = time.perf_counter()
        if "completion" in wanted:
            res["completion"] = eval_completion(prior, data, n_complete, 3 if q else 10, args.seed, log, vm)
        if "denoising" in wanted:
            res["denoising"] = eval_denoising(prior, data, n_windows, args.seed, log=log, vm=vm)
        if "interpolation" in wanted:
            res["interpolation"] = eval_interpolation(prior, data, 16 if q else 256, n_clips, args.seed,
                                                      adaptive=not q, log=log)
        if "generation" in wanted:
            res["generation"] = eval_generation(prior, data, n_samples, n_em, args.seed, log)
        if "convention" in wanted:
            res["convention"] = eval_convention(data)
    except (InputError, tasks.BadInput, FileNotFoundError, ValueError) as e:
        if args.debug:
            raise
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001
        if args.debug:
            raise
        print(f"error: {type(e).__name__}: {' '.join(str(e).split())} (run with --debug)", file=sys.stderr)
        return 1
    prov = prior.checkpoint.provenance if prior.checkpoint else {}
    res["settings"] = {"weights": str(args.weights), "checkpoint_provenance": prov, "device": device,
                       "data": data.source, "quick": q, "n_complete": n_complete, "n_windows": n_windows,
                       "n_clips": n_clips, "n_samples": n_samples, "n_em": n_em,
                       "machine": f"{platform.machine()} {platform.processor() or ''} torch {torch.__version__} "
                                  f"threads {torch.get_num_threads()}".strip(),
                       "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "seconds": time.perf_counter() - t0}
    res["seed"] = args.seed
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2, default=float))
    print(format_table(res))
    print(f"[eval] wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
