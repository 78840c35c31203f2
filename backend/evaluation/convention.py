"""The retarget convention of the training poses (issue 11 §1): per joint, mean and std against DPoser's
AMASS statistics, pooled, per skeleton family and per source."""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.data.retarget_report import CONVENTION_JOINTS, convention_stats, convention_table
from backend.evaluation.eval_data import EvalData


SOURCE_FAMILY = {"bandai1": "bandai_namco", "bandai2": "bandai_namco", "cmu-daz": "cmu_daz",
                 "cmu-cgspeed": "cmu_cgspeed"}


def eval_convention(data: EvalData) -> dict[str, Any]:
    """Retarget convention (issue 11 §1) of the training poses: per joint, mean/std vs DPoser's AMASS
    statistics, for the train split pooled, per skeleton family and per source."""
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
