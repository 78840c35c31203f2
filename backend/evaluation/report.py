"""The markdown tables ``python -m backend.eval`` prints: pooled and per source."""

from __future__ import annotations

from typing import Any


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
