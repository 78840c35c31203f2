"""Prepared pose dataset: SMPL body poses at 30 fps from the mocap archives (numpy only).

``build_dataset_from_clips(...)`` assembles retargeted clips, drops near-duplicate frames (records a
``dedup_mask`` rather than deleting frames) and splits train/val *by clip*; ``python -m backend.data.build``
builds the set from the mocap archives and caches it outside the repo (default
``~/.cache/dposer/dataset/<hash>.npz``). ``load_dataset(cache_dir=None)`` loads the newest build.
See ``backend/data/README.md`` for what the built set holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from dposer_core.kinematics_np import forward_kinematics

__all__ = ["PoseDataset", "ClipRecord", "default_cache_dir", "dedup_mask_for_clip", "clip_hash", "split_for_clip",
           "assign_splits", "held_out_split", "HELD_OUT", "build_dataset_from_clips", "load_dataset", "save_dataset",
           "mark_latest", "DEDUP_THRESHOLD_M", "VAL_FRACTION"]

DEDUP_THRESHOLD_M = 0.015   # drop a frame if no FK joint moved more than 1.5 cm since the last kept frame
VAL_FRACTION = 0.05
FPS = 30.0


def default_cache_dir() -> Path:
    """``$DPOSER_CACHE/dataset`` or ``~/.cache/dposer/dataset``."""
    base = os.environ.get("DPOSER_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "dposer") / "dataset"


@dataclass
class ClipRecord:
    """One clip of a :class:`PoseDataset` (views into the dataset arrays).

    Attributes: name, source, split ('train'|'val'), poses (T,63), root_orient (T,3), trans (T,3),
    dedup_mask (T,) bool, start (index of its first frame in the dataset arrays).
    """

    name: str
    source: str
    split: str
    poses: np.ndarray
    root_orient: np.ndarray
    trans: np.ndarray
    dedup_mask: np.ndarray
    start: int


@dataclass
class PoseDataset:
    """All frames of all clips at 30 fps, clip-contiguous.

    Attributes:
        poses: (N,63) float32 body pose (SMPL joints 1..21, parent-relative axis-angle).
        root_orient: (N,3) float32 global orientation (SMPL native frame, +Y up).
        trans: (N,3) float32 translation in metres.
        clip_starts: (C+1,) int64; clip c is frames clip_starts[c]:clip_starts[c+1].
        clip_names: (C,) str.
        clip_sources: (C,) str, e.g. 'cmu-daz', 'bandai2'.
        clip_split: (C,) str, 'train' or 'val' (whole clips, never frames).
        dedup_mask: (N,) bool, frames kept after near-duplicate removal.
        meta: build parameters and provenance (dict, JSON-serialisable).
    """

    poses: np.ndarray
    root_orient: np.ndarray
    trans: np.ndarray
    clip_starts: np.ndarray
    clip_names: np.ndarray
    clip_sources: np.ndarray
    clip_split: np.ndarray
    dedup_mask: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    fps: float = FPS

    def __len__(self) -> int:
        return int(self.poses.shape[0])

    @property
    def num_clips(self) -> int:
        return int(len(self.clip_names))

    def frame_split(self) -> np.ndarray:
        """(N,) str split of every frame (its clip's split)."""
        return np.repeat(self.clip_split, np.diff(self.clip_starts))

    def frame_mask(self, split: str) -> np.ndarray:
        """(N,) bool: frames of clips in ``split`` ('train'|'val'|'all')."""
        if split == "all":
            return np.ones(len(self), dtype=bool)
        return self.frame_split() == split

    def train_poses(self) -> np.ndarray:
        """(n,63) float32 deduplicated frames of the train clips."""
        return self.poses[self.frame_mask("train") & self.dedup_mask]

    def val_poses(self) -> np.ndarray:
        """(n,63) float32 deduplicated frames of the val clips."""
        return self.poses[self.frame_mask("val") & self.dedup_mask]

    def clips(self, split: str = "all") -> Iterator[ClipRecord]:
        """Iterate over clips of ``split`` ('train'|'val'|'all') as :class:`ClipRecord`."""
        for c in range(self.num_clips):
            if split != "all" and self.clip_split[c] != split:
                continue
            a, b = int(self.clip_starts[c]), int(self.clip_starts[c + 1])
            yield ClipRecord(str(self.clip_names[c]), str(self.clip_sources[c]), str(self.clip_split[c]),
                             self.poses[a:b], self.root_orient[a:b], self.trans[a:b], self.dedup_mask[a:b], a)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per source (and 'total'): clips, frames, kept (deduped) frames, hours (all frames), train/val clips."""
        out: dict[str, dict[str, float]] = {}
        lens = np.diff(self.clip_starts)
        kept = np.add.reduceat(self.dedup_mask.astype(np.int64), self.clip_starts[:-1]) if self.num_clips else np.zeros(0)
        kept = np.where(lens > 0, kept, 0)
        for src in sorted(set(self.clip_sources.tolist())) + ["total"]:
            sel = np.ones(self.num_clips, bool) if src == "total" else self.clip_sources == src
            out[src] = {
                "clips": int(sel.sum()),
                "frames": int(lens[sel].sum()),
                "kept_frames": int(kept[sel].sum()),
                "hours": float(lens[sel].sum() / self.fps / 3600.0),
                "kept_hours": float(kept[sel].sum() / self.fps / 3600.0),
                "train_clips": int((sel & (self.clip_split == "train")).sum()),
                "val_clips": int((sel & (self.clip_split == "val")).sum()),
                "train_kept_frames": int(kept[sel & (self.clip_split == "train")].sum()),
                "val_kept_frames": int(kept[sel & (self.clip_split == "val")].sum()),
            }
        return out


# --------------------------------------------------------------------------- building blocks

def dedup_mask_for_clip(joints: np.ndarray, threshold_m: float = DEDUP_THRESHOLD_M) -> np.ndarray:
    """Near-duplicate removal within one clip.

    Args:
        joints: (T,J,3) FK joint positions (body pose only, root fixed) in metres.
        threshold_m: a frame is kept if some joint moved more than this since the last kept frame.

    Returns:
        (T,) bool mask; frame 0 is always kept.
    """
    T = joints.shape[0]
    keep = np.zeros(T, dtype=bool)
    if T == 0:
        return keep
    keep[0] = True
    last = joints[0]
    thr2 = threshold_m * threshold_m
    for t in range(1, T):
        d2 = np.max(np.sum((joints[t] - last) ** 2, axis=-1))
        if d2 > thr2:
            keep[t] = True
            last = joints[t]
    return keep


def clip_hash(name: str) -> float:
    """Deterministic number in [0,1) from a clip name."""
    h = hashlib.sha1(name.encode("utf-8")).hexdigest()
    return int(h[:12], 16) / float(16 ** 12)


def split_for_clip(name: str, val_fraction: float = VAL_FRACTION) -> str:
    """'val' or 'train' from a hash of the clip name alone (stable across builds)."""
    return "val" if clip_hash(name) < val_fraction else "train"


# The held-out split of the shipped archives (issue 11): whole styles / subjects, so that no val take
# has a near-twin (same actor, style and motion) in train. Fixed: change it only with a new issue.
#   bandai1, bandai2: the style "feminine" (file names dataset-{1,2}_{content}_{style}_{id}); both
#                     datasets have it, so neither half of the style leaks into train.
#   cmu-daz:          CMU subjects 08 and 13 (przestr/08, przestr/13) and the acRNN Indian-dance subject
#                     (acrnn/indian); clip names hold the subject folder.
#   cmu-cgspeed:      all train (a single subject, 131).
HELD_OUT: dict[str, dict[str, Any]] = {
    "bandai1": {"styles": ("feminine",)},
    "bandai2": {"styles": ("feminine",)},
    "cmu-daz": {"prefixes": ("przestr/08/", "przestr/13/", "acrnn/indian/")},
    "cmu-cgspeed": {"prefixes": ()},
}


def held_out_split(name: str, source: str) -> str | None:
    """'val'/'train' for a clip of a source with a fixed hold-out rule (:data:`HELD_OUT`), else None.

    ``name`` is the dataset clip name (``<source>/<path in the archive without .bvh>``) or that path.
    """
    rule = HELD_OUT.get(source)
    if rule is None:
        return None
    rel = name.split("/", 1)[1] if name.startswith(source + "/") else name
    stem = rel.rsplit("/", 1)[-1]
    if "styles" in rule:
        parts = stem.split("_")  # dataset-N_{content}_{style}_{id}
        style = parts[-2] if len(parts) >= 4 else ""
        return "val" if style in rule["styles"] else "train"
    return "val" if any(rel.startswith(p) for p in rule.get("prefixes", ())) else "train"


def assign_splits(names: Sequence[str], sources: Sequence[str], val_fraction: float = VAL_FRACTION) -> np.ndarray:
    """Deterministic by-clip split, stratified by source.

    Sources with a fixed hold-out rule (:data:`HELD_OUT`: the shipped archives) hold out whole
    styles / subjects. For any other source, clips are ranked by the hash of their name and the lowest
    ``round(val_fraction * n)`` (at least 1 when a source has >= 4 clips) go to 'val'.

    Returns:
        (C,) array of 'train'/'val'.
    """
    names = list(names)
    sources = list(sources)
    split = np.array(["train"] * len(names), dtype=object)
    for src in sorted(set(sources)):
        if src in HELD_OUT:
            for i, s in enumerate(sources):
                if s == src:
                    split[i] = held_out_split(names[i], src)
            continue
        idx = [i for i, s in enumerate(sources) if s == src]
        n_val = int(round(val_fraction * len(idx)))
        if n_val == 0 and len(idx) >= 4:
            n_val = 1
        ranked = sorted(idx, key=lambda i: (clip_hash(f"{src}/{names[i]}"), names[i]))
        for i in ranked[:n_val]:
            split[i] = "val"
    return split.astype(str)


def build_dataset_from_clips(clips: Sequence[tuple[str, str, Any]], dedup_threshold_m: float = DEDUP_THRESHOLD_M,
                             val_fraction: float = VAL_FRACTION, meta: dict[str, Any] | None = None) -> PoseDataset:
    """Assemble a :class:`PoseDataset` from retargeted clips.

    Args:
        clips: (name, source, motion) with ``motion`` having body_pose (T,63), root_orient (T,3),
            trans (T,3) at 30 fps (e.g. :class:`backend.data.retarget.SMPLMotion`).
        dedup_threshold_m: see :func:`dedup_mask_for_clip`.
        val_fraction: fraction of clips per source for validation.
    """
    poses, ro, tr, masks, lens, names, sources = [], [], [], [], [], [], []
    for name, source, m in clips:
        bp = np.asarray(m.body_pose, dtype=np.float32).reshape(-1, 63)
        if bp.shape[0] == 0:
            continue
        if not np.all(np.isfinite(bp)):
            continue
        joints = forward_kinematics(bp)
        masks.append(dedup_mask_for_clip(joints, dedup_threshold_m))
        poses.append(bp)
        ro.append(np.asarray(m.root_orient, dtype=np.float32).reshape(-1, 3))
        tr.append(np.asarray(m.trans, dtype=np.float32).reshape(-1, 3))
        lens.append(bp.shape[0])
        names.append(name)
        sources.append(source)
    starts = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    cat = (lambda xs, d: np.concatenate(xs) if xs else np.zeros((0, d), np.float32))
    meta = dict(meta or {})
    meta.update({"dedup_threshold_m": dedup_threshold_m, "val_fraction": val_fraction, "fps": FPS})
    return PoseDataset(
        poses=cat(poses, 63), root_orient=cat(ro, 3), trans=cat(tr, 3), clip_starts=starts,
        clip_names=np.asarray(names, dtype=str), clip_sources=np.asarray(sources, dtype=str),
        clip_split=assign_splits(names, sources, val_fraction) if names else np.zeros(0, dtype=str),
        dedup_mask=np.concatenate(masks) if masks else np.zeros(0, bool), meta=meta)


def save_dataset(ds: PoseDataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to an .npz (atomic rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, poses=ds.poses, root_orient=ds.root_orient, trans=ds.trans,
                        clip_starts=ds.clip_starts, clip_names=ds.clip_names, clip_sources=ds.clip_sources,
                        clip_split=ds.clip_split, dedup_mask=ds.dedup_mask,
                        meta=np.asarray(json.dumps(ds.meta)))
    os.replace(tmp, path)
    return path


def _load_npz(path: Path) -> PoseDataset:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"])) if "meta" in z else {}
        return PoseDataset(poses=z["poses"], root_orient=z["root_orient"], trans=z["trans"],
                           clip_starts=z["clip_starts"], clip_names=z["clip_names"], clip_sources=z["clip_sources"],
                           clip_split=z["clip_split"], dedup_mask=z["dedup_mask"], meta=meta)


def load_dataset(cache_dir: str | os.PathLike | None = None, path: str | os.PathLike | None = None) -> PoseDataset:
    """Load a prepared dataset.

    Args:
        cache_dir: directory holding builds (default :func:`default_cache_dir`); the build named in
            its ``latest.json`` is loaded, else the newest ``*.npz`` there.
        path: load this .npz directly instead.

    Raises:
        FileNotFoundError: with the command that builds the dataset.
    """
    if path is not None:
        return _load_npz(Path(path))
    d = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    latest = d / "latest.json"
    if latest.exists():
        p = d / json.loads(latest.read_text())["file"]
        if p.exists():
            return _load_npz(p)
    cands = sorted((p for p in d.glob("*.npz") if not p.name.endswith(".tmp.npz")), key=lambda p: p.stat().st_mtime)
    if not cands:
        raise FileNotFoundError(f"no prepared dataset in {d}; build it with `python -m backend.data.build`")
    return _load_npz(cands[-1])


def mark_latest(path: Path) -> None:
    """Point ``latest.json`` in ``path``'s directory at ``path``."""
    (path.parent / "latest.json").write_text(json.dumps({"file": path.name, "time": time.time()}))


