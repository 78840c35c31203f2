"""The run's settings, the learning-rate schedule and the EMA of the weights."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["TrainConfig", "lr_at", "ema_update"]


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
