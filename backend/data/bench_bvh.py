"""BVH reader benchmark: ``python -m backend.data.bench_bvh [--frames 5000] [--repeat 3]``.

Writes synthetic BVH files with the 43-joint CMU DAZ-friendly skeleton (header of the shipped test
clip, its motion tiled to the requested length) to a temp dir and prints a table of the best-of-N
wall time for: reading (parse + Euler -> matrices), source FK, and the full retarget to SMPL at
30 fps. Requirement: a 5,000-frame, 43-joint file parses in < 1 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from backend import ROOT

from .bvh import read_bvh
from .retarget import retarget_bvh

CLIP = ROOT / "tests" / "data" / "cmu_daz_07_01_walk.bvh"


def make_file(n_frames: int, out: Path, template: Path = CLIP) -> Path:
    """Write ``out``: the template's hierarchy with its motion rows tiled to ``n_frames``."""
    text = template.read_text()
    head, motion = text.split("MOTION", 1)
    rows = [r for r in motion.strip().splitlines()[2:] if r.strip()]
    tiled = (rows * (n_frames // len(rows) + 1))[:n_frames]
    out.write_text(head + f"MOTION\nFrames: {n_frames}\nFrame Time: 0.00833333\n" + "\n".join(tiled) + "\n")
    return out


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="*", default=[500, 5000, 20000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"{'frames':>8}{'joints':>8}{'MB':>7}{'read_bvh s':>12}{'frames/s':>12}{'FK s':>8}{'retarget s':>12}")
    ok = True
    with tempfile.TemporaryDirectory() as d:
        for n in args.frames:
            p = make_file(n, Path(d) / f"bench_{n}.bvh")
            m = read_bvh(p)
            t_read = _best(lambda: read_bvh(p), args.repeat)
            t_fk = _best(lambda: m.forward_kinematics(), args.repeat)
            t_rt = _best(lambda: retarget_bvh(m, fps=30.0), args.repeat)
            print(f"{n:>8}{m.num_joints:>8}{p.stat().st_size / 1e6:>7.1f}{t_read:>12.3f}{n / t_read:>12.0f}"
                  f"{t_fk:>8.3f}{t_rt:>12.3f}")
            if n == 5000 and m.num_joints == 43:
                ok = t_read < 1.0
    print("requirement (5,000 frames x 43 joints < 1 s):", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
