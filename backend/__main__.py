"""``python -m backend <task>``: the animator tasks on .npz / AMASS .npz / BVH files.

    python -m backend sample    --n N [--sampler em|ddim|ode] [--steps S]           -> poses (N,63)
    python -m backend complete  --input F (--keep J1,J2,..|--mask NAME) [--hypotheses H] [--steps S]
                                                                  -> poses (N,H,63) best first, scores (N,H)
    python -m backend denoise   --input F [--noise-mm X] [--no-prior]      -> poses (T,63), joints (T,22,3)
    python -m backend inbetween --input F --frames K [--ease linear|ease_in_out|ease_in|ease_out]
                                                                  -> poses ((M-1)(K+1)+1,63) [+ root_orient]
    python -m backend variations --input F --strength S --n N              -> poses (N,63)
    python -m backend encode    --input F                                  -> latents (N,63)
    python -m backend decode    --input F (holding latents)                -> poses (N,63)
    python -m backend score     --input F                                  -> pose (N,), joints (N,21)
    python -m backend fit-image --input photo.jpg [--hypotheses H]   -> poses (H,63), root_orient (H,3), scores (H,),
                                        keypoints (K,3) ... (pose from a photo; needs requirements/photo.txt)

Common options: --weights (default: weights/dposer_cmu_bandai.pt in this repository), --seed,
--device auto|cpu|cuda, --output (default: dposer_<task>.npz), --progress, --debug.
Masks: left_leg, right_leg, legs, left_arm, right_arm, arms, trunk (the hidden joints).
Bad input exits with status 2 and a one-line message (a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS = REPO_ROOT / "weights" / "dposer_cmu_bandai.pt"
EXIT_BAD_INPUT = 2
EXIT_ERROR = 1


MAX_N = 100_000          # sample --n / variations --n (as the server's protocol)
MAX_HYPOTHESES = 1000
MAX_STEPS = 5000
MAX_FRAMES = 100_000     # inbetween --frames (per pair of keys; the total is bounded too)
MAX_MESSAGE_CHARS = 1000


RANGES = {"n": (1, MAX_N), "hypotheses": (1, MAX_HYPOTHESES), "steps": (1, MAX_STEPS), "frames": (0, MAX_FRAMES)}
"""Bounds of the integer options (what one call can hold in memory on a laptop-class machine)."""


def _clip_message(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 3] + "..."


def _is_oom(e: BaseException) -> bool:
    text = str(e).lower()
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and any(
        t in text for t in ("out of memory", "can't allocate memory", "cannot allocate memory",
                            "not enough memory", "defaultcpuallocator")))


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (status 2), like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the tests)."""
    common = _Parser(add_help=False)
    common.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="checkpoint (.pt); default: %(default)s")
    common.add_argument("--seed", type=int, default=None, help="random seed (same seed, same result)")
    common.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    common.add_argument("--output", "-o", default=None, help="output .npz (default: dposer_<task>.npz)")
    common.add_argument("--progress", action="store_true", help="print progress to stderr")
    common.add_argument("--debug", action="store_true", help="show tracebacks")

    p = _Parser(prog="python -m backend", description="DPoser pose-prior tasks on .npz/.bvh files.")
    sub = p.add_subparsers(dest="task", required=True, metavar="TASK")

    s = sub.add_parser("sample", parents=[common], help="draw poses from the prior")
    s.add_argument("--n", type=int, default=1, help=f"number of poses (1..{MAX_N:,})")
    s.add_argument("--sampler", choices=("em", "ddim", "ode"), default="ddim")
    s.add_argument("--steps", type=int, default=None)

    c = sub.add_parser("complete", parents=[common], help="complete hidden joints")
    c.add_argument("--input", required=True)
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--keep", help="comma-separated joint names to keep (e.g. left_hip,spine1)")
    g.add_argument("--mask", help="hidden part: left_leg|right_leg|legs|left_arm|right_arm|arms|trunk")
    c.add_argument("--hypotheses", type=int, default=10)
    c.add_argument("--steps", type=int, default=200)

    d = sub.add_parser("denoise", parents=[common], help="denoise a motion")
    d.add_argument("--input", required=True)
    d.add_argument("--noise-mm", type=float, default=None, help="noise std in mm (default: estimated)")
    d.add_argument("--no-prior", action="store_true", help="data + temporal terms only")

    i = sub.add_parser("inbetween", parents=[common], help="in-between frames from keys")
    i.add_argument("--input", required=True)
    i.add_argument("--frames", type=int, required=True, help="in-between frames per pair of keys")
    i.add_argument("--ease", choices=("linear", "ease_in_out", "ease_in", "ease_out"), default="linear")

    v = sub.add_parser("variations", parents=[common], help="SDEdit variations of one pose")
    v.add_argument("--input", required=True)
    v.add_argument("--strength", type=float, default=0.3)
    v.add_argument("--n", type=int, default=8)
    v.add_argument("--frame", type=int, default=0, help="which pose of the input file")

    for name, helptext in (("encode", "poses -> ODE latents"), ("decode", "ODE latents -> poses"),
                           ("score", "plausibility per pose and joint (lower = more plausible)")):
        e = sub.add_parser(name, parents=[common], help=helptext)
        e.add_argument("--input", required=True)
    f = sub.add_parser("fit-image", parents=[common], help="SMPL pose hypotheses from a photo (PNG/JPEG/WebP/BMP)")
    f.add_argument("--input", required=True, help="image file")
    f.add_argument("--hypotheses", type=int, default=4, help="ranked hypotheses to keep (4 starts at least)")
    f.add_argument("--smpl-model", default=None, help="SMPL model file (.npz/.pkl): fit its skeleton")
    f.add_argument("--focal-px", type=float, default=None, help="focal length in pixels (default: 50 mm equivalent)")
    return p


def _device(name: str) -> str:
    import torch

    from backend.tasks import BadInput
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda requested but CUDA is not available")
    return name


def _progress_printer(enabled: bool):  # noqa: ANN202
    if not enabled:
        return None

    def report(frac: float, msg: str) -> None:
        print(f"\r{msg}: {100 * frac:5.1f}%", end="\n" if frac >= 1.0 else "", file=sys.stderr, flush=True)
    return report


def run(args: argparse.Namespace) -> Path:
    """Executes one parsed command; returns the output path. Raises BadInput/InputError/CheckpointError."""
    import numpy as np

    from backend import tasks
    from backend.cli_io import InputError, load_input, save_npz
    from backend.engine.prior import PosePrior

    out_path = Path(args.output or f"dposer_{args.task}.npz")
    if out_path.suffix.lower() != ".npz":
        raise InputError(f"{out_path}: --output must be a .npz file")
    inp = load_input(args.input) if getattr(args, "input", None) and args.task != "fit-image" else None
    device = _device(args.device)
    weights = Path(args.weights)
    if not weights.is_file():
        raise InputError(f"{weights}: weights file not found (pass --weights PATH)")
    prior = PosePrior.load(weights, device=device)
    kw = {"seed": args.seed, "progress": _progress_printer(args.progress)}

    def need(arr, what: str):  # noqa: ANN001, ANN202
        if arr is None:
            raise InputError(f"{args.input}: needs {what}")
        return arr

    t = args.task
    _check_sizes(args, inp)
    if t == "sample":
        res = {"poses": tasks.sample(prior, args.n, sampler=args.sampler, steps=args.steps, **kw)}
    elif t == "complete":
        keep = tasks.keep_from_mask(args.mask) if args.mask else tasks.parse_keep(args.keep)
        r = tasks.complete(prior, need(inp.poses, "'poses' (N,63)"), keep, n_hypotheses=args.hypotheses,
                           steps=args.steps, root_orient=inp.root_orient, **kw)
        res = {"poses": r["poses"], "scores": r["scores"], "keep": keep}
        if inp.root_orient is not None:
            res["root_orient"] = inp.root_orient
    elif t == "denoise":
        if inp.joints is not None:
            r = tasks.denoise(prior, inp.joints, noise_mm=args.noise_mm, use_prior=not args.no_prior,
                              **{**kw, "seed": 0 if args.seed is None else args.seed})
        else:
            r = tasks.denoise(prior, need(inp.poses, "'joints' (T,22,3) or 'poses' (T,63)"),
                              root_orient=inp.root_orient, noise_mm=args.noise_mm, use_prior=not args.no_prior,
                              **{**kw, "seed": 0 if args.seed is None else args.seed})
        res = {k: r[k] for k in ("poses", "joints", "root_orient", "trans")}
        res["noise_mm"] = np.float32(r["noise_mm"])
    elif t == "inbetween":
        r = tasks.inbetween(prior, need(inp.poses, "'poses' (M,63), M >= 2"), args.frames, ease=args.ease,
                            root_orient=inp.root_orient, **kw)
        res = {"poses": r["poses"]}
        if r["root_orient"] is not None:
            res["root_orient"] = r["root_orient"]
    elif t == "variations":
        poses = need(inp.poses, "'poses'")
        if not 0 <= args.frame < len(poses):
            raise tasks.BadInput(f"--frame {args.frame} out of range (file has {len(poses)} poses)")
        res = {"poses": tasks.variations(prior, poses[args.frame], args.strength, args.n, **kw)}
    elif t == "encode":
        res = {"latents": tasks.encode(prior, need(inp.poses, "'poses' (N,63)"), **kw)}
    elif t == "decode":
        res = {"poses": tasks.decode(prior, need(inp.latents, "'latents' (N,63)"), **kw)}
    elif t == "score":
        r = tasks.score(prior, need(inp.poses, "'poses' (N,63)"))
        res = {"pose": r["pose"], "joints": r["joints"]}
    elif t == "fit-image":
        from backend.photo.api import cli_fit_image
        res = cli_fit_image(prior, args)
    else:  # pragma: no cover - argparse restricts the choices
        raise tasks.BadInput(f"unknown task {t!r}")
    bad = [k for k, v in res.items() if v is not None and np.asarray(v).dtype.kind == "f"
           and not np.isfinite(np.asarray(v)).all()]
    if bad:
        raise tasks.BadInput(f"{t} produced NaN or infinite values ({', '.join(bad)}) for this input; check that "
                             "the input is in range (axis-angle in radians, positions in metres)")
    return save_npz(out_path, **res)


def _check_sizes(args: argparse.Namespace, inp) -> None:  # noqa: ANN001
    """Bounds of what one call may hold in memory (the server's limits, dposer_core.protocol.schema)."""
    from dposer_core.protocol.schema import MAX_COMPLETE_ROWS, MAX_DENOISE_FRAMES, MAX_INBETWEEN_FRAMES
    from backend.tasks import BadInput

    for opt, (lo, hi) in RANGES.items():
        v = getattr(args, opt, None)
        if v is not None and not lo <= v <= hi:
            raise BadInput(f"--{opt} must be between {lo:,} and {hi:,}, got {v:,}")
    if inp is None:
        return
    n = inp.num_frames
    if args.task == "complete" and n * args.hypotheses > MAX_COMPLETE_ROWS:
        raise BadInput(f"complete of {n:,} poses x {args.hypotheses} hypotheses is more than {MAX_COMPLETE_ROWS:,} "
                       "at once; use fewer poses per file or fewer --hypotheses")
    if args.task == "denoise" and n > MAX_DENOISE_FRAMES:
        raise BadInput(f"denoise of {n:,} frames is more than {MAX_DENOISE_FRAMES:,} at once; split the motion")
    if args.task == "inbetween" and inp.poses is not None:
        total = (len(inp.poses) - 1) * (args.frames + 1) + 1
        if total > MAX_INBETWEEN_FRAMES:
            raise BadInput(f"inbetween would produce {total:,} frames, more than {MAX_INBETWEEN_FRAMES:,}; "
                           "use fewer keys or --frames")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input, 1 other error)."""
    args = build_parser().parse_args(argv)
    try:
        from backend.cli_io import InputError
        from backend.engine.checkpoint import CheckpointError
        from backend.tasks import BadInput, TaskCancelled
    except Exception as e:  # noqa: BLE001
        if args.debug:
            raise
        print(f"error: cannot import the backend ({e})", file=sys.stderr)
        return EXIT_ERROR
    try:
        path = run(args)
    except (BadInput, InputError, CheckpointError) as e:
        if args.debug:
            raise
        print(f"error: {_clip_message(str(e))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (TaskCancelled, KeyboardInterrupt):
        print("error: cancelled", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001
        if args.debug:
            raise
        if _is_oom(e):
            e = None  # noqa: F841  drop the frames holding tensors
            print(f"error: {args.task} ran out of memory; use fewer poses, frames or hypotheses per call, or a GPU "
                  "(--device cuda)", file=sys.stderr)
            return EXIT_ERROR
        msg = _clip_message(str(e)) or type(e).__name__
        print(f"error: {type(e).__name__}: {msg} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
