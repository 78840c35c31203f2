"""Timing curves of an in-between (the names are ``constants.EASES``)."""

from __future__ import annotations

import numpy as np

from .constants import EASES


def ease(u: np.ndarray, name: str) -> np.ndarray:
    """Map linear time ``u`` in [0, 1] through the ease curve ``name`` (0 -> 0, 1 -> 1).

    linear: u; ease_in_out: smoothstep 3u^2 - 2u^3; ease_in: u^2; ease_out: 1 - (1-u)^2.
    """
    if name not in EASES:
        raise ValueError(f"ease must be one of {', '.join(EASES)}, got {name!r}")
    u = np.asarray(u, dtype=np.float64)
    if name == "linear":
        return u
    if name == "ease_in_out":
        return u * u * (3.0 - 2.0 * u)
    if name == "ease_in":
        return u * u
    return 1.0 - (1.0 - u) ** 2
