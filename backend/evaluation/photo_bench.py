"""The honest photo-fitting benchmark (issue 13): render the mannequin in held-out poses, run the full
photo pipeline (mediapipe included) on the renders, and score the fits against the rendering poses.

    .venv/bin/python -m backend.evaluation.photo_bench [--poses 12] [--views "0,5;45,10;-80,5;180,5"]
        [--out bench_out/photo] [--noise-poses 40] [--sheet docs/images/photo_fits.png]

Steps:

1. **Held-out poses**: the val split of the prepared dataset (``backend.data.dataset.load_dataset()``)
   when it is built; otherwise the five CMU (DAZ BVH) clips that the shipped weights' build held out
   (salsa, martial arts, a walk, ...; same split rule as ``assign_splits``: lowest name hashes), read
   from ``shared/data/mocap/cmu-daz.tar.xz`` and retargeted. Frames every 0.5 s, ``--poses`` drawn at
   random (seeded). The clip's root tilt is kept and its heading removed, so the view azimuth alone
   sets where the body faces.
2. **Renders**: ``tools/photo_render_blender.py`` in the bpy 5.0 venv (Workbench,
   mannequin, floor), one image per pose and view, 480x640, 50 mm lens.
3. **Fits**: mediapipe keypoints -> ``fit_keypoints`` with (a) no prior (reprojection + bending only),
   (b) a Gaussian fitted to training poses, (c) DPoser, same hypotheses, steps and data weights; each
   variant's prior weight tuned on a separate tuning set of poses (``--tune``), never on the test poses.
4. **Metrics**: PA-MPJPE (Procrustes: rotation, translation, scale) and MPJPE (pelvis-aligned, camera
   frame, so the global orientation counts) over the 22 SMPL body joints, mm, for the top-ranked
   hypothesis, plus the oracle best of the hypotheses.
5. **Noise ablation**: ground-truth 2D keypoints (the same keypoint set, projected with the render
   cameras) plus Gaussian pixel noise, no mediapipe.

Writes ``<out>/results.json`` and prints the tables; ``--sheet`` draws the contact sheet. Steps 1-2 are in
:mod:`backend.evaluation.photo_renders`; PA-MPJPE is :func:`backend.evaluation.metrics.procrustes_error`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from backend import DEFAULT_WEIGHTS, ROOT
from backend.evaluation.metrics import pelvis_error, procrustes_error
from backend.evaluation.photo_renders import (DEFAULT_VIEWS, camera_truth, gaussian_train_poses, heldout_poses,
                                              render)


# ---------------------------------------------------------------------------------------- metrics

def score_fit(res, truth: dict) -> dict:  # noqa: ANN001
    """Top-1 and oracle errors of a FitResult against ``camera_truth``."""
    from backend.photo.fit import fk_camera_joints

    Jf = fk_camera_joints(res.poses, res.root_orient_cam)
    gt = truth["joints_cam"]
    pa = [procrustes_error(j, gt) for j in Jf]
    mp = [pelvis_error(j, gt) for j in Jf]
    return {"pa": pa[0], "mpjpe": mp[0], "pa_oracle": min(pa), "mpjpe_oracle": min(mp),
            "all": {"pa": pa, "mpjpe": mp, "data": res.data_loss.tolist(), "prior": res.prior_score.tolist(),
                    "swapped": res.labels_swapped.astype(float).tolist()},
            "init": res.init[0], "seconds": res.seconds, "cpu_seconds": res.extra.get("cpu_seconds", float("nan"))}


# ---------------------------------------------------------------------------------------- runs

def method_configs(tuned: dict | None = None) -> dict:
    """The three compared variants (same data term, schedule, steps and hypotheses); prior and ranking
    weights from :func:`tune` when given."""
    from backend.photo.fit import FitConfig

    t = tuned or {}
    base = FitConfig()

    def cfg(kind: str, default_w: float, default_rp: float) -> FitConfig:
        d = t.get(kind, {})
        return FitConfig(prior=kind, w_prior=d.get("w_prior", default_w), rank_prior=d.get("rank_prior", default_rp),
                         rank_swap=d.get("rank_swap", base.rank_swap), w_3d=0.0)  # 3D term: its own row
    return {"none": cfg("none", 0.0, 0.0), "gaussian": cfg("gaussian", 0.003, 0.003),
            "dposer": cfg("dposer", base.w_prior, base.rank_prior)}


def synthetic_keypoints(truth: dict, noise_px: float, rng: np.random.Generator):  # noqa: ANN201
    """Ground-truth 2D keypoints + N(0, noise_px^2) per coordinate, confidence 1."""
    from backend.photo.keypoints import NUM_KEYPOINTS, Keypoints

    uv = truth["keypoints_2d"] + rng.normal(0.0, noise_px, truth["keypoints_2d"].shape) if noise_px > 0 \
        else truth["keypoints_2d"].copy()
    return Keypoints(uv, np.ones(NUM_KEYPOINTS), truth["image_size"])


def run_fits(prior, items: list[tuple[object, dict]], configs: dict, gaussian, H: int = 4,  # noqa: ANN001
             log=print) -> dict:  # noqa: ANN001
    """items: (Keypoints, truth) -> {method: [score dicts]}."""
    from backend.photo.fit import fit_keypoints

    out: dict[str, list] = {m: [] for m in configs}
    for i, (kp, truth) in enumerate(items):
        for m, cfg in configs.items():
            res = fit_keypoints(prior, kp, H, cfg, gaussian=gaussian, skeleton=None, seed=i)
            out[m].append(score_fit(res, truth))
        if log and (i + 1) % 10 == 0:
            log(f"  {i + 1}/{len(items)} fitted")
    return out


def summarise(rows: dict) -> dict:
    s = {}
    for m, r in rows.items():
        if not r:
            continue
        s[m] = {k: float(np.mean([x[k] for x in r])) for k in ("pa", "mpjpe", "pa_oracle", "mpjpe_oracle", "seconds", "cpu_seconds")}
        s[m]["median_pa"] = float(np.median([x["pa"] for x in r]))
        s[m]["n"] = len(r)
    return s


def table(summary: dict, title: str) -> str:
    lines = [f"### {title}", "", "| method | PA-MPJPE (mm) | MPJPE (mm) | oracle best-of-H PA / MPJPE | median PA | fit s | n |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for m, r in summary.items():
        lines.append(f"| {m} | {r['pa']:.1f} | {r['mpjpe']:.1f} | {r['pa_oracle']:.1f} / {r['mpjpe_oracle']:.1f} | "
                     f"{r['median_pa']:.1f} | {r['seconds']:.2f} | {r['n']} |")
    if "dposer" in summary:
        for b in ("none", "gaussian"):
            if b in summary:
                gain = 100 * (1 - summary["dposer"]["pa"] / summary[b]["pa"])
                lines.append(f"\nDPoser vs {b}: {gain:+.1f}% PA-MPJPE (target: >= 15%)")
    return "\n".join(lines)


def rerank(rows: list[dict], rank_prior: float, rank_swap: float) -> list[dict]:
    """Top-1 errors of fitted rows (``score_fit`` with ``all``) under other ranking weights (no refit)."""
    out = []
    for r in rows:
        a = r["all"]
        key = np.array(a["data"]) + rank_prior * np.array(a["prior"]) + rank_swap * np.array(a["swapped"])
        i = int(np.argmin(key))
        out.append({**r, "pa": a["pa"][i], "mpjpe": a["mpjpe"][i]})
    return out


RANK_PRIOR_GRID = (0.0, 0.002, 0.005, 0.01, 0.02)
RANK_SWAP_GRID = (0.0, 0.02, 0.05, 0.1)


def tune(prior, items, gaussian, grid_dposer=(0.001, 0.004, 0.015),  # noqa: ANN001
         grid_gauss=(0.001, 0.003, 0.01, 0.03), H: int = 4, log=print) -> dict:  # noqa: ANN001
    """Per method, the prior weight and the ranking weights (prior score, label swap) with the lowest
    mean top-1 PA-MPJPE on the tuning items (other poses than the test set). Each prior weight is fitted
    once; the ranking weights are chosen on those fits (re-ranking needs no refit)."""
    from backend.photo.fit import FitConfig

    best: dict = {"grid": {}}
    for kind, grid in (("none", (0.0,)), ("dposer", grid_dposer), ("gaussian", grid_gauss)):
        cand = []
        for w in grid:
            cfg = FitConfig(prior=kind, w_prior=w, w_3d=0.0)
            rows = run_fits(prior, items, {kind: cfg}, gaussian, H, log=None)[kind]
            for rp in (RANK_PRIOR_GRID if kind != "none" else (0.0,)):
                for rs in RANK_SWAP_GRID:
                    pa = float(np.mean([x["pa"] for x in rerank(rows, rp, rs)]))
                    cand.append((pa, w, rp, rs))
                    best["grid"][f"{kind} w={w} rank_prior={rp} rank_swap={rs}"] = pa
            log(f"  tune {kind} w_prior={w}: best PA-MPJPE {min(c[0] for c in cand if c[1] == w):.1f}")
        pa, w, rp, rs = min(cand)
        best[kind] = {"w_prior": w, "rank_prior": rp, "rank_swap": rs, "pa": pa}
        log(f"  -> {kind}: {best[kind]}")
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m backend.evaluation.photo_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--poses", type=int, default=12, help="held-out poses to render")
    p.add_argument("--views", default=DEFAULT_VIEWS, help='"az,el;az,el;..." degrees (0 = facing the camera)')
    p.add_argument("--noise-poses", type=int, default=40, help="poses x views for the keypoint-noise ablation")
    p.add_argument("--noise-px", default="0,5,10,20")
    p.add_argument("--tune-poses", type=int, default=8, help="separate poses for tuning the prior weights (0: defaults)")
    p.add_argument("--hypotheses", type=int, default=4)
    p.add_argument("--w3d", type=float, default=0.05, help="weight of the 3D world-landmark term in the extra row")
    p.add_argument("--out", default=str(ROOT / "bench_out" / "photo"))
    p.add_argument("--sheet", default=None, help="write the contact sheet PNG here")
    p.add_argument("--skip-renders", action="store_true", help="noise ablation only (no Blender, no mediapipe)")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    from backend.engine.prior import PosePrior
    from backend.photo.fit import FitConfig, GaussianPrior, replace
    from backend.photo.image_io import read_image_rgb
    from backend.photo.keypoints import detect_keypoints

    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    prior = PosePrior.load(args.weights)
    t0 = time.time()
    build = ((prior.checkpoint.provenance or {}).get("data", {}).get("build", {}) or {}).get("hash") \
        if prior.checkpoint is not None else None
    train, train_src = gaussian_train_poses(work, weights_build=build)
    gaussian = GaussianPrior.fit(train)
    print(f"Gaussian prior: {len(train)} training poses ({train_src}) [{time.time() - t0:.0f}s]")
    test = heldout_poses(args.poses, work, seed=0, offset=0, weights_build=build)
    tune_set = heldout_poses(args.tune_poses, work, seed=1, offset=7, weights_build=build) if args.tune_poses else None
    print(f"held-out poses: {len(test['poses'])} from {test['source']}: {', '.join(test['clips'])}")
    results: dict = {"machine": f"{platform.machine()} {os.cpu_count()} CPU(s), torch {torch.__version__} "
                                f"threads {torch.get_num_threads()}", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "held_out": {k: test[k] for k in ("source", "clips")}, "gaussian_train": f"{len(train)} poses, {train_src}",
                     "views": args.views, "hypotheses": args.hypotheses}
    rec = render(test["poses"], test["root_orient"], work / "renders", args.views)
    truths = [camera_truth(rec, k, test["poses"][int(rec["pose_index"][k])]) for k in range(len(rec["files"]))]
    print(f"renders: {len(truths)} images; max FK/render mismatch {1000 * max(t['fk_error_m'] for t in truths):.2f} mm")

    tuned: dict = {}
    if tune_set is not None:
        trec = render(tune_set["poses"], tune_set["root_orient"], work / "renders_tune", args.views)
        titems = []
        for k in range(len(trec["files"])):
            tt = camera_truth(trec, k, tune_set["poses"][int(trec["pose_index"][k])])
            try:
                titems.append((detect_keypoints(read_image_rgb(work / "renders_tune" / str(trec["files"][k]))), tt))
            except ValueError:
                pass
        print(f"tuning prior weights on {len(titems)} renders of other held-out poses (mediapipe keypoints) ...")
        tuned = tune(prior, titems, gaussian, H=args.hypotheses)
        results["tuned"] = tuned
    configs = method_configs(tuned)

    # --- full pipeline on the renders
    items, det_s, det_cpu, missed = [], [], [], []
    for k, truth in enumerate(truths):
        img = read_image_rgb(work / "renders" / str(rec["files"][k]))
        t1, c1 = time.perf_counter(), time.process_time()
        try:
            kp = detect_keypoints(img)
        except ValueError:
            missed.append(str(rec["files"][k]))
            continue
        det_s.append(time.perf_counter() - t1)
        det_cpu.append(time.process_time() - c1)
        items.append((kp, truth, k))
    print(f"mediapipe: {len(items)}/{len(truths)} renders with a person, {np.mean(det_s[1:] or det_s):.2f} s per image")
    cfgs = dict(configs)
    cfgs["dposer+3d"] = replace(configs["dposer"], w_3d=args.w3d)
    rows = run_fits(prior, [(kp, t) for kp, t, _ in items], cfgs, gaussian, args.hypotheses)
    summ = summarise(rows)
    results["renders"] = {"summary": summ, "detect_seconds": float(np.mean(det_s[1:] or det_s)),
                          "detect_cpu_seconds": float(np.mean(det_cpu[1:] or det_cpu)), "missed": missed,
                          "per_view": {}}
    views = [tuple(v) for v in rec["view"]]
    for v in sorted(set(views)):
        sel = [i for i, (_, _, k) in enumerate(items) if tuple(rec["view"][k]) == v]
        results["renders"]["per_view"][f"{v[0]:g},{v[1]:g}"] = summarise({m: [rows[m][i] for i in sel] for m in rows})
    print(table(summ, "Renders, full pipeline (mediapipe keypoints)"))
    for v, s in results["renders"]["per_view"].items():
        print(f"  view az,el={v}: " + ", ".join(f"{m} {r['pa']:.0f}/{r['mpjpe']:.0f}" for m, r in s.items()))

    # --- keypoint-noise ablation (GT 2D + noise, no mediapipe), on the same renders' cameras
    rng = np.random.default_rng(123)
    results["noise"] = {}
    for npx in [float(x) for x in args.noise_px.split(",")]:
        sel = truths[: args.noise_poses]
        nrows = run_fits(prior, [(synthetic_keypoints(t, npx, rng), t) for t in sel], configs, gaussian,
                         args.hypotheses, log=None)
        results["noise"][f"{npx:g}"] = summarise(nrows)
        print(table(results["noise"][f"{npx:g}"], f"GT 2D keypoints + {npx:g} px noise"))
    (work / "results.json").write_text(json.dumps(results, indent=1, default=float))
    if args.sheet:
        from backend.evaluation.photo_sheet import contact_sheet

        contact_sheet(prior, work, rec, truths, items, args.sheet, configs)
    print(f"wrote {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
