"""Build the prepared pose dataset: ``python -m backend.data.build [--mocap DIR] [--cache DIR] [--quick]``.

Unpacks the mocap archives (``tar xJf``) into the cache (never into the repo), retargets every
clip onto SMPL at 30 fps, drops near-duplicate frames (mask), splits train/val by clip, writes
``<cache>/dataset/<hash>.npz`` and prints frames per source, total frames, hours and the retarget
quality table.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from backend import ROOT

from .bvh import read_bvh
from .dataset import (DEDUP_THRESHOLD_M, VAL_FRACTION, PoseDataset, build_dataset_from_clips, default_cache_dir,
                      load_dataset, mark_latest, save_dataset)
from .families import FAMILIES_DIR, detect_family
from .retarget import retarget_bvh

DEFAULT_MOCAP = ROOT.parent / "shared" / "data" / "mocap"
BUILD_VERSION = 2  # 2: held-out styles/subjects split (dataset.HELD_OUT)

# Per-archive quirks (data, not code paths): clips whose header frame time is wrong.
ARCHIVES: dict[str, dict[str, Any]] = {
    "cmu-daz": {"fps_override": {"acrnn/salsa/": 60.0}, "skip": ["acrnn/standard.bvh"]},
    "cmu-cgspeed": {},
    "bandai1": {},
    "bandai2": {},
}
MIN_FRAMES = 10


def unpack(archive: Path, dest_root: Path) -> Path:
    """``tar xJf archive -C dest_root/<stem>`` once (marker file); returns that directory."""
    stem = archive.name.split(".tar")[0]
    dest = dest_root / stem
    marker = dest / ".unpacked"
    sig = f"{archive.stat().st_size}:{int(archive.stat().st_mtime)}"
    if marker.exists() and marker.read_text() == sig:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "xJf", str(archive), "-C", str(dest)], check=True)
    marker.write_text(sig)
    return dest


def _build_hash(archives: list[Path], quick: bool, dedup: float, val: float) -> str:
    h = hashlib.sha1()
    h.update(f"v{BUILD_VERSION}:{quick}:{dedup}:{val}".encode())
    for a in archives:
        h.update(f"{a.name}:{a.stat().st_size}".encode())
    for f in sorted(FAMILIES_DIR.glob("*.json")):
        h.update(f.read_bytes())
    # the retarget code's own text (bump BUILD_VERSION when dataset.py changes what it builds)
    for f in ("bvh.py", "families.py", "resample.py", "retarget_plan.py", "retarget.py"):
        h.update((Path(__file__).parent / f).read_bytes())
    return h.hexdigest()[:16]


def collect_clips(mocap: Path, unpack_root: Path, quick: bool = False, log=print) -> tuple[list, dict]:
    """Retarget every BVH of every known archive. Returns (clips [(name, source, SMPLMotion)], stats)."""
    clips = []
    stats: dict[str, Any] = {"failed": []}
    for stem, cfg in ARCHIVES.items():
        arch = mocap / f"{stem}.tar.xz"
        if not arch.exists():
            log(f"  (no {arch.name}; skipped)")
            continue
        t0 = time.time()
        root = unpack(arch, unpack_root)
        files = sorted(root.rglob("*.bvh"))
        if quick:
            files = files[:: max(1, len(files) // 12)][:12]
        n_before = len(clips)
        for f in files:
            rel = f.relative_to(root).as_posix()
            # archives hold a top-level folder named like the archive
            rel_in = rel.split("/", 1)[1] if rel.startswith(stem + "/") else rel
            if rel_in in cfg.get("skip", []):
                continue
            try:
                m = read_bvh(f)
                for prefix, fps in cfg.get("fps_override", {}).items():
                    if rel_in.startswith(prefix):
                        m.frame_time = 1.0 / fps
                fam = detect_family(m.names)
                if m.num_frames - int(fam.drop_first_frame) < MIN_FRAMES:
                    continue
                name = f"{stem}/{rel_in[:-4]}"
                sm = retarget_bvh(m, fam, fps=30.0, name=name)
                clips.append((name, stem, sm))
            except Exception as e:  # keep going; report
                stats["failed"].append(f"{rel}: {e}")
        log(f"  {stem}: {len(clips) - n_before} clips from {len(files)} files in {time.time() - t0:.1f}s")
    return clips, stats


def print_summary(ds: PoseDataset, log=print) -> None:
    s = ds.summary()
    log(f"{'source':<14}{'clips':>7}{'frames':>10}{'hours':>8}{'kept':>10}{'kept h':>8}{'train/val clips':>17}")
    for src, r in s.items():
        log(f"{src:<14}{r['clips']:>7}{r['frames']:>10}{r['hours']:>8.2f}{r['kept_frames']:>10}{r['kept_hours']:>8.2f}"
            f"{r['train_clips']:>10}/{r['val_clips']:<6}")
    t = s["total"]
    log(f"train poses (deduped): {t['train_kept_frames']}, val poses (deduped): {t['val_kept_frames']}")


def build(mocap: str | Path | None = None, cache: str | Path | None = None, quick: bool = False,
          dedup_threshold_m: float = DEDUP_THRESHOLD_M, val_fraction: float = VAL_FRACTION,
          force: bool = False, log=print) -> tuple[PoseDataset, Path]:
    """Build (or load the cached) dataset. Returns (dataset, path of its .npz).

    Args:
        mocap: folder with the ``*.tar.xz`` archives (default ``../shared/data/mocap``).
        cache: cache root (default ``~/.cache/dposer``); unpacked clips go to ``<cache>/mocap``,
            the dataset to ``<cache>/dataset/<hash>.npz``. Must be outside the repo.
        quick: a dozen clips per archive.
    """
    cache_root = Path(cache).expanduser() if cache else default_cache_dir().parent
    if ROOT in cache_root.resolve().parents or cache_root.resolve() == ROOT:
        raise ValueError(f"refusing to cache inside the repo ({cache_root})")
    mocap = Path(mocap) if mocap else DEFAULT_MOCAP
    archives = [mocap / f"{s}.tar.xz" for s in ARCHIVES if (mocap / f"{s}.tar.xz").exists()]
    if not archives:
        raise FileNotFoundError(f"no mocap archives ({', '.join(ARCHIVES)}.tar.xz) in {mocap}")
    key = _build_hash(archives, quick, dedup_threshold_m, val_fraction)
    out = cache_root / "dataset" / f"{key}{'-quick' if quick else ''}.npz"
    t0 = time.time()
    if out.exists() and not force:
        log(f"cached build {out}")
        ds = load_dataset(path=out)
    else:
        log(f"unpacking to {cache_root / 'mocap'} and retargeting ...")
        clips, stats = collect_clips(mocap, cache_root / "mocap", quick=quick, log=log)
        for f in stats["failed"]:
            log(f"  FAILED {f}")
        meta = {"build_version": BUILD_VERSION, "hash": key, "quick": quick,
                "archives": [a.name for a in archives], "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "failed": stats["failed"]}
        ds = build_dataset_from_clips(clips, dedup_threshold_m=dedup_threshold_m, val_fraction=val_fraction, meta=meta)
        save_dataset(ds, out)
        log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.time() - t0:.0f}s")
    mark_latest(out)
    return ds, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mocap", default=str(DEFAULT_MOCAP), help="folder with the *.tar.xz archives")
    ap.add_argument("--cache", default=None, help="cache root (default ~/.cache/dposer); dataset goes to <cache>/dataset")
    ap.add_argument("--quick", action="store_true", help="a few clips per archive (smoke test)")
    ap.add_argument("--dedup-cm", type=float, default=DEDUP_THRESHOLD_M * 100)
    ap.add_argument("--val-fraction", type=float, default=VAL_FRACTION)
    ap.add_argument("--force", action="store_true", help="rebuild even if the cached build exists")
    ap.add_argument("--no-report", action="store_true", help="skip the retarget-quality table")
    args = ap.parse_args(argv)

    try:
        ds, out = build(args.mocap, args.cache, args.quick, args.dedup_cm / 100.0, args.val_fraction, args.force)
    except (ValueError, FileNotFoundError) as e:
        print(str(e), file=sys.stderr)
        return 2
    cache_root = out.parent.parent
    archives = [Path(args.mocap) / f"{s}.tar.xz" for s in ARCHIVES if (Path(args.mocap) / f"{s}.tar.xz").exists()]
    print_summary(ds)
    if not args.no_report:
        from .retarget_report import format_table, report
        files = []
        for a in archives:
            root = cache_root / "mocap" / a.name.split(".tar")[0]
            fs = sorted(root.rglob("*.bvh"))
            files += [f for f in fs[:: max(1, len(fs) // 5)][:5] if f.name != "standard.bvh"]
        print(format_table(report(files)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
