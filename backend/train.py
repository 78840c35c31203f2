"""Train the DPoser score network: ``python -m backend.train``.

Denoising score matching on z-scored 63-D axis-angle body poses with the sub-VP SDE:
t ~ U(1e-5, 1), x_t = α_t x0 + σ_t z, loss = ‖ε̂(x_t, t) − z‖² (plain MSE on ε, as in the paper).
Adam with a linear warm-up then cosine decay, gradient clipping, and an EMA of the weights with the
(1+n)/(10+n) warm-up. Validation is left-leg completion MPJPE (mm) on held-out clips, computed with
the EMA weights. Saves ``last.pt`` and ``best.pt`` (shippable checkpoints, EMA weights) and
``train_state.pt`` (everything needed to resume the run exactly).

Several GPUs: ``torchrun --nproc_per_node=N -m backend.train ...`` (DDP; NCCL on CUDA, gloo on CPU).

The pieces are in ``backend/training/``: ``schedule`` (settings, LR, EMA), ``data``, ``validation``, ``loop``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from backend.training.loop import train
from backend.training.schedule import TrainConfig
from dposer_core.constants import DEVICES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backend.train", description=__doc__.split("\n\n")[0])
    d = TrainConfig()
    p.add_argument("--bvh", action="append", default=[], metavar="DIR[:FAMILY]",
                   help="BVH folder (or archive); family auto-detected unless given (cmu_daz, cmu_cgspeed, bandai)")
    p.add_argument("--amass", action="append", default=[], metavar="DIR", help="AMASS .npz folder")
    p.add_argument("--dataset", help="a prepared dataset .npz (default: the latest `python -m backend.data.build`)")
    p.add_argument("--cache", default=None, help="dataset cache directory (default ~/.cache/dposer/dataset)")
    p.add_argument("--out", required=True, help="output directory for checkpoints")
    p.add_argument("--iters", type=int, default=d.iters)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--ema", type=float, default=d.ema_decay, help="EMA decay cap (warm-up (1+n)/(10+n))")
    p.add_argument("--hidden", type=int, default=d.hidden)
    p.add_argument("--n-blocks", type=int, default=d.n_blocks)
    p.add_argument("--val-every", type=int, default=d.val_every)
    p.add_argument("--val-frames", type=int, default=d.val_frames)
    p.add_argument("--val-hypotheses", type=int, default=d.val_hypotheses)
    p.add_argument("--ckpt-every", type=int, default=d.ckpt_every)
    p.add_argument("--no-mirror", action="store_true", help="no left/right mirror augmentation")
    p.add_argument("--source-power", type=float, default=d.source_power,
                   help="per-source sampling share ∝ frames**POWER (1 = by frames, 0.5 = damped, 0 = equal)")
    p.add_argument("--time-budget-min", type=float, default=0.0,
                   help="wall-time budget (minutes, across resumes): the cosine follows it; stop when spent")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from OUT/train_state.pt (or the given state file)")
    p.add_argument("--device", default="auto", choices=DEVICES, help="auto = cuda > cpu")
    p.add_argument("--no-amp", action="store_true", help="disable bf16 mixed precision on GPU")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop (with a resumable state) after this many steps of this invocation")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    summary = train(args)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "history"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
