"""``PosePrior``: a trained DPoser model ready for use: the EMA network in eval mode, the sub-VP SDE
and the z-score statistics, with the eps-model contract the samplers and the regulariser use.

    prior = PosePrior.load("weights/dposer.pt")
    z = prior.normalize(pose)                 # (...,63) axis-angle -> z-space
    eps = prior.eps_model(z, t)               # z (B,63), t (B,) or float -> eps (B,63)
    eps = prior.fast_eps(z, t)                # the same network for a batch sharing one time t (cached)
    pose = prior.denormalize(z)
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .checkpoint import Checkpoint, load_checkpoint
from .network import ScoreMLP
from .sde import SubVPSDE
from dposer_core.skeleton import Skeleton


class PosePrior:
    """A loaded pose prior.

    Attributes:
        net: ``ScoreMLP`` with the EMA weights, eval mode, parameters frozen (``requires_grad=False``;
            gradients still flow to the *inputs*, e.g. for score-based guidance).
        sde: the ``SubVPSDE`` the network was trained with.
        mean, std: (63,) float32 tensors on ``device`` (z-score statistics).
        device: ``torch.device``.
        skeleton: the training ``Skeleton``.
        checkpoint: the ``Checkpoint`` it came from (its provenance etc.).
    """

    def __init__(self, net: ScoreMLP, sde: SubVPSDE, mean: torch.Tensor, std: torch.Tensor,
                 device: torch.device | str = "cpu", skeleton: Skeleton | None = None,
                 checkpoint: Checkpoint | None = None) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.sde = sde
        self.mean = mean.to(self.device, torch.float32)
        self.std = std.to(self.device, torch.float32)
        self.skeleton = skeleton
        self.checkpoint = checkpoint

    @property
    def dim(self) -> int:
        """Data dimension (63)."""
        return self.net.config.dim

    @staticmethod
    def from_checkpoint(ckpt: Checkpoint, device: torch.device | str = "cpu") -> "PosePrior":
        """Builds the prior from an in-memory :class:`Checkpoint`."""
        skel = Skeleton.from_dict(ckpt.skeleton) if ckpt.skeleton else None
        return PosePrior(ckpt.build_network(device), SubVPSDE.from_dict(ckpt.sde), ckpt.mean, ckpt.std,
                         device=device, skeleton=skel, checkpoint=ckpt)

    @staticmethod
    def load(path: str | Path, device: torch.device | str = "cpu") -> "PosePrior":
        """Loads a checkpoint file (raises ``CheckpointError`` with a clear message on a bad file)."""
        return PosePrior.from_checkpoint(load_checkpoint(path, map_location="cpu"), device)

    def _tensor(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x.to(self.device, torch.float32)
        return torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.device)

    def normalize(self, pose: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(...,63) axis-angle body pose -> (...,63) z-score ``(pose - mean) / std`` (a tensor)."""
        return (self._tensor(pose) - self.mean) / self.std

    def denormalize(self, z: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(...,63) z-space -> (...,63) axis-angle ``z * std + mean`` (a tensor)."""
        return self._tensor(z) * self.std + self.mean

    def eps_model(self, z: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """Predicted noise eps(z_t, t): z (B,63) in z-space, t a float, 0-d or (B,) tensor -> (B,63).

        Not wrapped in ``no_grad``: callers that do not need input gradients should use
        ``torch.no_grad()`` / ``torch.inference_mode()`` themselves (the samplers do).
        """
        if z.dim() == 1:
            return self.eps_model(z[None], t)[0]
        t = torch.as_tensor(t, dtype=torch.float32, device=self.device)
        if t.dim() == 0:
            t = t.expand(z.shape[0])
        return self.net(z.to(self.device, torch.float32), t)

    __call__ = eps_model

    @property
    def fast_eps(self) -> "FastEps":
        """The cached :class:`FastEps` of this prior (created on first use)."""
        f = getattr(self, "_fast_eps", None)
        if f is None or f.prior is not self:
            f = FastEps(self)
            self._fast_eps = f
        return f

    def __repr__(self) -> str:
        prov = self.checkpoint.provenance if self.checkpoint else {}
        return (f"PosePrior(device={self.device}, {self.sde}, config={self.net.config}, "
                f"iterations={prov.get('iterations')}, date={prov.get('date')})")


# The listener of the task running on this thread, called between the row chunks of a large batch.
_CHUNKS = threading.local()
ChunkListener = Callable[[int, int], None]


def set_chunk_listener(listener: ChunkListener | None) -> None:
    """``listener(i, n_chunks)`` is called before chunk i of every chunked :class:`FastEps` call made
    on this thread (None: no listener); it may raise to cancel (e.g. ``TaskCancelled``)."""
    _CHUNKS.listener = listener


def chunk_listener() -> ChunkListener | None:
    """The listener set on this thread by :func:`set_chunk_listener`, or None."""
    return getattr(_CHUNKS, "listener", None)


class FastEps:
    """``prior.eps_model`` for a batch that shares one time ``t``: the network's
    :meth:`~backend.engine.network.ScoreMLP.time_terms` are computed once per ``t`` and cached, so a
    call costs only the x path (:meth:`~backend.engine.network.ScoreMLP.forward_with_time_terms`,
    the same code as ``ScoreMLP.forward``). Runs under ``torch.inference_mode`` (no gradients)."""

    _MAX_CACHE = 4096

    def __init__(self, prior: PosePrior) -> None:
        self.prior = prior
        self.cache: dict[float, list[torch.Tensor]] = {}
        self.calls = 0
        self.call_log: list[int] | None = None  # batch size of every call while a list (bench)

    def time_terms(self, t: float) -> list[torch.Tensor]:
        """The network's time terms at ``t`` (each (1,H)), cached."""
        c = self.cache.get(t)
        if c is None:
            tt = torch.full((1,), t, dtype=torch.float32, device=self.prior.device)
            c = self.prior.net.time_terms(tt)
            if len(self.cache) >= self._MAX_CACHE:
                self.cache.clear()
            self.cache[t] = c
        return c

    def chunk_rows(self) -> int:
        """Rows per network call: 512 for the shipped width-512 network (fewer for wider ones), so
        one call takes a fraction of a second (cancel latency), activations stay small (memory),
        and the matmuls stay in cache (this is also faster per row than one huge batch; the
        results are bit-identical because every row is computed independently)."""
        hidden = self.prior.net.config.hidden
        return max(128, min(65536, int(512 * (512 / max(hidden, 1)) ** 2)))

    def __call__(self, z: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        """z (B,63) z-space, t float (or a (B,) tensor of equal values) -> eps (B,63).

        Large batches run in row chunks (:meth:`chunk_rows`); before each chunk the thread's
        :func:`chunk_listener` is called (cancellation, fractional progress)."""
        if isinstance(t, torch.Tensor):
            t = float(t.reshape(-1)[0])
        self.calls += 1
        if self.call_log is not None:
            self.call_log.append(int(z.shape[0]))
        rows = self.chunk_rows()
        if z.shape[0] <= 2 * rows:  # e.g. a denoise group (600 rows) stays one call
            return self._eval(z, float(t))
        listener = chunk_listener()
        starts = range(0, z.shape[0], rows)
        out = []
        for i, s in enumerate(starts):
            if listener is not None:
                listener(i, len(starts))
            out.append(self._eval(z[s:s + rows], float(t)))
        return torch.cat(out, 0)

    def _eval(self, z: torch.Tensor, t: float) -> torch.Tensor:
        with torch.inference_mode():
            return self.prior.net.forward_with_time_terms(z, self.time_terms(t))
