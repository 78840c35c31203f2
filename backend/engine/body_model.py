"""One body-model interface over two back ends:

* ``load_body_model(None)``: the built-in SMPL skeleton (joints by ``kinematics.forward_kinematics``,
  no mesh: ``vertices`` and ``faces`` are None, ``betas`` unsupported);
* ``load_body_model(path)``: the ``smplx`` package's SMPL model built from an SMPL model file
  (``.npz`` or original ``.pkl``, read without chumpy by ``dposer_core.smpl_model_file``): joints and
  vertices by linear blend skinning.

``BodyModel.forward(body_pose (...,63)|(...,21,3), root_orient (...,3)=None, trans (...,3)=None,
betas (...,K)=None, num_joints=22)`` -> ``BodyOutput(joints (...,num_joints,3), vertices (...,V,3)|None,
faces (F,3)|None)``, SMPL native frame, metres.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dposer_core.smpl_model_file import read_smpl_model_file
from .kinematics import forward_kinematics
from dposer_core.constants import NUM_BODY_JOINTS
from dposer_core.skeleton import Skeleton, smpl_skeleton


@dataclass
class BodyOutput:
    """joints (...,J,3); vertices (...,V,3) or None; faces (F,3) int64 or None."""

    joints: torch.Tensor
    vertices: torch.Tensor | None = None
    faces: torch.Tensor | None = None


def _pose_batch(body_pose: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """(...,63) | (...,21,3) -> ((N,63), batch shape)."""
    if body_pose.shape[-2:] == (NUM_BODY_JOINTS, 3) and not (body_pose.dim() == 2 and body_pose.shape[-1] == 63):
        body_pose = body_pose.reshape(body_pose.shape[:-2] + (3 * NUM_BODY_JOINTS,))
    if body_pose.shape[-1] != 3 * NUM_BODY_JOINTS:
        raise ValueError(f"body_pose must be (...,63) or (...,21,3), got {tuple(body_pose.shape)}")
    batch = tuple(body_pose.shape[:-1])
    return body_pose.reshape(-1, 3 * NUM_BODY_JOINTS), batch


class BodyModel(torch.nn.Module):
    """Base class. Attributes: ``skeleton`` (names, parents, rest joints), ``has_mesh``, ``faces``."""

    has_mesh: bool = False
    skeleton: Skeleton

    def forward(self, body_pose: torch.Tensor, root_orient: torch.Tensor | None = None,
                trans: torch.Tensor | None = None, betas: torch.Tensor | None = None,
                num_joints: int = 22) -> BodyOutput:  # pragma: no cover - abstract
        raise NotImplementedError


class SkeletonBodyModel(BodyModel):
    """The built-in skeleton: forward kinematics only (no mesh, no shape space)."""

    def __init__(self, skeleton: Skeleton | None = None) -> None:
        super().__init__()
        self.skeleton = skeleton or smpl_skeleton()
        self.faces = None

    def forward(self, body_pose: torch.Tensor, root_orient: torch.Tensor | None = None,
                trans: torch.Tensor | None = None, betas: torch.Tensor | None = None,
                num_joints: int = 22) -> BodyOutput:
        """joints (...,num_joints,3) with num_joints 22 or 24; ``betas`` must be None or zero."""
        if betas is not None and bool(torch.as_tensor(betas).abs().max() > 0):
            raise ValueError("the built-in skeleton has no shape space (betas); load an SMPL model file "
                             "to use body shapes")
        joints, _ = forward_kinematics(body_pose, root_orient, trans, skeleton=self.skeleton, num_joints=num_joints)
        return BodyOutput(joints=joints)


class SMPLBodyModel(BodyModel):
    """SMPL through the ``smplx`` package (model_type 'smpl'), from a numpy model dict.

    Args:
        model: dict from ``read_smpl_model_file``.
        num_betas: shape components used (<= the file's).
        dtype: float32 (default) or float64.
    """

    has_mesh = True

    def __init__(self, model: dict[str, np.ndarray], num_betas: int = 10, dtype: torch.dtype = torch.float32,
                 source: str = "") -> None:
        super().__init__()
        import smplx
        from smplx.utils import Struct

        V = model["v_template"].shape[0]
        kwargs: dict = {}
        if V != 6890:  # the extra vertex keypoints of smplx index a full SMPL mesh; not used here
            kwargs = {"vertex_ids": {k: 0 for k in ("nose", "reye", "leye", "rear", "lear")},
                      "use_hands": False, "use_feet_keypoints": False}
        num_betas = min(num_betas, model["shapedirs"].shape[-1])
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for 10-beta models
            self.smpl = smplx.SMPL(model_path=source or "smpl", data_struct=Struct(**model), num_betas=num_betas,
                                   create_betas=False, create_global_orient=False, create_body_pose=False,
                                   create_transl=False, dtype=dtype, **kwargs)
        self.dtype = dtype
        self.num_betas = num_betas
        self.register_buffer("faces_t", torch.as_tensor(np.asarray(model["f"], dtype=np.int64)), persistent=False)
        self.faces = self.faces_t
        par = model["kintree_table"][0].astype(np.int64).copy()
        par[0] = -1
        names = smpl_skeleton().names if len(par) == 24 else tuple(f"joint_{i}" for i in range(len(par)))
        rest = model["J_regressor"] @ model["v_template"]
        self.skeleton = Skeleton(tuple(names), tuple(int(p) for p in par), rest)

    def forward(self, body_pose: torch.Tensor, root_orient: torch.Tensor | None = None,
                trans: torch.Tensor | None = None, betas: torch.Tensor | None = None,
                num_joints: int = 22) -> BodyOutput:
        """joints (...,num_joints,3) (num_joints <= 24), vertices (...,V,3), faces (F,3)."""
        if not 1 <= num_joints <= 24:
            raise ValueError(f"num_joints must be in 1..24, got {num_joints}")
        dev = self.smpl.v_template.device
        bp, batch = _pose_batch(body_pose.to(dev, self.dtype))
        N = bp.shape[0]
        ro = torch.zeros(N, 3, dtype=self.dtype, device=dev) if root_orient is None else \
            root_orient.to(dev, self.dtype).expand(batch + (3,)).reshape(N, 3)
        tr = torch.zeros(N, 3, dtype=self.dtype, device=dev) if trans is None else \
            trans.to(dev, self.dtype).expand(batch + (3,)).reshape(N, 3)
        if betas is None:
            be = torch.zeros(N, self.num_betas, dtype=self.dtype, device=dev)
        else:
            be = betas.to(dev, self.dtype)[..., : self.num_betas]
            be = torch.nn.functional.pad(be, (0, self.num_betas - be.shape[-1]))
            be = be.expand(batch + (self.num_betas,)).reshape(N, self.num_betas)
        hands = torch.zeros(N, 6, dtype=self.dtype, device=dev)  # SMPL joints 22, 23
        out = self.smpl(betas=be, global_orient=ro, body_pose=torch.cat([bp, hands], -1), transl=tr)
        joints = out.joints[:, :num_joints].reshape(batch + (num_joints, 3))
        verts = out.vertices.reshape(batch + tuple(out.vertices.shape[-2:]))
        return BodyOutput(joints=joints, vertices=verts, faces=self.faces_t)


def load_body_model(model_path: str | Path | None = None, num_betas: int = 10,
                    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> BodyModel:
    """The built-in skeleton (``model_path=None``) or an SMPL model file (.npz / .pkl).

    Raises ``dposer_core.smpl_model_file.SMPLModelFileError`` (a ValueError) for a bad model file.
    """
    if model_path is None:
        return SkeletonBodyModel().to(device)
    model = read_smpl_model_file(model_path)
    return SMPLBodyModel(model, num_betas=num_betas, dtype=dtype, source=str(model_path)).to(device)
