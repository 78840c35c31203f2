"""Batched forward kinematics on the SMPL skeleton (pure torch, like smplx's ``lbs.py``).

The chain runs level by level (all joints of one tree depth in one batched matmul: 7 levels for the
22 SMPL body joints instead of 21 joint steps), inside one autograd node (:class:`_ChainFK`) whose
backward is written out by hand. Autograd's own backward through the 40-odd tiny per-joint ops
was the main cost of motion denoising on the CPU (one FK forward + backward per optimiser step).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from .rotations import axis_angle_to_matrix
from dposer_core.constants import NUM_BODY_JOINTS
from dposer_core.skeleton import Skeleton, smpl_skeleton


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
    aa_all = torch.cat(aa, dim=-2)  # (...,J,3)

    rest = torch.as_tensor(skeleton.rest_joints[:num_joints], dtype=dtype, device=device) \
        if rest_joints is None else rest_joints[..., :num_joints, :].to(dtype)
    parents = skeleton.parents[:num_joints]
    if rest.dim() == 2:  # one rest skeleton for the whole batch: the level-wise chain
        levels = _levels(tuple(int(p) for p in parents))
        offsets = torch.cat([rest[:1], rest[1:] - rest[list(parents[1:])]], 0)  # (J,3); row 0 = root position
        joints, rots = _ChainFK.apply(aa_all.reshape(-1, num_joints, 3), offsets, levels)
        joints = joints.reshape(batch + (num_joints, 3))
        rots = rots.reshape(batch + (num_joints, 3, 3))
        if trans is not None:
            joints = joints + trans[..., None, :]
        return joints, rots
    local = axis_angle_to_matrix(aa_all)  # (...,J,3,3)
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


@lru_cache(maxsize=16)
def _levels(parents: tuple[int, ...]) -> tuple[tuple[object, object, str], ...]:
    """The chain plan: per tree depth 1, 2, ... (joints, parents, mode). ``joints`` is a slice when the
    depth's joints are consecutive (true for SMPL, whose joints are ordered by depth), else a tuple of
    indices; ``parents`` is a slice ("slice": consecutive distinct parents), one index ("single": all
    share one parent) or a tuple of indices ("index")."""
    depth = [0] * len(parents)
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    out = []
    for d in range(1, max(depth, default=0) + 1):
        js = [j for j in range(len(parents)) if depth[j] == d]
        ps = [parents[j] for j in js]
        jsel: object = slice(js[0], js[-1] + 1) if js == list(range(js[0], js[-1] + 1)) else tuple(js)
        if len(set(ps)) == 1:
            out.append((jsel, ps[0], "single"))
        elif ps == list(range(ps[0], ps[-1] + 1)):
            out.append((jsel, slice(ps[0], ps[-1] + 1), "slice"))
        else:
            out.append((jsel, tuple(ps), "index"))
    return tuple(out)


def _take(t: torch.Tensor, sel: object, mode: str, n: int) -> torch.Tensor:
    """Rows ``sel`` of ``t`` (joints first) for a level of ``n`` joints."""
    if mode == "single":
        return t[sel].unsqueeze(0).expand((n,) + t.shape[1:])  # type: ignore[index]
    if mode == "slice" or isinstance(sel, slice):
        return t[sel]  # type: ignore[index]
    return t.index_select(0, torch.as_tensor(sel, device=t.device))


def _add_to(t: torch.Tensor, sel: object, mode: str, v: torch.Tensor) -> None:
    """``t[sel] += v`` where several rows of ``v`` may go to one parent."""
    if mode == "single":
        t[sel].add_(v.sum(0))  # type: ignore[index]
    elif mode == "slice":
        t[sel].add_(v)  # type: ignore[index]
    else:
        t.index_add_(0, torch.as_tensor(sel, device=t.device), v.clone())


def _vee(m: torch.Tensor) -> torch.Tensor:
    """(...,3,3) -> (...,3): the inner products ``m : K_i`` with the skew basis K_x, K_y, K_z."""
    return torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1)


def _rodrigues_backward(v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Gradient w.r.t. the axis-angle ``v`` (...,3) of ``axis_angle_to_matrix(v)`` given the gradient
    ``g`` (...,3,3) of its output. R = I + a K + b K^2 (a = sin t / t, b = (1 - cos t) / t^2), so
    dL/dv_i = a (g : K_i) + b ((g K^T + K^T g) : K_i) + v_i (a'/t (g : K) + b'/t (g : K^2)),
    with Taylor series for a, b, a'/t, b'/t below t = 0.05 (no cancellation in float32)."""
    x, y, z = v.unbind(-1)
    t2 = (v * v).sum(-1)
    small = t2 < 0.0025
    t = torch.sqrt(torch.where(small, torch.ones_like(t2), t2))
    sn, cs = torch.sin(t), torch.cos(t)
    a = torch.where(small, 1 - t2 / 6 + t2 * t2 / 120, sn / t)
    b = torch.where(small, 0.5 - t2 / 24 + t2 * t2 / 720, (1 - cs) / (t * t))
    da = torch.where(small, -1 / 3 + t2 / 30 - t2 * t2 / 840, (t * cs - sn) / (t * t * t))
    db = torch.where(small, -1 / 12 + t2 / 180 - t2 * t2 / 6720, (t * sn - 2 * (1 - cs)) / (t2 * t2))
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(v.shape[:-1] + (3, 3))
    kt = k.transpose(-1, -2)
    gk = (g * k).sum((-1, -2))
    gk2 = (g * (k @ k)).sum((-1, -2))
    return (a[..., None] * _vee(g) + b[..., None] * _vee(g @ kt + kt @ g)
            + v * (da * gk + db * gk2)[..., None])


class _ChainFK(torch.autograd.Function):
    """aa (B,J,3) parent-relative axis-angle, offsets (J,3) (row 0: the root's position, row j:
    rest_j - rest_parent(j)) -> joints (B,J,3), global rotations (B,J,3,3); the local rotations
    are ``axis_angle_to_matrix(aa)`` (bit-identical), with the Rodrigues backward written out too.

    R_j = R_p L_j and x_j = x_p + R_p o_j, one tree depth at a time, joints-first layout (every
    level is a contiguous block). Backward (reverse depths): with G_x and G_R the gradients
    reaching x_j and R_j, G_x_p += G_x_j, G_R_p += G_x_j o_j^T + G_R_j L_j^T, G_L_j = R_p^T G_R_j,
    and G_L_0 = G_R_0. Bit-identical forward to the per-joint loop; gradients equal up to rounding."""

    @staticmethod
    def forward(ctx, aa: torch.Tensor, offsets: torch.Tensor, plan: tuple) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        L = axis_angle_to_matrix(aa.transpose(0, 1).contiguous())  # (J,B,3,3)
        J, B = L.shape[:2]
        R = torch.empty_like(L)
        X = torch.empty(J, B, 3, dtype=L.dtype, device=L.device)
        R[0] = L[0]
        X[0] = offsets[0]
        for jsel, psel, mode in plan:
            n = len(range(J)[jsel]) if isinstance(jsel, slice) else len(jsel)
            rp = _take(R, psel, mode, n)
            off = (offsets[jsel] if isinstance(jsel, slice) else offsets[list(jsel)])[:, None, :, None]
            rj = rp @ (L[jsel] if isinstance(jsel, slice) else L[list(jsel)])
            xj = _take(X, psel, mode, n) + (rp @ off)[..., 0]
            if isinstance(jsel, slice):
                R[jsel], X[jsel] = rj, xj
            else:
                R[list(jsel)], X[list(jsel)] = rj, xj
        ctx.save_for_backward(aa, L, offsets, R)
        ctx.plan = plan
        return X.transpose(0, 1), R.transpose(0, 1)

    @staticmethod
    def backward(ctx, g_pos: torch.Tensor, g_rots: torch.Tensor):  # noqa: ANN001, ANN205
        aa, L, offsets, R = ctx.saved_tensors
        J = L.shape[0]
        gx = torch.zeros(R.shape[:-1], dtype=R.dtype, device=R.device) if g_pos is None \
            else g_pos.transpose(0, 1).contiguous()
        gr = torch.zeros_like(R) if g_rots is None else g_rots.transpose(0, 1).contiguous()
        gl = torch.empty_like(L)
        for jsel, psel, mode in reversed(ctx.plan):
            idx = jsel if isinstance(jsel, slice) else list(jsel)
            n = len(range(J)[jsel]) if isinstance(jsel, slice) else len(jsel)
            gr_j, gx_j = gr[idx], gx[idx]
            rp = _take(R, psel, mode, n)
            gl[idx] = rp.transpose(-1, -2) @ gr_j
            contrib = gx_j[..., :, None] * offsets[idx][:, None, None, :] + gr_j @ L[idx].transpose(-1, -2)
            _add_to(gr, psel, mode, contrib)
            _add_to(gx, psel, mode, gx_j)
        gl[0] = gr[0]
        return _rodrigues_backward(aa, gl.transpose(0, 1)), None, None


def body_joints(body_pose: torch.Tensor, num_joints: int = 22) -> torch.Tensor:
    """(...,63) body pose -> (...,num_joints,3) joints with zero root orientation and the pelvis at rest."""
    return forward_kinematics(body_pose, num_joints=num_joints)[0]


def kabsch(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(...,3,3) rotations R minimising sum_k |R u_k - v_k|^2 for point sets u, v (...,K,3) (no
    centring; u may be one (K,3) set for a batch of v). The numpy twin is
    ``dposer_core.kinematics_np.kabsch`` (pinned to this one by a test)."""
    h = u.transpose(-1, -2) @ v  # (...,3,3) = sum_k u_k v_k^T
    w, _, vt = torch.linalg.svd(h)
    d = torch.sign(torch.det(vt.transpose(-1, -2) @ w.transpose(-1, -2)))
    diag = torch.ones(h.shape[:-2] + (3,), dtype=h.dtype, device=h.device)
    diag[..., 2] = d
    return vt.transpose(-1, -2) @ torch.diag_embed(diag) @ w.transpose(-1, -2)
