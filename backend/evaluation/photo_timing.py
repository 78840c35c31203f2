"""Wall and CPU time of pose-from-a-photo on one image (detection + fit with H hypotheses).

    python -m backend.evaluation.photo_timing [--image tests/data/photos/mannequin_front.png] [--hypotheses 4]
        [--repeats 5]

Prints the median over ``--repeats`` runs (after one warm-up) of wall seconds and process CPU seconds,
for mediapipe detection and for the fit, plus the machine's 1-minute load average (a busy shared
machine inflates wall time; CPU time is the fairer number there).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from backend import DEFAULT_WEIGHTS, ROOT


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--image", default=str(ROOT / "tests" / "data" / "photos" / "mannequin_front.png"))
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--hypotheses", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    from backend.engine.prior import PosePrior
    from backend.photo.fit import fit_keypoints
    from backend.photo.image_io import read_image_rgb
    from backend.photo.keypoints import detect_keypoints

    prior = PosePrior.load(args.weights, device=args.device)
    img = read_image_rgb(args.image)
    rows = []
    for i in range(args.repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        kp = detect_keypoints(img)
        t1, c1 = time.perf_counter(), time.process_time()
        fit_keypoints(prior, kp, args.hypotheses, seed=i)
        t2, c2 = time.perf_counter(), time.process_time()
        if i:
            rows.append((t1 - t0, c1 - c0, t2 - t1, c2 - c1))
    r = np.median(np.array(rows), axis=0)
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, device {args.device}, "
          f"load average {os.getloadavg()[0]:.1f}, image {Path(args.image).name}, H={args.hypotheses}")
    print(f"detect: {r[0]:.2f} s wall, {r[1]:.2f} s CPU | fit: {r[2]:.2f} s wall, {r[3]:.2f} s CPU | "
          f"total: {r[0] + r[2]:.2f} s wall, {r[1] + r[3]:.2f} s CPU (median of {args.repeats})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
