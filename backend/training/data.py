"""Training data: a prepared dataset, or the user's BVH / AMASS folders retargeted and cached; per-source
sampling weights."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from backend.data.dataset import build_dataset_from_clips, default_cache_dir, load_dataset, save_dataset

__all__ = ["collect_user_clips", "source_weights", "load_training_data"]


def collect_user_clips(bvh_sources: list[tuple[str, str | None]], amass_sources: list[str]) -> list[tuple]:
    """Reads and retargets every clip under the given folders (or single files).

    Args:
        bvh_sources: (path, family or None for auto-detection) pairs; ``.bvh`` files found recursively.
        amass_sources: folders (or files) of AMASS ``.npz``, found recursively.
    Returns:
        [(clip name, source label, motion with body_pose (T,63), root_orient (T,3), trans (T,3))].
    """
    from tqdm import tqdm

    from backend.data.amass import read_amass
    from backend.data.retarget import retarget_file

    def files(root: str, suffix: str) -> list[Path]:
        r = Path(root).expanduser()
        if not r.exists():
            raise SystemExit(f"data source {r} does not exist")
        return [r] if r.is_file() else sorted(r.rglob(f"*{suffix}"))

    jobs = [(f, fam, Path(src).name) for src, fam in bvh_sources for f in files(src, ".bvh")]
    jobs += [(f, "amass", Path(src).name) for src in amass_sources for f in files(src, ".npz")]
    clips, failed = [], []
    for f, fam, label in tqdm(jobs, desc="reading clips", mininterval=2.0):
        try:
            m = read_amass(f) if fam == "amass" else retarget_file(f, family=fam)
            clips.append((f"{label}/{f.stem}", label, m))
        except Exception as e:  # a bad clip is reported, not fatal
            failed.append(f"{f}: {e}")
    for msg in failed:
        print(f"skipped {msg}", file=sys.stderr)
    if not clips:
        raise SystemExit("no readable clips in the given data sources")
    return clips


def source_weights(sources: np.ndarray, power: float) -> tuple[np.ndarray, dict[str, float]]:
    """Per-frame sampling weights (sum 1) giving each source a share ∝ (its frames)**power.

    Returns (weights (N,) float64, {source: share}). power 1 = uniform over frames, 0 = equal shares.
    """
    names, inv, counts = np.unique(np.asarray(sources).astype(str), return_inverse=True, return_counts=True)
    share = counts.astype(np.float64) ** power
    share /= share.sum()
    w = (share / counts)[inv]
    return w / w.sum(), {str(n): float(x) for n, x in zip(names, share)}


def load_training_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, dict]:
    """Returns (train_poses (N,63) f32, val_poses (M,63) f32, data provenance dict).

    The provenance dict carries ``train_sources`` (N,) (the source of each train pose), popped by
    :func:`train`.

    ``--dataset FILE`` loads a prepared set; ``--bvh``/``--amass`` read and retarget the given
    folders (cached by content under the dataset cache); with neither, the latest build of
    ``python -m backend.data.build`` is used.
    """
    if args.dataset:
        ds = load_dataset(path=args.dataset)
    elif args.bvh or args.amass:
        bvh = [tuple(s.rsplit(":", 1)) if ":" in s else (s, None) for s in args.bvh]
        key = hashlib.sha256(json.dumps([bvh, args.amass]).encode()).hexdigest()[:16]
        cache = (Path(args.cache).expanduser() if args.cache else default_cache_dir()) / f"user-{key}.npz"
        if cache.exists():
            ds = load_dataset(path=cache)
        else:
            ds = build_dataset_from_clips(collect_user_clips(bvh, list(args.amass)),
                                          meta={"sources": {"bvh": bvh, "amass": args.amass}})
            save_dataset(ds, cache)
    else:
        ds = load_dataset(cache_dir=args.cache)
    train, val = ds.train_poses().astype(np.float32), ds.val_poses().astype(np.float32)
    fsrc = np.repeat(ds.clip_sources, np.diff(ds.clip_starts))
    prov = {"summary": ds.summary(), "train_frames": int(train.shape[0]), "val_frames": int(val.shape[0]),
            "build": {k: v for k, v in ds.meta.items() if k != "failed"},
            "train_sources": fsrc[ds.frame_mask("train") & ds.dedup_mask]}
    return train, val, prov

