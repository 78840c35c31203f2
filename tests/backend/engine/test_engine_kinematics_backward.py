"""The level-wise FK with the hand-written backward (issue 12, point 11) against the plain per-joint
autograd chain: bit-identical forward, equal gradients (also for the global-rotation output and at
tiny angles), and gradcheck in float64."""

from __future__ import annotations

import pytest
import torch

from backend.engine.kinematics import _levels, forward_kinematics
from backend.engine.rotations import axis_angle_to_matrix
from dposer_core.skeleton import smpl_skeleton


def reference_fk(body_pose: torch.Tensor, root_orient: torch.Tensor, trans: torch.Tensor, num_joints: int = 22):
    sk = smpl_skeleton()
    batch = body_pose.shape[:-1]
    aa = [root_orient[..., None, :], body_pose.reshape(batch + (21, 3))]
    if num_joints == 24:
        aa.append(torch.zeros(batch + (2, 3), dtype=body_pose.dtype))
    local = axis_angle_to_matrix(torch.cat(aa, -2))
    rest = torch.as_tensor(sk.rest_joints[:num_joints], dtype=body_pose.dtype)
    rots, pos = [local[..., 0, :, :]], [rest[0].expand(batch + (3,))]
    for j in range(1, num_joints):
        p = sk.parents[j]
        off = (rest[j] - rest[p]).expand(batch + (3,))
        pos.append(pos[p] + (rots[p] @ off[..., None])[..., 0])
        rots.append(rots[p] @ local[..., j, :, :])
    return torch.stack(pos, -2) + trans[..., None, :], torch.stack(rots, -3)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("num_joints", [22, 24])
@pytest.mark.parametrize("scale", [0.8, 1e-4])
def test_matches_per_joint_autograd(dtype: torch.dtype, tol: float, num_joints: int, scale: float) -> None:
    g = torch.Generator().manual_seed(1)
    bp = (torch.randn(4, 6, 63, generator=g, dtype=torch.float64) * scale).to(dtype).requires_grad_(True)
    ro = torch.randn(4, 6, 3, generator=g, dtype=torch.float64).to(dtype).requires_grad_(True)
    tr = torch.randn(4, 6, 3, generator=g, dtype=torch.float64).to(dtype).requires_grad_(True)
    j1, r1 = forward_kinematics(bp, ro, tr, num_joints=num_joints)
    j2, r2 = reference_fk(bp, ro, tr, num_joints)
    assert torch.equal(j1, j2) and torch.equal(r1, r2)  # same operations, same order: bit-identical
    wj, wr = torch.randn_like(j1), torch.randn_like(r1)
    g1 = torch.autograd.grad((j1 * wj).sum() + (r1 * wr).sum(), (bp, ro, tr))
    g2 = torch.autograd.grad((j2 * wj).sum() + (r2 * wr).sum(), (bp, ro, tr))
    # the truth: the reference in float64 (in float32 the reference's (1 - cos t)/t^2 cancels at tiny
    # angles, where the hand-written backward uses a Taylor series, so it may be the more accurate one)
    x64 = [t.detach().double().requires_grad_(True) for t in (bp, ro, tr)]
    j3, r3 = reference_fk(*x64, num_joints)
    g3 = torch.autograd.grad((j3 * wj.double()).sum() + (r3 * wr.double()).sum(), x64)
    for a, b, c in zip(g1, g2, g3):
        scale = max(1.0, c.abs().max().item())
        err_new, err_ref = (a.double() - c).abs().max().item(), (b.double() - c).abs().max().item()
        assert err_new <= max(tol * scale, 1.5 * err_ref), (err_new, err_ref)


@pytest.mark.parametrize("scale", [1.0, 0.02, 0.0])
def test_gradcheck(scale: float) -> None:
    g = torch.Generator().manual_seed(2)
    bp = (torch.randn(3, 63, generator=g, dtype=torch.float64) * scale).requires_grad_(True)
    ro = (torch.randn(3, 3, generator=g, dtype=torch.float64) * scale).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: forward_kinematics(a, b, num_joints=24), (bp, ro))
    assert torch.autograd.gradcheck(lambda a, b: forward_kinematics(a, b)[1], (bp, ro))


def test_level_plan_of_the_smpl_tree() -> None:
    plan = _levels(tuple(int(p) for p in smpl_skeleton().parents[:22]))
    assert len(plan) == 7  # depths 1..7: hips/spine .. wrists
    covered = sorted(j for sel, _, _ in plan for j in (range(22)[sel] if isinstance(sel, slice) else sel))
    assert covered == list(range(1, 22))
    # a tree whose depths are not consecutive joint ranges (and parents shared unevenly) still works
    parents = (-1, 0, 0, 1, 2, 1)
    plan = _levels(parents)
    assert plan[0] == (slice(1, 3), 0, "single") and plan[1][2] == "index"


def test_batch_dependent_rest_joints_use_the_generic_path() -> None:
    rest = torch.as_tensor(smpl_skeleton().rest_joints, dtype=torch.float64).expand(2, 24, 3) * 1.1
    bp = torch.randn(2, 63, dtype=torch.float64) * 0.3
    j, _ = forward_kinematics(bp, rest_joints=rest)
    j0, _ = forward_kinematics(bp * 0, rest_joints=rest)
    assert torch.allclose(j0, rest[:, :22]) and j.shape == (2, 22, 3)
