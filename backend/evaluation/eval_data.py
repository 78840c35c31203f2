"""The evaluation's clips and reference poses, and the per-source bookkeeping the tasks share.

Without ``--data`` the prepared dataset's held-out clips (whole styles / subjects,
``backend.data.dataset.HELD_OUT``) are evaluated, with its train split as the reference poses; with
``--data`` (AMASS ``.npz`` / BVH files or folders, 30 fps) those clips are, with the prepared train split
as the reference when it exists, else the clips whose name hashes to 'train'
(``backend.data.dataset.split_for_clip``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from backend.cli_io import InputError, load_input

__all__ = ["EvalData", "load_eval_data", "source_groups", "stratified", "subset", "mean"]


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


def source_groups(sources: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """{'pooled': all rows, <source>: its rows} (a source only when there are several)."""
    g = {"pooled": np.arange(len(sources))}
    if len(names) > 1:
        for s in names:
            g[s] = np.flatnonzero(sources == s)
    return g


def stratified(data: EvalData, n_per_source: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n_per_source`` evaluated frames of each source -> (poses (N,63), sources (N,))."""
    frames, fs = data.frames(), data.frame_sources()
    idx = []
    for s in data.sources():
        cand = np.flatnonzero(fs == s)
        idx.append(cand if len(cand) <= n_per_source else np.sort(rng.choice(cand, n_per_source, replace=False)))
    sel = np.concatenate(idx)
    return frames[sel], fs[sel]


def collect_files(paths: list[str]) -> list[Path]:
    """The ``.npz`` / ``.bvh`` files named in ``paths`` or found under its folders (``InputError`` if none)."""
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
    """The clips to evaluate and the reference poses (module docstring). ``dataset``: a prepared dataset
    .npz (default: the newest build); ``max_train`` reference poses at most (drawn with ``seed``)."""
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
        for f in collect_files(data):
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


def subset(a: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``a`` itself, or ``n`` of its rows drawn without replacement (in their order)."""
    return a if len(a) <= n else a[np.sort(rng.choice(len(a), n, replace=False))]


def mean(x: np.ndarray) -> float:
    """``np.mean`` as a Python float (for the JSON)."""
    return float(np.mean(x))


