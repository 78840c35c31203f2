"""The training loop: denoising score matching on z-scored poses, Adam with warm-up and cosine decay,
gradient clipping, the EMA, validation, checkpoints and an exact resume; DDP under ``torchrun``."""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from backend.data.mirror import mirror_poses
from backend.engine.checkpoint import Checkpoint, git_commit, save_checkpoint
from backend.engine.network import NetworkConfig, ScoreMLP
from backend.engine.prior import PosePrior
from backend.engine.sde import SubVPSDE
from backend.training.data import load_training_data, source_weights
from backend.training.schedule import TrainConfig, ema_update, lr_at
from backend.training.validation import left_leg_completion_mm
from dposer_core.constants import POSE_DIM
from dposer_core.skeleton import smpl_skeleton

__all__ = ["train", "make_checkpoint"]


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def make_checkpoint(ema: torch.nn.Module, net_cfg: NetworkConfig, mean: np.ndarray, std: np.ndarray,
                    sde: SubVPSDE, provenance: dict) -> Checkpoint:
    """A shippable checkpoint of the EMA weights (float32, on the CPU) with the z-score statistics."""
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

