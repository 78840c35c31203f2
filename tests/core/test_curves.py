"""dposer_core.curves.ease: the in-between timing curves."""

from __future__ import annotations

import numpy as np
import pytest

from dposer_core.constants import EASES
from dposer_core.curves import ease

U = np.linspace(0.0, 1.0, 101)


def test_the_four_names() -> None:
    assert set(EASES) == {"linear", "ease_in", "ease_out", "ease_in_out"}
    np.testing.assert_allclose(ease(U, "linear"), U)
    np.testing.assert_allclose(ease(U, "ease_in"), U**2)
    np.testing.assert_allclose(ease(U, "ease_out"), 1 - (1 - U) ** 2)
    np.testing.assert_allclose(ease(U, "ease_in_out"), 3 * U**2 - 2 * U**3)


@pytest.mark.parametrize("name", EASES)
def test_endpoints_exact_and_monotone(name: str) -> None:
    y = ease(U, name)
    assert y[0] == 0.0 and y[-1] == 1.0
    assert np.all(np.diff(y) >= 0) and y.dtype == np.float64
    assert float(ease(0.5, name)) == {"linear": 0.5, "ease_in": 0.25, "ease_out": 0.75, "ease_in_out": 0.5}[name]


def test_bad_name() -> None:
    with pytest.raises(ValueError, match="ease must be one of"):
        ease(U, "bounce")
