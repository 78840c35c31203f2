"""Pose completion (the paper's Table 1 task): hide a body part, fill it in, compare with the truth."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from backend import tasks
from backend.engine.prior import PosePrior
from backend.evaluation import baselines as bl
from backend.evaluation import metrics as mt
from backend.evaluation.eval_data import EvalData, mean, source_groups, stratified
from dposer_core.constants import BODY_MASKS
from dposer_core.keep import keep_from_mask
from dposer_core.kinematics_np import forward_kinematics

COMPLETION_MASKS = ("left_leg", "legs", "arms", "trunk")


def eval_completion(prior: PosePrior, data: EvalData, n_poses: int, n_hyp: int, seed: int,
                    log: Callable[[str], None] = print, vm: mt.VertexMetric | None = None) -> dict[str, Any]:
    """Per mask: MPJPE on the joints moved by the hidden rotations (best of H, mean over H,
    score-ranked first), APD over hypotheses; baselines mean-pose fill and NN retrieval (nearest
    first). ``n_poses`` poses per source; results pooled (top level) and per source (``by_source``)."""
    rng = np.random.default_rng(seed)
    gt, gsrc = stratified(data, n_poses, rng)
    groups = source_groups(gsrc, data.sources())
    gt_j = forward_kinematics(gt)
    mean_pose = data.train_poses.mean(0)
    out: dict[str, Any] = {}

    def summary(err: np.ndarray, joints: np.ndarray | None, rows: np.ndarray, jidx: list[int]) -> dict[str, float]:
        e = err[rows]
        r = {"best_of_h_mm": mean(e.min(1)), "mean_over_h_mm": mean(e.mean(1)),
             "score_ranked_first_mm": mean(e[:, 0])}
        r["apd_cm"] = mt.apd_batched(joints[rows]) if joints is not None else 0.0
        r["apd_hidden_cm"] = mt.apd_batched(joints[rows][:, :, jidx]) if joints is not None else 0.0
        return r

    for mask in COMPLETION_MASKS:
        keep = keep_from_mask(mask)
        jidx = mt.hidden_fk_joints(BODY_MASKS[mask])
        t0 = time.perf_counter()
        r = tasks.complete(prior, gt, keep, n_hypotheses=n_hyp, seed=seed)
        dt = time.perf_counter() - t0
        hj = forward_kinematics(r["poses"])  # (N,H,22,3)
        err = mt.mpjpe(hj, gt_j[:, None], jidx)  # (N,H)
        mp = bl.mean_pose_fill(gt, keep, mean_pose)
        e_mp = mt.mpjpe(forward_kinematics(mp), gt_j, jidx)[:, None]
        nn = bl.nn_retrieval_fill(gt, keep, data.train_poses, k=n_hyp)
        nj = forward_kinematics(nn)
        e_nn = mt.mpjpe(nj, gt_j[:, None], jidx)
        if vm is not None:
            ev_, en = vm.mpvpe(r["poses"], gt[:, None]), vm.mpvpe(nn, gt[:, None])
            ep = vm.mpvpe(mp, gt)
        res: dict[str, Any] = {"by_source": {}}
        for g, rows in groups.items():
            gr = {"dposer": summary(err, hj, rows, jidx), "mean_pose_fill": summary(e_mp, None, rows, jidx),
                  "nn_retrieval": summary(e_nn, nj, rows, jidx), "n": int(len(rows))}
            if vm is not None:
                gr["dposer"].update(mpvpe_best_of_h_mm=mean(ev_[rows].min(1)), mpvpe_ranked_first_mm=mean(ev_[rows, 0]))
                gr["mean_pose_fill"]["mpvpe_mm"] = mean(ep[rows])
                gr["nn_retrieval"].update(mpvpe_best_of_h_mm=mean(en[rows].min(1)), mpvpe_ranked_first_mm=mean(en[rows, 0]))
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
