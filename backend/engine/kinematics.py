"""Batched forward kinematics on the SMPL skeleton (pure torch, like smplx's ``lbs.py``)."""

from __future__ import annotations

import torch

from .rotations import axis_angle_to_matrix
from .skeleton import NUM_BODY_JOINTS, Skeleton, smpl_skeleton


def forward_kinematics(
    body_pose: torch.Tensor,
    root_orient: torch.Tensor | None = None,
    trans: torch.Tensor | None = None,
    skeleton: Skeleton | None = None,
    num_joints: int = 22,
    rest_joints: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint positions and global rotations of the posed skeleton.

    Args:
        body_pose: (...,21,3) or (...,63) parent-relative axis-angle of SMPL joints 1..21.
        root_orient: optional (...,3) global orientation of the pelvis (joint 0); zero if None.
        trans: optional (...,3) translation added to every joint; zero if None.
        skeleton: the kinematic tree; the built-in SMPL skeleton if None.
        num_joints: 22 (pelvis..wrists) or 24 (with the hand joints, which get identity rotations).
        rest_joints: optional (...,J,3) rest joints overriding ``skeleton.rest_joints`` (e.g. a
            shaped SMPL body); must broadcast against the batch.

    Returns:
        joints: (...,num_joints,3) world positions. As in SMPL, the root joint sits at its rest
            position (plus ``trans``); rotations are about each joint's rest location.
        global_rots: (...,num_joints,3,3) world rotation of each joint's frame.
    """
    if num_joints not in (22, 24):
        raise ValueError(f"num_joints must be 22 or 24, got {num_joints}")
    skeleton = skeleton or smpl_skeleton()
    if body_pose.shape[-1] == 3 * NUM_BODY_JOINTS and (body_pose.dim() == 1 or body_pose.shape[-2:] != (NUM_BODY_JOINTS, 3)):
        body_pose = body_pose.reshape(body_pose.shape[:-1] + (NUM_BODY_JOINTS, 3))
    if body_pose.shape[-2:] != (NUM_BODY_JOINTS, 3):
        raise ValueError(f"body_pose must be (...,21,3) or (...,63), got {tuple(body_pose.shape)}")
    batch = body_pose.shape[:-2]
    dtype, device = body_pose.dtype, body_pose.device
    if root_orient is None:
        root_orient = torch.zeros(batch + (3,), dtype=dtype, device=device)
    aa = [root_orient.expand(batch + (3,))[..., None, :], body_pose]
    if num_joints == 24:
        aa.append(torch.zeros(batch + (2, 3), dtype=dtype, device=device))
    local = axis_angle_to_matrix(torch.cat(aa, dim=-2))  # (...,J,3,3)

    rest = torch.as_tensor(skeleton.rest_joints[:num_joints], dtype=dtype, device=device) \
        if rest_joints is None else rest_joints[..., :num_joints, :].to(dtype)
    parents = skeleton.parents[:num_joints]
    rots: list[torch.Tensor] = [local[..., 0, :, :]]
    pos: list[torch.Tensor] = [rest[..., 0, :].expand(batch + (3,))]
    for j in range(1, num_joints):
        p = parents[j]
        offset = (rest[..., j, :] - rest[..., p, :]).expand(batch + (3,))
        pos.append(pos[p] + (rots[p] @ offset[..., None])[..., 0])
        rots.append(rots[p] @ local[..., j, :, :])
    joints = torch.stack(pos, dim=-2)
    if trans is not None:
        joints = joints + trans[..., None, :]
    return joints, torch.stack(rots, dim=-3)


def body_joints(body_pose: torch.Tensor, num_joints: int = 22) -> torch.Tensor:
    """(...,63) body pose -> (...,num_joints,3) joints with zero root orientation and the pelvis at rest."""
    return forward_kinematics(body_pose, num_joints=num_joints)[0]
