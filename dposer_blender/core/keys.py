"""Keys of an animation as numbers: the keys around a frame, and quaternion continuity across keys."""

from __future__ import annotations

import numpy as np

_EPS = 1e-6


def keys_around(keys: np.ndarray, frame: float) -> tuple[int | None, int | None]:
    """(previous key <= ``frame``, next key > ``frame``) of the sorted unique key frames ``keys`` (None where
    there is none). On the last key (no next one) the range is the previous key .. the last key."""
    keys = np.asarray(keys, dtype=np.float64)
    prev = keys[keys <= frame + _EPS]
    nxt = keys[keys > frame + _EPS]
    a = int(round(prev[-1])) if len(prev) else None
    b = int(round(nxt[0])) if len(nxt) else None
    if a is not None and b is None and len(prev) >= 2 and abs(prev[-1] - frame) < _EPS:
        a, b = int(round(prev[-2])), a  # on the last key: fill up to it
    return a, b


def hemisphere_align(q: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Flip quaternions (T,B,4) so consecutive ones (starting from ``ref`` (B,4)) have a positive dot
    (q and -q are the same rotation; keys on one hemisphere interpolate the short way)."""
    out = np.array(q, dtype=np.float64, copy=True)
    prev = np.asarray(ref, dtype=np.float64)
    for t in range(out.shape[0]):
        s = np.where(np.sum(out[t] * prev, axis=-1, keepdims=True) < 0, -1.0, 1.0)
        out[t] *= s
        prev = out[t]
    return out


__all__ = ["keys_around", "hemisphere_align"]
