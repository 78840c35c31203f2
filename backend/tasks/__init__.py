"""The animator tasks as a batched, pure API: numpy in / numpy out, torch inside (one module per task).

    sample(prior, n, sampler="ddim"|"em"|"ode", steps=None, seed=None) -> (n,63)          sample.py
    variations(prior, pose (63,), strength, n, seed=None) -> (n,63)                        sample.py
    encode(prior, poses (N,63)) -> (N,63) ; decode(prior, latents (N,63)) -> (N,63)       latent.py
    inbetween(prior, keys (M,63), n_frames, ease=..., root_orient=None (M,3), trans=None (M,3))
        -> dict(poses ((M-1)(n_frames+1)+1, 63), root_orient (same, 3) | None, trans (same, 3) | None)
                                                                                           inbetween.py
    complete(prior, pose (N,63)|(63,), keep (21,) bool | joint names | indices, n_hypotheses=10, steps=200,
             seed=None, root_orient=None) -> dict(poses (N,H,63) best first, scores (N,H))  complete.py
    denoise(prior, joints (T,22,3) | poses (T,63), root_orient=None, noise_mm=None, trans=None)
        -> dict(poses (T,63), joints (T,22,3), noise_mm, root_orient (T,3), trans (T,3))   denoise.py
    score(prior, poses (N,63)) -> dict(pose (N,), joints (N,21))   (lower = more plausible)  score.py

Every task takes ``prior: PosePrior`` first and the keywords ``seed`` (int, or None = random; the
same seed gives the same result on the same device), ``progress`` (``progress(fraction in [0,1],
message)``) and ``should_cancel`` (polled before every step; when it returns True the task raises
``TaskCancelled`` within one step). Wrong shapes / NaN / too large rotations / unknown joints raise
``BadInput`` (a ``ValueError`` with a one-line message); the numeric bounds of request fields (n,
steps, n_hypotheses, n_frames, strength, noise_mm) are the protocol's (``dposer_core.protocol``), not
re-checked here. Poses are SMPL body poses: joints 1..21, parent-relative axis-angle, float32, SMPL
native frame. The root orientation is never modelled by the prior; tasks carry it along (in-between
slerps it, denoise fits it, the others leave it unchanged).

Speed: all hypotheses / frames of a call go through the network as one batch; everything without a
gradient runs under ``torch.inference_mode``; the DPoser regulariser uses its closed-form gradient
(``backend.engine.regularizer.dposer_grad``, paper Eq. 10); the network's time path is computed once
per time and cached (``PosePrior.fast_eps``). Shared pieces (monitor, argument checks, CPU thread
policy) are in ``_common.py``.
"""

from __future__ import annotations

from dposer_core.constants import COMPLETE_METHOD, COMPLETE_METHODS, EASES, MASK_NAMES
from dposer_core.keep import keep_from_mask, parse_keep
from dposer_core.protocol.errors import BadInput, TaskCancelled

from ._common import SMALL_BATCH_ROWS, canonical_axis_angle, cpu_threads
from .complete import INPAINT_REFINE, INPAINT_STEPS, complete
from .denoise import DENOISE_ACC_WEIGHTS, DENOISE_SCHEDULES, denoise, denoise_windows, estimate_noise_mm
from .inbetween import INBETWEEN_REFINE, INBETWEEN_T_LATENT, inbetween
from .latent import ODE_DEFAULTS, decode, encode
from .sample import DDIM_ETA, SAMPLER_DEFAULT_STEPS, sample, variations
from .score import SCORE_DRAWS, SCORE_SEED, SCORE_TIMES, score

__all__ = [
    # tasks
    "sample", "variations", "encode", "decode", "inbetween", "complete", "denoise", "denoise_windows", "score",
    # errors (dposer_core.protocol.errors) and the keep mask (dposer_core.keep)
    "BadInput", "TaskCancelled", "keep_from_mask", "parse_keep",
    # helpers other areas use
    "estimate_noise_mm", "canonical_axis_angle", "cpu_threads",
    # settings
    "SAMPLER_DEFAULT_STEPS", "DDIM_ETA", "ODE_DEFAULTS", "INBETWEEN_T_LATENT", "INBETWEEN_REFINE",
    "INPAINT_STEPS", "INPAINT_REFINE", "DENOISE_SCHEDULES", "DENOISE_ACC_WEIGHTS",
    "SCORE_TIMES", "SCORE_DRAWS", "SCORE_SEED", "SMALL_BATCH_ROWS",
    # vocabulary (dposer_core.constants)
    "EASES", "COMPLETE_METHODS", "COMPLETE_METHOD", "MASK_NAMES",
]
