"""``PosePrior``: a trained DPoser model ready for use: the EMA network in eval mode, the sub-VP SDE
and the z-score statistics, with the eps-model contract the samplers and the regulariser use.

    prior = PosePrior.load("weights/dposer.pt")
    z = prior.normalize(pose)                 # (...,63) axis-angle -> z-space
    eps = prior.eps_model(z, t)               # z (B,63), t (B,) or float -> eps (B,63)
    pose = prior.denormalize(z)
"""

from __future__ import annotations

from pathlib import Path

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

    def __repr__(self) -> str:
        prov = self.checkpoint.provenance if self.checkpoint else {}
        return (f"PosePrior(device={self.device}, {self.sde}, config={self.net.config}, "
                f"iterations={prov.get('iterations')}, date={prov.get('date')})")
