"""``python -m backend <task>``: the animator tasks on .npz / AMASS .npz / BVH files.

    python -m backend sample    --n N [--sampler ddim|em|ode] [--steps S]           -> poses (N,63)
    python -m backend complete  --input F (--keep J1,J2,..|--mask NAME) [--hypotheses H] [--steps S]
                                                                  -> poses (N,H,63) best first, scores (N,H)
    python -m backend denoise   --input F [--noise-mm X] [--no-prior]      -> poses (T,63), joints (T,22,3)
    python -m backend inbetween --input F --frames K [--ease linear|ease_in_out|ease_in|ease_out]
                                                   -> poses ((M-1)(K+1)+1,63) [+ root_orient, trans]
    python -m backend variations --input F --strength S --n N              -> poses (N,63)
    python -m backend encode    --input F                                  -> latents (N,63)
    python -m backend decode    --input F (holding latents)                -> poses (N,63)
    python -m backend score     --input F                                  -> pose (N,), joints (N,21)
    python -m backend fit-image --input photo.jpg [--hypotheses H]   -> poses (H,63), root_orient (H,3), scores (H,),
                                        keypoints (K,3) ... (pose from a photo; needs requirements/photo.txt)

Common options: --weights (default: weights/dposer_cmu_bandai.pt in this repository), --seed (none:
random), --device auto|cpu|cuda|mps, --output (default: dposer_<task>.npz), --progress, --debug.
Masks: left_leg, right_leg, legs, left_arm, right_arm, arms, trunk (the hidden joints).
The parameters are checked by building the server's request (:mod:`dposer_core.protocol`), so the bounds
are the server's. Bad input exits with status 2 and a one-line message (a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from backend import DEFAULT_WEIGHTS
from dposer_core import protocol as S
from dposer_core.constants import DEVICES, EASES, MASK_NAMES, SAMPLERS

EXIT_BAD_INPUT = 2
EXIT_ERROR = 1

FLAGS = {"n": "--n", "steps": "--steps", "sampler": "--sampler", "n_hypotheses": "--hypotheses",
         "n_frames": "--frames", "ease": "--ease", "strength": "--strength", "noise_mm": "--noise-mm",
         "seed": "--seed", "focal_px": "--focal-px", "smpl_model": "--smpl-model", "path": "--input"}
"""Request field -> the option that sets it (to name the option in a bound's message)."""


def _clip_message(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= S.MAX_MESSAGE_CHARS else text[:S.MAX_MESSAGE_CHARS - 3] + "..."


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (status 2), like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see --help)\n")


def _range(request_type: str, field: str) -> str:
    """``lo..hi`` of a request field, from the protocol registry (for the help text)."""
    lo, hi = S.bounds(request_type, field)
    return f"{lo:,}..{hi:,}" if isinstance(lo, int) else f"{lo:g}..{hi:g}"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the tests)."""
    common = _Parser(add_help=False)
    common.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="checkpoint (.pt); default: %(default)s")
    common.add_argument("--seed", type=int, default=None, help="random seed (same seed, same result; none: random)")
    common.add_argument("--device", choices=DEVICES, default="auto", help="auto = cuda > mps > cpu")
    common.add_argument("--output", "-o", default=None, help="output .npz (default: dposer_<task>.npz)")
    common.add_argument("--progress", action="store_true", help="print progress to stderr")
    common.add_argument("--debug", action="store_true", help="show tracebacks")

    p = _Parser(prog="python -m backend", description="DPoser pose-prior tasks on .npz/.bvh files.")
    sub = p.add_subparsers(dest="task", required=True, metavar="TASK")

    s = sub.add_parser("sample", parents=[common], help="draw poses from the prior")
    s.add_argument("--n", type=int, default=1, help=f"number of poses ({_range('sample', 'n')})")
    s.add_argument("--sampler", choices=SAMPLERS, default="ddim")
    s.add_argument("--steps", type=int, default=None, help=f"sampler steps ({_range('sample', 'steps')}; "
                                                         "default: the sampler's)")

    c = sub.add_parser("complete", parents=[common], help="complete hidden joints")
    c.add_argument("--input", required=True)
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--keep", help="comma-separated joint names to keep (e.g. left_hip,spine1)")
    g.add_argument("--mask", help=f"hidden part: {'|'.join(MASK_NAMES)}")
    c.add_argument("--hypotheses", type=int, default=10,
                   help=f"hypotheses per pose ({_range('complete', 'n_hypotheses')})")
    c.add_argument("--steps", type=int, default=200, help=f"optimisation steps ({_range('complete', 'steps')})")

    d = sub.add_parser("denoise", parents=[common], help="denoise a motion")
    d.add_argument("--input", required=True)
    d.add_argument("--noise-mm", type=float, default=None,
                   help=f"noise std in mm ({_range('denoise', 'noise_mm')}; default: estimated)")
    d.add_argument("--no-prior", action="store_true", help="data + temporal terms only")

    i = sub.add_parser("inbetween", parents=[common], help="in-between frames from keys")
    i.add_argument("--input", required=True)
    i.add_argument("--frames", type=int, required=True,
                   help=f"in-between frames per pair of keys ({_range('inbetween', 'n_frames')})")
    i.add_argument("--ease", choices=EASES, default="linear")

    v = sub.add_parser("variations", parents=[common], help="SDEdit variations of one pose")
    v.add_argument("--input", required=True)
    v.add_argument("--strength", type=float, default=0.3, help=f"noise level ({_range('variations', 'strength')})")
    v.add_argument("--n", type=int, default=8, help=f"number of variations ({_range('variations', 'n')})")
    v.add_argument("--frame", type=int, default=0, help="which pose of the input file")

    for name, helptext in (("encode", "poses -> ODE latents"), ("decode", "ODE latents -> poses"),
                           ("score", "plausibility per pose and joint (lower = more plausible)")):
        e = sub.add_parser(name, parents=[common], help=helptext)
        e.add_argument("--input", required=True)
    f = sub.add_parser("fit-image", parents=[common], help="SMPL pose hypotheses from a photo (PNG/JPEG/WebP/BMP)")
    f.add_argument("--input", required=True, help="image file")
    f.add_argument("--hypotheses", type=int, default=4,
                   help=f"ranked hypotheses to keep ({_range('fit_image', 'n_hypotheses')}; 4 starts at least)")
    f.add_argument("--smpl-model", default=None, help="SMPL model file (.npz/.pkl): fit its skeleton")
    f.add_argument("--focal-px", type=float, default=None, help="focal length in pixels (default: 50 mm equivalent)")
    return p


def resolve_device(name: str) -> str:
    """``auto`` -> cuda > mps > cpu; a named device that is not available is a ``BadInput``."""
    import torch

    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    if (name == "cuda" and not torch.cuda.is_available()) or (name == "mps" and not mps):
        raise S.BadInput(f"--device {name} requested but {name.upper()} is not available")
    return name


def _progress_printer(enabled: bool):  # noqa: ANN202
    if not enabled:
        return None

    def report(frac: float, msg: str) -> None:
        print(f"\r{msg}: {100 * frac:5.1f}%", end="\n" if frac >= 1.0 else "", file=sys.stderr, flush=True)
    return report


def check_request(type_: str, input_path: str | None = None, **params: Any) -> S.Request:
    """The protocol request of these parameters, validated like the server's (its bounds, shapes and ranges);
    a refusal is a ``BadInput`` naming the option (or the input file) instead of the request field."""
    try:
        return S.make_request(type_, 0, **{k: v for k, v in params.items() if v is not None})
    except S.ProtocolError as exc:
        field, _, rest = exc.message.partition(" ")
        if field in FLAGS:
            raise S.BadInput(f"{FLAGS[field]} {rest}") from None
        if field in params and input_path:
            raise S.BadInput(f"{input_path}: {exc.message}") from None
        raise S.BadInput(exc.message) from None


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

    def need(arr, what: str):  # noqa: ANN001, ANN202
        if arr is None:
            raise InputError(f"{args.input}: needs {what}")
        return arr

    t = args.task
    src = getattr(args, "input", None)
    if t == "sample":
        req = check_request("sample", n=args.n, sampler=args.sampler, steps=args.steps, seed=args.seed)
    elif t == "complete":
        keep = tasks.keep_from_mask(args.mask) if args.mask else tasks.parse_keep(args.keep)
        req = check_request("complete", src, pose=need(inp.poses, "'poses' (N,63)"), keep=keep.tolist(),
                            n_hypotheses=args.hypotheses, steps=args.steps, root_orient=inp.root_orient, seed=args.seed)
    elif t == "denoise":
        if inp.joints is not None:  # joint positions: the root is fitted, a root_orient in the file is not used
            seq, seq_root = inp.joints, None
            req = check_request("denoise", src, joints=seq, noise_mm=args.noise_mm, seed=args.seed)
        else:
            seq, seq_root = need(inp.poses, "'joints' (T,22,3) or 'poses' (T,63)"), inp.root_orient
            req = check_request("denoise", src, poses=seq, root_orient=seq_root, noise_mm=args.noise_mm, seed=args.seed)
    elif t == "inbetween":
        req = check_request("inbetween", src, keys=need(inp.poses, "'poses' (M,63), M >= 2"), n_frames=args.frames,
                            ease=args.ease, root_orient=inp.root_orient, trans=inp.trans, seed=args.seed)
    elif t == "variations":
        poses = need(inp.poses, "'poses'")
        if not 0 <= args.frame < len(poses):
            raise S.BadInput(f"--frame {args.frame} out of range (file has {len(poses)} poses)")
        req = check_request("variations", src, pose=poses[args.frame], strength=args.strength, n=args.n, seed=args.seed)
    elif t == "score":
        req = check_request("score", src, poses=need(inp.poses, "'poses' (N,63)"))
    elif t == "fit-image":
        req = check_request("fit_image", n_hypotheses=args.hypotheses, path=args.input, smpl_model=args.smpl_model,
                            focal_px=args.focal_px, seed=args.seed)
    prior = PosePrior.load(_weights(args.weights), device=resolve_device(args.device))
    kw = {"seed": args.seed, "progress": _progress_printer(args.progress)}
    if t == "sample":
        res = {"poses": tasks.sample(prior, req.n, sampler=req.sampler, steps=req.steps, **kw)}
    elif t == "complete":
        r = tasks.complete(prior, inp.poses, keep, n_hypotheses=req.n_hypotheses, steps=req.steps,
                           root_orient=inp.root_orient, **kw)
        res = {"poses": r["poses"], "scores": r["scores"], "keep": keep, "root_orient": inp.root_orient}
    elif t == "denoise":
        r = tasks.denoise(prior, seq, root_orient=seq_root, noise_mm=req.noise_mm, use_prior=not args.no_prior, **kw)
        res = {k: r[k] for k in ("poses", "joints", "root_orient", "trans")}
        res["noise_mm"] = np.float32(r["noise_mm"])
    elif t == "inbetween":
        r = tasks.inbetween(prior, inp.poses, req.n_frames, ease=req.ease, root_orient=inp.root_orient,
                            trans=inp.trans, **kw)
        res = {"poses": r["poses"], "root_orient": r["root_orient"], "trans": r["trans"]}
    elif t == "variations":
        res = {"poses": tasks.variations(prior, inp.poses[args.frame], req.strength, req.n, **kw)}
    elif t == "encode":
        res = {"latents": tasks.encode(prior, need(inp.poses, "'poses' (N,63)"), **kw)}
    elif t == "decode":
        res = {"poses": tasks.decode(prior, need(inp.latents, "'latents' (N,63)"), **kw)}
    elif t == "score":
        r = tasks.score(prior, inp.poses)
        res = {"pose": r["pose"], "joints": r["joints"]}
    elif t == "fit-image":
        res = _fit_image(prior, req, kw["progress"])
    else:  # pragma: no cover - argparse restricts the choices
        raise S.BadInput(f"unknown task {t!r}")
    bad = [k for k, v in res.items() if v is not None and np.asarray(v).dtype.kind == "f"
           and not np.isfinite(np.asarray(v)).all()]
    if bad:
        raise S.BadInput(f"{t} produced NaN or infinite values ({', '.join(bad)}) for this input; check that "
                         "the input is in range (axis-angle in radians, positions in metres)")
    return save_npz(out_path, **res)


def _fit_image(prior: Any, req: S.FitImageRequest, progress: Any) -> dict:
    """``fit-image``: the arrays to save; the photo's errors as ``BadInput`` (exit status 2)."""
    import numpy as np

    from backend.photo import api as photo

    try:
        r = photo.fit_image(prior, req.path, n_hypotheses=req.n_hypotheses, seed=req.seed, smpl_model=req.smpl_model,
                            focal_px=req.focal_px, progress=progress)
    except photo.PhotoUnavailable as exc:  # ImageError / NoPerson are BadInput already
        raise S.BadInput(str(exc)) from None
    out = {k: np.asarray(v) for k, v in r.items() if v is not None and k not in ("init", "keypoint_names")}
    out["init"] = np.array(r["init"])
    out["keypoint_names"] = np.array(r["keypoint_names"])
    return out


def _weights(path: str) -> Path:
    from backend.cli_io import InputError

    weights = Path(path)
    if not weights.is_file():
        raise InputError(f"{weights}: weights file not found (pass --weights PATH)")
    return weights


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input, 1 other error)."""
    args = build_parser().parse_args(argv)
    try:
        from backend.cli_io import InputError
        from backend.engine.checkpoint import CheckpointError
        from backend.server.device import is_oom
    except Exception as e:  # noqa: BLE001
        if args.debug:
            raise
        print(f"error: cannot import the backend ({e})", file=sys.stderr)
        return EXIT_ERROR
    try:
        path = run(args)
    except (S.BadInput, InputError, CheckpointError) as e:
        if args.debug:
            raise
        print(f"error: {_clip_message(str(e))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (S.TaskCancelled, KeyboardInterrupt):
        print("error: cancelled", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001
        if args.debug:
            raise
        if is_oom(e):
            e = None  # noqa: F841  drop the frames holding tensors
            print(f"error: {args.task} ran out of memory; use fewer poses, frames or hypotheses per call, or a GPU "
                  "(--device cuda)", file=sys.stderr)
            return EXIT_ERROR
        msg = _clip_message(str(e)) or type(e).__name__
        print(f"error: {type(e).__name__}: {msg} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR
    print(f"wrote {path}", file=sys.stderr)
    return 0
