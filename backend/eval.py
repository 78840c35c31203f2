"""``python -m backend.eval``: the four tasks against baselines in one run.

    python -m backend.eval [--data PATH ...] --json OUT.json [--weights W] [--device auto|cpu|cuda]
                           [--seed 0] [--quick] [--tasks completion,denoising,interpolation,generation,convention]

Data: ``--data`` takes AMASS ``.npz`` files, BVH files (retargeted) or folders of them; clips are at
30 fps. Without ``--data`` the prepared dataset (``backend.data.dataset.load_dataset``) is used and
its *held-out* clips (whole styles / subjects, ``backend.data.dataset.HELD_OUT``) are evaluated, per
source and pooled. Training poses (for the nearest-neighbour baselines, the Gaussian baseline, the
memorisation check and the joint limits) come from the prepared dataset's train split when it exists,
else from the ``--data`` clips whose name hashes to 'train' (``backend.data.dataset.split_for_clip``),
the rest being evaluated.

Metrics: errors in mm on FK joints of the built-in neutral skeleton (root at the origin, zero root
orientation); with ``--smpl-model FILE`` also MPVPE (mm, mean shape) for completion and denoising.
APD in cm. Plausibility = ``tasks.score`` (lower = more plausible). Denoising also reports the mean
joint acceleration as a multiple of the clean motion's; generation the share of standing poses (feet
flat under the hips); ``convention`` the retarget convention of the training poses vs AMASS.
The JSON has one object per task, inside one object per method (pooled), with ``by_source`` copies
per source, plus ``settings`` and ``seed``. stdout: the markdown tables.

One module per task in ``backend/evaluation/`` (``completion``, ``denoising``, ``interpolation``,
``generation``, ``convention``); the clips in ``eval_data``, the tables in ``report``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from backend import DEFAULT_WEIGHTS
from backend.cli_io import InputError
from backend.engine.prior import PosePrior
from backend.evaluation import metrics as mt
from backend.evaluation.completion import eval_completion
from backend.evaluation.convention import eval_convention
from backend.evaluation.denoising import eval_denoising
from backend.evaluation.eval_data import load_eval_data
from backend.evaluation.generation import eval_generation
from backend.evaluation.interpolation import eval_interpolation
from backend.evaluation.report import format_table
from dposer_core.constants import DEVICES
from dposer_core.protocol.errors import BadInput


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backend.eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="*", default=None, help="AMASS .npz / .bvh files or folders (default: prepared val split)")
    p.add_argument("--dataset", default=None, help="prepared dataset .npz (default: the newest build in the cache)")
    p.add_argument("--json", required=True, help="output JSON path")
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto = cuda > cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="few poses/windows/clips (smoke test)")
    p.add_argument("--tasks", default="completion,denoising,interpolation,generation,convention")
    p.add_argument("--n-complete", type=int, default=None,
                   help="poses per source per completion mask (default 64; quick 4)")
    p.add_argument("--n-windows", type=int, default=None, help="60-frame denoising windows per source (default 12; quick 2)")
    p.add_argument("--n-clips", type=int, default=None, help="clips per in-between K (default 24; quick 2)")
    p.add_argument("--n-samples", type=int, default=None, help="generated poses (default 1000; quick 32)")
    p.add_argument("--n-em", type=int, default=None, help="EM-1000 samples (default 500; quick 4)")
    p.add_argument("--smpl-model", default=None, help="SMPL model file (.npz/.pkl): adds MPVPE")
    p.add_argument("--debug", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    q = args.quick
    n_complete = args.n_complete or (4 if q else 64)
    n_windows = args.n_windows or (2 if q else 12)
    n_clips = args.n_clips or (2 if q else 24)
    n_samples = args.n_samples or (32 if q else 1000)
    n_em = args.n_em or (4 if q else 500)
    wanted = [t.strip() for t in args.tasks.split(",") if t.strip()]
    try:
        device = "cuda" if args.device == "auto" and torch.cuda.is_available() else (
            "cpu" if args.device == "auto" else args.device)
        prior = PosePrior.load(args.weights, device=device)
        data = load_eval_data(args.data, seed=args.seed, max_train=20_000 if q else 200_000, dataset=args.dataset)
        print(f"[eval] data: {data.source}; {sum(len(p) for _, p in data.clips)} eval frames, "
              f"{len(data.train_poses)} train poses", file=sys.stderr)
        res: dict[str, Any] = {}
        log = lambda s: print(s, file=sys.stderr)  # noqa: E731
        vm = mt.VertexMetric(args.smpl_model) if args.smpl_model else None
        t0 = time.perf_counter()
        if "completion" in wanted:
            res["completion"] = eval_completion(prior, data, n_complete, 3 if q else 10, args.seed, log, vm)
        if "denoising" in wanted:
            res["denoising"] = eval_denoising(prior, data, n_windows, args.seed, log=log, vm=vm)
        if "interpolation" in wanted:
            res["interpolation"] = eval_interpolation(prior, data, 16 if q else 256, n_clips, args.seed,
                                                      adaptive=not q, log=log)
        if "generation" in wanted:
            res["generation"] = eval_generation(prior, data, n_samples, n_em, args.seed, log)
        if "convention" in wanted:
            res["convention"] = eval_convention(data)
    except (InputError, BadInput, FileNotFoundError, ValueError) as e:
        if args.debug:
            raise
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001
        if args.debug:
            raise
        print(f"error: {type(e).__name__}: {' '.join(str(e).split())} (run with --debug)", file=sys.stderr)
        return 1
    prov = prior.checkpoint.provenance if prior.checkpoint else {}
    res["settings"] = {"weights": str(args.weights), "checkpoint_provenance": prov, "device": device,
                       "data": data.source, "quick": q, "n_complete": n_complete, "n_windows": n_windows,
                       "n_clips": n_clips, "n_samples": n_samples, "n_em": n_em,
                       "machine": f"{platform.machine()} {platform.processor() or ''} torch {torch.__version__} "
                                  f"threads {torch.get_num_threads()}".strip(),
                       "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "seconds": time.perf_counter() - t0}
    res["seed"] = args.seed
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2, default=float))
    print(format_table(res))
    print(f"[eval] wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
