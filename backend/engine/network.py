"""The DPoser noise-prediction network: a time-conditioned residual MLP (the official ``TimeMLPs`` /
``ScoreModelFC`` design, DPoser Sec. 3.1 / supplementary), predicting eps on the z-scored
63-D axis-angle body pose.

    temb = SiLU(Linear(E,E)(sinusoidal_E(999 t)))                 E = time_embed_dim (512)
    h    = Dropout(SiLU(GroupNorm(Linear(D,H)(x) + Linear(E,H)(temb))))
    n_blocks x:  h = h + layer2(layer1(h)),  layer(h) = Dropout(SiLU(GroupNorm(Linear(H,H)(h) + Linear(E,H)(temb))))
    eps  = Linear(H,D)(h)

With D=63, H=1024, E=512, n_blocks=2 this has 7,227,967 parameters (the official code's unused
extra layer is left out, and its division by a VE noise table is not applied).

The forward pass is split in two pieces so that a batch sharing one time can reuse the time path:
``time_terms(t)`` (per layer, ``Linear(D|H,H).bias + Linear(E,H)(temb)``) and
``forward_with_time_terms(x, terms)`` (the x path). ``forward`` is exactly these two; the cached eps
model of :class:`backend.engine.prior.PosePrior` (``fast_eps``) calls the same two with cached terms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

TIME_SCALE = 999.0  # the official code embeds 999 * t (DDPM-style discrete labels)


@dataclass
class NetworkConfig:
    """Shape hyper-parameters of :class:`ScoreMLP`.

    Attributes:
        dim: data dimension D (63 = 21 joints x 3 axis-angle).
        hidden: hidden width H (1024).
        n_blocks: number of residual blocks (2), each of two layers.
        time_embed_dim: sinusoidal time-embedding size E (512 = 256 sin + 256 cos); must be even.
        dropout: dropout probability (0.1).
        groups: GroupNorm groups (32); must divide ``hidden``.
    """

    dim: int = 63
    hidden: int = 1024
    n_blocks: int = 2
    time_embed_dim: int = 512
    dropout: float = 0.1
    groups: int = 32

    def __post_init__(self) -> None:
        if self.hidden % self.groups:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by groups ({self.groups})")
        if self.time_embed_dim % 2 or self.time_embed_dim < 4:
            raise ValueError(f"time_embed_dim must be even and >= 4, got {self.time_embed_dim}")
        if self.dim < 1 or self.n_blocks < 0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"bad network config {self}")

    def to_dict(self) -> dict:
        """Plain dict of the fields (JSON- and ``weights_only``-safe)."""
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "NetworkConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in fields(NetworkConfig)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown NetworkConfig keys: {', '.join(unknown)}")
        return NetworkConfig(**d)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """DDPM sinusoidal embedding (Ho et al. 2020 / score_sde ``get_timestep_embedding``).

    Args:
        t: (B,) time labels (already scaled, e.g. 999 t).
        dim: even embedding size E.
    Returns:
        (B, E): [sin(t w_k), cos(t w_k)], w_k = exp(-log(max_period) k / (E/2 - 1)), k < E/2.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) / (half - 1) * torch.arange(half, dtype=torch.float32, device=t.device))
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class _TimeLayer(nn.Module):
    """Linear(in,H)(h) + Linear(E,H)(temb) -> GroupNorm -> SiLU -> Dropout; (B,in),(B,E) -> (B,H)."""

    def __init__(self, d_in: int, cfg: NetworkConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, cfg.hidden)
        self.dense_t = nn.Linear(cfg.time_embed_dim, cfg.hidden)
        self.norm = nn.GroupNorm(cfg.groups, cfg.hidden)
        self.act = nn.SiLU()
        self.drop = nn.Dropout(cfg.dropout)

    def time_term(self, temb: torch.Tensor) -> torch.Tensor:
        """The time-only part of the pre-activation, both biases included: (B|1,E) -> (B|1,H)."""
        return self.dense.bias + self.dense_t(temb)

    def forward_with_time_term(self, h: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
        """The x path: h W^T + term -> GroupNorm -> SiLU -> Dropout; (B,in), (B|1,H) -> (B,H)."""
        return self.drop(self.act(self.norm(torch.addmm(term, h, self.dense.weight.t()))))

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return self.forward_with_time_term(h, self.time_term(temb))


class _ResBlock(nn.Module):
    """Two :class:`_TimeLayer` with a skip: h + l2(l1(h)); (B,H) -> (B,H)."""

    def __init__(self, cfg: NetworkConfig) -> None:
        super().__init__()
        self.layer1 = _TimeLayer(cfg.hidden, cfg)
        self.layer2 = _TimeLayer(cfg.hidden, cfg)

    def forward_with_time_terms(self, h: torch.Tensor, term1: torch.Tensor, term2: torch.Tensor) -> torch.Tensor:
        return h + self.layer2.forward_with_time_term(self.layer1.forward_with_time_term(h, term1), term2)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return self.forward_with_time_terms(h, self.layer1.time_term(temb), self.layer2.time_term(temb))


class ScoreMLP(nn.Module):
    """eps-prediction MLP. ``forward(x (B,D), t (B,) | float) -> eps (B,D)`` with t in [0, 1]."""

    def __init__(self, config: NetworkConfig | None = None) -> None:
        super().__init__()
        self.config = config or NetworkConfig()
        cfg = self.config
        self.time_embed = nn.Sequential(nn.Linear(cfg.time_embed_dim, cfg.time_embed_dim), nn.SiLU())
        self.stem = _TimeLayer(cfg.dim, cfg)
        self.blocks = nn.ModuleList(_ResBlock(cfg) for _ in range(cfg.n_blocks))
        self.head = nn.Linear(cfg.hidden, cfg.dim)

    def time_terms(self, t: torch.Tensor, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
        """t (B,) (or (1,) for a batch sharing one time) -> the time term of every layer (stem, then
        layer1, layer2 of each block), each (B|1,H): ``dense.bias + dense_t(time_embed(emb(999 t)))``."""
        temb = self.time_embed(timestep_embedding(TIME_SCALE * t, self.config.time_embed_dim).to(dtype))
        terms = [self.stem.time_term(temb)]
        for block in self.blocks:
            terms += [block.layer1.time_term(temb), block.layer2.time_term(temb)]
        return terms

    def forward_with_time_terms(self, x: torch.Tensor, terms: list[torch.Tensor]) -> torch.Tensor:
        """The x path given :meth:`time_terms`: x (B,D) -> eps (B,D)."""
        h = self.stem.forward_with_time_term(x, terms[0])
        for k, block in enumerate(self.blocks):
            h = block.forward_with_time_terms(h, terms[1 + 2 * k], terms[2 + 2 * k])
        return self.head(h)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """x: (B, D) z-scored pose (at noise level t); t: (B,), 0-d or float in [0, 1] -> eps (B, D)."""
        if x.dim() != 2 or x.shape[1] != self.config.dim:
            raise ValueError(f"x must be (B, {self.config.dim}), got {tuple(x.shape)}")
        t = torch.as_tensor(t, device=x.device)
        if t.dim() == 0 or t.numel() == 1:
            t = t.reshape(1)  # one time for the batch: (1,H) time terms, broadcast over the rows
        return self.forward_with_time_terms(x, self.time_terms(t, x.dtype))


def count_parameters(module: nn.Module) -> int:
    """Total number of parameters."""
    return sum(p.numel() for p in module.parameters())


def expected_parameter_count(cfg: NetworkConfig) -> int:
    """Closed-form parameter count of ``ScoreMLP(cfg)`` (7,227,967 for the defaults)."""
    D, H, E = cfg.dim, cfg.hidden, cfg.time_embed_dim
    layer = lambda d_in: d_in * H + H + E * H + H + 2 * H  # noqa: E731  dense, dense_t, GroupNorm
    return (E * E + E) + layer(D) + 2 * cfg.n_blocks * layer(H) + (H * D + D)
