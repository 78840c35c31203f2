"""Train the DPoser score network: ``python -m backend.train``.

Denoising score matching on z-scored 63-D axis-angle body poses with the sub-VP SDE:
t ~ U(1e-5, 1), x_t = α_t x0 + σ_t z, loss = ‖ε̂(x_t, t) − z‖² (plain MSE on ε, as in the paper).
Adam with a linear warm-up then cosine decay, gradient clipping, and an EMA of the weights with the
(1+n)/(10+n) warm-up. Validation is left-leg completion MPJPE (mm) on held-out clips, computed with
the EMA weights. Saves ``last.pt`` and ``best.pt`` (shippable checkpoints, EMA weights) and
``train_state.pt`` (everything needed to resume the run exactly).

Several GPUs: ``torchrun --nproc_per_node=N -m backend.train ...`` (DDP; NCCL on CUDA, gloo on CPU).
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .engine.checkpoint import Checkpoint, git_commit, save_checkpoint
from .engine.kinematics import forward_kinematics
from .engine.network import NetworkConfig, ScoreMLP
from .engine.prior import PosePrior
from .engine.sde import SubVPSDE
from dposer_core.skeleton import BODY_MASKS, POSE_DIM, smpl_skeleton

@dataclass
class TrainConfig:
    """Every setting of a run; stored in the training state so a resume continues it exactly."""

    iters: int = 200_000
    batch: int = 1280
    lr: float = 2e-4
    warmup: int = 5_000
    min_lr_frac: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    t_min: float = 1e-5
    seed: int = 0
    hidden: int = 1024
    n_blocks: int = 2
    dropout: float = 0.1
    val_every: int = 2_000
    val_frames: int = 256
    val_hypotheses: int = 4
    ckpt_every: int = 1_000
    amp: bool = True
    mirror: bool = True              # add the left/right mirror image of every training pose
    source_power: float = 1.0        # per-source sampling weight ∝ frames**power (1 = by frames, 0 = equal)
    time_budget_s: float = 0.0       # > 0: the schedule runs on wall time; stop when it is spent


# ----------------------------------------------------------------------------- schedule / EMA

def lr_at(step: int, cfg: TrainConfig, elapsed_s: float | None = None) -> float:
    """Linear warm-up over ``cfg.warmup`` steps, then cosine decay to ``min_lr_frac·lr`` at ``iters``.

    With a time budget (``cfg.time_budget_s > 0``) the decay follows the larger of the step fraction
    and the spent fraction of the budget (``elapsed_s``), so a run on a busy machine still ends its
    cosine when its time is up."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(1, cfg.iters - cfg.warmup)
    progress = min(1.0, (step - cfg.warmup) / span)
    if cfg.time_budget_s > 0 and elapsed_s is not None:
        progress = max(progress, min(1.0, elapsed_s / cfg.time_budget_s))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, num_updates: int, max_decay: float) -> None:
    """EMA of the weights with the warm-up decay min(max_decay, (1+n)/(10+n))."""
    decay = min(max_decay, (1 + num_updates) / (10 + num_updates))
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


# ----------------------------------------------------------------------------- validation

def left_leg_completion_mm(prior: PosePrior, poses: np.ndarray, hypotheses: int, seed: int = 0) -> dict[str, float]:
    """Left-leg completion MPJPE (mm) with :func:`backend.tasks.complete` (the official recipe).

    Args:
        poses: (N,63) ground-truth body poses; the left hip, knee, ankle and foot rotations are hidden.
    Returns:
        {"best": best-of-H, "mean": mean over the H hypotheses}, over the FK joints the hidden
        rotations move (root at the origin).
    """
    from .evaluation.metrics import hidden_fk_joints, mpjpe
    from .tasks import complete

    hidden = BODY_MASKS["left_leg"]
    keep = np.ones(21, dtype=bool)
    keep[list(hidden)] = False
    out = complete(prior, poses, keep, n_hypotheses=hypotheses, seed=seed)["poses"]  # (N,H,63)
    j_pred = forward_kinematics(torch.as_tensor(out, device=prior.device))[0].cpu().numpy()
    j_gt = forward_kinematics(torch.as_tensor(poses, device=prior.device))[0].cpu().numpy()
    err = mpjpe(j_pred, j_gt[:, None], hidden_fk_joints(hidden))  # (N,H)
    return {"best": float(err.min(1).mean()), "mean": float(err.mean())}


# ----------------------------------------------------------------------------- data

def collect_user_clips(bvh_sources: list[tuple[str, str | None]], amass_sources: list[str]) -> list[tuple]:
    """Reads and retargets every clip under the given folders (or single files).

    Args:
        bvh_sources: (path, family or None for auto-detection) pairs; ``.bvh`` files found recursively.
        amass_sources: folders (or files) of AMASS ``.npz``, found recursively.
    Returns:
        [(clip name, source label, motion with body_pose (T,63), root_orient (T,3), trans (T,3))].
    """
    from tqdm import tqdm

    from .data.amass import read_amass
    from .data.retarget import retarget_file

    def files(root: str, suffix: str) -> list[Path]:
        r = Path(root).expanduser()
        if not r.exists():
            raise SystemExit(f"data source {r} does not exist")
        return [r] if r.is_file() else sorted(r.rglob(f"*{suffix}"))

    jobs = [(f, fam, Path(src).name) for src, fam in bvh_sources for f in files(src, ".bvh")]
    jobs += [(f, "amass", Path(src).name) for src in amass_sources for f in files(src, ".npz")]
    clips, failed = [], []
    for f, fam, label in tqdm(jobs, desc="reading clips", mininterval=2.0):
        try:
            m = read_amass(f) if fam == "amass" else retarget_file(f, family=fam)
            clips.append((f"{label}/{f.stem}", label, m))
        except Exception as e:  # a bad clip is reported, not fatal
            failed.append(f"{f}: {e}")
    for msg in failed:
        print(f"skipped {msg}", file=sys.stderr)
    if not clips:
        raise SystemExit("no readable clips in the given data sources")
    return clips


def source_weights(sources: np.ndarray, power: float) -> tuple[np.ndarray, dict[str, float]]:
    """Per-frame sampling weights (sum 1) giving each source a share ∝ (its frames)**power.

    Returns (weights (N,) float64, {source: share}). power 1 = uniform over frames, 0 = equal shares.
    """
    names, inv, counts = np.unique(np.asarray(sources).astype(str), return_inverse=True, return_counts=True)
    share = counts.astype(np.float64) ** power
    share /= share.sum()
    w = (share / counts)[inv]
    return w / w.sum(), {str(n): float(x) for n, x in zip(names, share)}


def load_training_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, dict]:
    """Returns (train_poses (N,63) f32, val_poses (M,63) f32, data provenance dict).

    The provenance dict carries ``train_sources`` (N,) (the source of each train pose), popped by
    :func:`train`.

    ``--dataset FILE`` loads a prepared set; ``--bvh``/``--amass`` read and retarget the given
    folders (cached by content under the dataset cache); with neither, the latest build of
    ``python -m backend.data.build`` is used.
    """
    import hashlib

    from .data.dataset import build_dataset_from_clips, default_cache_dir, load_dataset, save_dataset

    if args.dataset:
        ds = load_dataset(path=args.dataset)
    elif args.bvh or args.amass:
        bvh = [tuple(s.rsplit(":", 1)) if ":" in s else (s, None) for s in args.bvh]
        key = hashlib.sha256(json.dumps([bvh, args.amass]).encode()).hexdigest()[:16]
        cache = (Path(args.cache).expanduser() if args.cache else default_cache_dir()) / f"user-{key}.npz"
        if cache.exists():
            ds = load_dataset(path=cache)
        else:
            ds = build_dataset_from_clips(collect_user_clips(bvh, list(args.amass)),
                                          meta={"sources": {"bvh": bvh, "amass": args.amass}})
            save_dataset(ds, cache)
    else:
        ds = load_dataset(cache_dir=args.cache)
    train, val = ds.train_poses().astype(np.float32), ds.val_poses().astype(np.float32)
    fsrc = np.repeat(ds.clip_sources, np.diff(ds.clip_starts))
    prov = {"summary": ds.summary(), "train_frames": int(train.shape[0]), "val_frames": int(val.shape[0]),
            "build": {k: v for k, v in ds.meta.items() if k != "failed"},
            "train_sources": fsrc[ds.frame_mask("train") & ds.dedup_mask]}
    return train, val, prov


# ----------------------------------------------------------------------------- main loop

def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def make_checkpoint(ema: torch.nn.Module, net_cfg: NetworkConfig, mean: np.ndarray, std: np.ndarray,
                    sde: SubVPSDE, provenance: dict) -> Checkpoint:
    state = {k: v.detach().float().cpu().clone() for k, v in ema.state_dict().items()}
    return Checkpoint(config=net_cfg, state_dict=state, mean=torch.as_tensor(mean, dtype=torch.float32),
                      std=torch.as_tensor(std, dtype=torch.float32), skeleton=smpl_skeleton().to_dict(),
                      provenance=provenance, sde=sde.to_dict())


def train(args: argparse.Namespace) -> dict:
    """Runs (or resumes) a training run; returns the final summary dict (rank 0)."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if args.device == "auto":
        dev_name = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        dev_name = args.device
    if distributed:
        dist.init_process_group("nccl" if dev_name == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if dev_name == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dev_name = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    else:
        rank, world = 0, 1
    device = torch.device(dev_name)
    out = Path(args.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    state_path = out / "train_state.pt"

    resume = None
    if args.resume:
        rp = state_path if args.resume == "auto" else Path(args.resume)
        if rp.exists():
            resume = torch.load(rp, map_location="cpu", weights_only=False)
        elif args.resume != "auto":
            raise SystemExit(f"--resume: {rp} does not exist")
    cfg = TrainConfig(**resume["train_config"]) if resume else TrainConfig(
        iters=args.iters, batch=args.batch, lr=args.lr, warmup=args.warmup, seed=args.seed,
        hidden=args.hidden, n_blocks=args.n_blocks, val_every=args.val_every, val_frames=args.val_frames,
        val_hypotheses=args.val_hypotheses, ckpt_every=args.ckpt_every, amp=not args.no_amp,
        ema_decay=args.ema, mirror=not args.no_mirror, source_power=args.source_power,
        time_budget_s=args.time_budget_min * 60.0)
    if resume and args.iters and args.iters != cfg.iters:
        cfg.iters = args.iters  # extending a run is allowed; the LR schedule follows the new length
    if resume and args.time_budget_min and args.time_budget_min * 60.0 != cfg.time_budget_s:
        cfg.time_budget_s = args.time_budget_min * 60.0  # so is changing its time budget

    torch.manual_seed(cfg.seed + rank)
    if resume:
        train_np = resume["data"]["train"]
        val_np = resume["data"]["val"]
        data_prov = resume["data"]["provenance"]
        weights_np = resume["data"].get("weights")
    else:
        if distributed and rank != 0:
            dist.barrier()  # rank 0 builds (and caches) the dataset first
        train_np, val_np, data_prov = load_training_data(args)
        if distributed and rank == 0:
            dist.barrier()
        srcs = data_prov.pop("train_sources", None)
        if srcs is None or len(srcs) != len(train_np):
            srcs = np.array(["all"] * len(train_np))
        weights_np, shares = source_weights(srcs, cfg.source_power)
        data_prov["source_shares"] = shares
        if cfg.mirror:
            from .data.mirror import mirror_poses
            train_np = np.concatenate([train_np, mirror_poses(train_np)]).astype(np.float32)
            weights_np = np.concatenate([weights_np, weights_np]) * 0.5
        data_prov["mirror"] = cfg.mirror
    if weights_np is None:
        weights_np = np.full(len(train_np), 1.0 / len(train_np))
    mean = train_np.mean(0) if not resume else resume["mean"]
    std = train_np.std(0) if not resume else resume["std"]
    std = np.maximum(std, 1e-3)
    x_train = torch.as_tensor((train_np - mean) / std, dtype=torch.float32, device=device)
    cdf = torch.as_tensor(np.cumsum(weights_np) / np.sum(weights_np), dtype=torch.float64, device=device)
    val_rng = np.random.default_rng(1234)
    val_sel = val_np[val_rng.choice(len(val_np), size=min(cfg.val_frames, len(val_np)), replace=False)] \
        if len(val_np) else val_np

    net_cfg = NetworkConfig(dim=POSE_DIM, hidden=cfg.hidden, n_blocks=cfg.n_blocks, dropout=cfg.dropout)
    model = ScoreMLP(net_cfg).to(device)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sde = SubVPSDE()
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed * 1000 + rank)
    step, best_val, history = 0, float("inf"), []
    elapsed_before = 0.0
    if resume:
        model.load_state_dict(resume["model"])
        ema.load_state_dict(resume["ema"])
        opt.load_state_dict(resume["optimizer"])
        step, best_val, history = resume["step"], resume["best_val"], resume["history"]
        elapsed_before = float(resume.get("elapsed_s", 0.0))
        gen.set_state(resume["generators"][rank] if rank < len(resume["generators"]) else resume["generators"][0])
        torch.set_rng_state(resume["torch_rng"])
        if device.type == "cuda" and resume.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
    ddp_model = DistributedDataParallel(model) if distributed else model

    local_batch = cfg.batch // world
    use_amp = cfg.amp and device.type == "cuda"
    provenance_base = {
        "data": data_prov, "batch": cfg.batch, "lr": cfg.lr, "world_size": world,
        "hardware": _hardware(device), "git_commit": git_commit(), "train_config": asdict(cfg),
    }

    def save_state() -> None:
        gens = [gen.get_state()]
        if distributed:
            gathered = [None] * world
            dist.all_gather_object(gathered, gen.get_state())
            gens = gathered
        if rank != 0:
            return
        tmp = state_path.with_suffix(".tmp")
        torch.save({
            "train_config": asdict(cfg), "model": model.state_dict(), "ema": ema.state_dict(),
            "optimizer": opt.state_dict(), "step": step, "best_val": best_val, "history": history,
            "generators": gens, "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "mean": mean, "std": std, "elapsed_s": elapsed_before + time.time() - t0,
            "data": {"train": train_np, "val": val_np, "provenance": data_prov, "weights": weights_np},
        }, tmp)
        os.replace(tmp, state_path)

    def export(name: str, val: dict | None) -> None:
        prov = dict(provenance_base, iterations=step,
                    date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    validation=val or {})
        save_checkpoint(out / name, make_checkpoint(ema, net_cfg, mean, std, sde, prov))

    def validate() -> dict:
        prior = PosePrior.from_checkpoint(make_checkpoint(ema, net_cfg, mean, std, sde, {}), device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            r = left_leg_completion_mm(prior, val_sel, hypotheses=cfg.val_hypotheses, seed=0)
        return {"left_leg_best_mm": r["best"], "left_leg_mean_mm": r["mean"],
                "hypotheses": cfg.val_hypotheses, "frames": int(len(val_sel))}

    try:
        from tqdm import tqdm
        bar = tqdm(total=cfg.iters, initial=step, disable=rank != 0 or args.quiet, dynamic_ncols=True,
                   mininterval=2.0)
    except ImportError:  # pragma: no cover
        bar = None
    t0 = time.time()
    stop_at = min(cfg.iters, step + args.stop_after) if args.stop_after else cfg.iters
    model.train()
    def elapsed() -> float:
        return elapsed_before + time.time() - t0

    while step < stop_at:
        if cfg.time_budget_s > 0 and elapsed() >= cfg.time_budget_s:
            break
        u = torch.rand(local_batch, generator=gen, device=device, dtype=torch.float64)
        idx = torch.searchsorted(cdf, u).clamp_(max=x_train.shape[0] - 1)
        x0 = x_train[idx]
        t = torch.rand(local_batch, generator=gen, device=device) * (1 - cfg.t_min) + cfg.t_min
        z = torch.randn(x0.shape, generator=gen, device=device)
        xt = sde.alpha(t)[:, None] * x0 + sde.sigma(t)[:, None] * z
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, cfg, elapsed())
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
            eps = ddp_model(xt, t)
        loss = ((eps.float() - z) ** 2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        ema_update(ema, model, step, cfg.ema_decay)
        step += 1
        if bar is not None:
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr_at(step, cfg, elapsed()):.2e}")
        out_of_time = cfg.time_budget_s > 0 and elapsed() >= cfg.time_budget_s
        do_val = step % cfg.val_every == 0 or step == cfg.iters or out_of_time
        if do_val and rank == 0 and len(val_sel):
            v = validate()
            v.update(step=step, elapsed_s=round(elapsed(), 1), loss=float(loss.item()))
            history.append(v)
            print(json.dumps({"validation": v}), file=sys.stderr, flush=True)
            if v["left_leg_best_mm"] < best_val:
                best_val = v["left_leg_best_mm"]
                export("best.pt", v)
            model.train()
        if step % cfg.ckpt_every == 0 or step == stop_at or out_of_time:
            save_state()
            if rank == 0:
                export("last.pt", history[-1] if history else None)
    if bar is not None:
        bar.close()
    summary = {"steps": step, "best_left_leg_mm": best_val, "history": history, "out": str(out),
               "elapsed_s": round(elapsed(), 1)}
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return summary


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
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
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
