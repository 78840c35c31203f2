"""Export a training checkpoint as shippable weights: ``python -m backend.export_weights SRC DST``.

Stores the EMA weights in fp16 (about half the size) after checking that the fp16 network agrees
with the fp32 one: the relative error of ε̂ on random z-space inputs at several t, and the DPoser
regulariser's one-step x̂0 (paper Eq. 9) on the same inputs. Prints the sha256 of the written file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

from .engine.checkpoint import load_checkpoint, save_checkpoint
from .engine.prior import PosePrior


@torch.no_grad()
def fp16_agreement(src: Path, dst: Path, n: int = 512, seed: int = 0) -> dict[str, float]:
    """Max relative L2 error of ε̂ and of x̂0 between two checkpoints, over t in {0.05, 0.2, 0.5, 0.9}.

    Returns {"eps_rel_err": ..., "x0_rel_err": ...}; both compared per sample, worst t reported.
    """
    a, b = PosePrior.load(src), PosePrior.load(dst)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, a.dim, generator=g)
    worst_eps, worst_x0 = 0.0, 0.0
    for t in (0.05, 0.2, 0.5, 0.9):
        ea, eb = a.eps_model(z, t), b.eps_model(z, t)
        worst_eps = max(worst_eps, ((ea - eb).norm(dim=-1) / ea.norm(dim=-1)).max().item())
        xa, xb = a.sde.x0_from_eps(z, t, ea), b.sde.x0_from_eps(z, t, eb)
        worst_x0 = max(worst_x0, ((xa - xb).norm(dim=-1) / xa.norm(dim=-1)).max().item())
    return {"eps_rel_err": worst_eps, "x0_rel_err": worst_x0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m backend.export_weights", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="checkpoint written by backend.train (best.pt or last.pt)")
    p.add_argument("dst", help="output path, e.g. weights/dposer_cmu_bandai.pt")
    p.add_argument("--fp32", action="store_true", help="keep fp32 storage")
    p.add_argument("--max-rel-err", type=float, default=1e-2,
                   help="refuse the fp16 export if ε̂ differs more than this (relative)")
    p.add_argument("--constant-dim-std", type=float, default=0.05,
                   help="z-score std (radians) for dims that were constant in training (std at the 1e-3 floor, "
                        "e.g. toes that are not retargeted); 0 keeps 1e-3")
    args = p.parse_args(argv)
    ckpt = load_checkpoint(args.src)
    ckpt.provenance = dict(ckpt.provenance, exported_from=Path(args.src).name, storage="fp32" if args.fp32 else "fp16")
    const = ckpt.std <= 1.01e-3
    if args.constant_dim_std > 0 and bool(const.any()):
        # The network saw these dims at z = 0 only; widening their std keeps that (the clean value is the
        # mean) but makes a user's non-zero value (e.g. a 5 deg toe on a hand-made pose) a moderate z
        # instead of ~90, which would dominate every score and optimisation.
        ckpt.std = torch.where(const, torch.full_like(ckpt.std, args.constant_dim_std), ckpt.std)
        ckpt.provenance["constant_dims_std"] = {"dims": torch.nonzero(const).flatten().tolist(),
                                                "std": args.constant_dim_std}
    dst = save_checkpoint(args.dst, ckpt, half=not args.fp32)
    report = {"path": str(dst), "bytes": dst.stat().st_size}
    if not args.fp32:
        report.update(fp16_agreement(Path(args.src), dst))
        if report["eps_rel_err"] > args.max_rel_err:
            dst.unlink()
            print(json.dumps(report), file=sys.stderr)
            print(f"fp16 export changes the network output by {report['eps_rel_err']:.2e} (> {args.max_rel_err}); "
                  "re-run with --fp32", file=sys.stderr)
            return 1
    with open(dst, "rb") as f:
        report["sha256"] = hashlib.file_digest(f, "sha256").hexdigest()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
