"""PoseDataset: split by clip (deterministic, stratified), near-duplicate mask, save/load, build smoke test."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from backend.data.dataset import (assign_splits, build_dataset_from_clips, dedup_mask_for_clip,
                                  load_dataset, mark_latest, save_dataset)

DATA = Path(__file__).resolve().parents[2] / "data"
REPO = Path(__file__).resolve().parents[3]


@dataclass
class Clip:
    body_pose: np.ndarray
    root_orient: np.ndarray
    trans: np.ndarray


def make_clip(T: int, still_from: int | None = None, seed: int = 0) -> Clip:
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, T)[:, None]
    base = rng.normal(0, 0.3, size=(1, 63))
    bp = base + 0.4 * np.sin(t + rng.uniform(0, 6, size=(1, 63)))
    if still_from is not None:
        bp[still_from:] = bp[still_from]
    return Clip(bp.astype(np.float32), np.zeros((T, 3), np.float32), np.zeros((T, 3), np.float32))


def test_dedup_mask_drops_standing_still() -> None:
    from dposer_core.kinematics_np import forward_kinematics
    c = make_clip(60, still_from=20)
    J = forward_kinematics(c.body_pose)
    m = dedup_mask_for_clip(J, 0.015)
    assert m[0] and m.shape == (60,)
    assert m[21:].sum() == 0          # frozen tail: all duplicates of the last kept frame
    assert m[:20].sum() >= 10         # moving part mostly kept
    # any kept frame differs from the previous kept one by more than the threshold
    kept = np.flatnonzero(m)
    d = np.linalg.norm(J[kept[1:]] - J[kept[:-1]], axis=-1).max(-1)
    assert np.all(d > 0.015)
    # tiny jitter below the threshold is also dropped
    J2 = np.repeat(J[:1], 30, 0) + np.random.default_rng(0).normal(0, 0.001, size=(30, 22, 3))
    assert dedup_mask_for_clip(J2, 0.015).sum() == 1


def test_split_is_by_clip_deterministic_and_stratified() -> None:
    names = [f"s{i // 100}/clip_{i:03d}" for i in range(300)]
    sources = [f"src{i // 100}" for i in range(300)]
    a = assign_splits(names, sources, 0.05)
    b = assign_splits(list(reversed(names)), list(reversed(sources)), 0.05)[::-1]
    assert (a == b).all()  # independent of order
    for s in ("src0", "src1", "src2"):
        sel = np.array(sources) == s
        assert (a[sel] == "val").sum() == 5
    # a small source still gets a validation clip
    small = assign_splits(["a", "b", "c", "d"], ["x"] * 4, 0.05)
    assert (small == "val").sum() == 1


def test_dataset_frames_follow_their_clip(tmp_path: Path) -> None:
    clips = [(f"src{i % 2}/c{i}", f"src{i % 2}", make_clip(30 + i, still_from=25, seed=i)) for i in range(40)]
    ds = build_dataset_from_clips(clips, val_fraction=0.1)
    assert ds.num_clips == 40 and len(ds) == sum(30 + i for i in range(40))
    assert ds.poses.shape == (len(ds), 63) and ds.poses.dtype == np.float32
    assert ds.clip_starts[0] == 0 and ds.clip_starts[-1] == len(ds)
    fs = ds.frame_split()
    for c in range(ds.num_clips):
        a, b = ds.clip_starts[c], ds.clip_starts[c + 1]
        assert set(fs[a:b]) == {ds.clip_split[c]}  # never split inside a clip
    assert set(ds.clip_split) == {"train", "val"}
    n_train = (ds.frame_mask("train") & ds.dedup_mask).sum()
    assert ds.train_poses().shape == (n_train, 63)
    assert len(ds.train_poses()) + len(ds.val_poses()) == ds.dedup_mask.sum() < len(ds)
    val_clips = list(ds.clips("val"))
    assert val_clips and all(c.split == "val" for c in val_clips)
    np.testing.assert_array_equal(val_clips[0].poses, ds.poses[val_clips[0].start:val_clips[0].start + len(val_clips[0].poses)])
    s = ds.summary()
    assert s["total"]["clips"] == 40 and s["total"]["frames"] == len(ds)

    p = save_dataset(ds, tmp_path / "cache" / "abc.npz")
    mark_latest(p)
    ds2 = load_dataset(tmp_path / "cache")
    np.testing.assert_array_equal(ds2.poses, ds.poses)
    np.testing.assert_array_equal(ds2.clip_split, ds.clip_split)
    np.testing.assert_array_equal(ds2.dedup_mask, ds.dedup_mask)
    assert ds2.meta["val_fraction"] == 0.1
    with pytest.raises(FileNotFoundError, match="backend.data.build"):
        load_dataset(tmp_path / "empty")


def test_build_cli_on_small_archives(tmp_path: Path) -> None:
    """`python -m backend.data.build` on tiny archives made from the shipped clips, cache outside the repo."""
    mocap = tmp_path / "mocap"
    mocap.mkdir()
    for stem, files in {"cmu-daz": ["cmu_daz_07_01_walk.bvh"], "bandai1": ["bandai1_walk_normal_001_trim90.bvh"],
                        "cmu-cgspeed": ["cmu_cgspeed_131_01_trim241.bvh"]}.items():
        with tarfile.open(mocap / f"{stem}.tar.xz", "w:xz") as tf:
            for f in files:
                tf.add(DATA / f, arcname=f"{stem}/{f}")
    cache = tmp_path / "cache"
    r = subprocess.run([sys.executable, "-m", "backend.data.build", "--mocap", str(mocap), "--cache", str(cache),
                        "--no-report"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "total" in r.stdout and "hours" in r.stdout
    ds = load_dataset(cache / "dataset")
    assert ds.num_clips == 3 and set(ds.clip_sources) == {"cmu-daz", "bandai1", "cmu-cgspeed"}
    assert np.all(np.isfinite(ds.poses))
    assert (cache / "mocap" / "cmu-daz" / "cmu-daz" / "cmu_daz_07_01_walk.bvh").exists()
    latest = json.loads((cache / "dataset" / "latest.json").read_text())
    assert (cache / "dataset" / latest["file"]).exists()
    # refuses to cache inside the repo
    r = subprocess.run([sys.executable, "-m", "backend.data.build", "--mocap", str(mocap), "--cache",
                        str(REPO / "tmp_cache_should_not_exist"), "--no-report"], cwd=REPO, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and not (REPO / "tmp_cache_should_not_exist").exists()


def test_held_out_split_is_whole_styles_and_subjects() -> None:
    from backend.data.dataset import held_out_split
    names = ["bandai2/data/dataset-2_walk_feminine_001", "bandai2/data/dataset-2_walk_normal_001",
             "bandai2/data/dataset-2_walk-turn-left_feminine_012", "bandai1/data/dataset-1_walk-back_feminine_001",
             "bandai1/data/dataset-1_bow_tired_001", "cmu-daz/przestr/08/08_01", "cmu-daz/przestr/07/07_01",
             "cmu-daz/acrnn/indian/04", "cmu-daz/acrnn/salsa/04", "cmu-cgspeed/131_01", "mine/a", "mine/b",
             "mine/c", "mine/d"]
    sources = ["bandai2"] * 3 + ["bandai1"] * 2 + ["cmu-daz"] * 4 + ["cmu-cgspeed"] + ["mine"] * 4
    split = assign_splits(names, sources, 0.05)
    assert list(split[:10]) == ["val", "train", "val", "val", "train", "val", "train", "val", "train", "train"]
    assert (split[10:] == "val").sum() == 1  # other sources keep the hashed split
    assert held_out_split("mine/a", "mine") is None
    assert held_out_split("dataset-2_run_feminine_003", "bandai2") == "val"  # name without the source prefix
