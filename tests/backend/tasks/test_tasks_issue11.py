"""Issue 11 task options: completion by conditional sampling (inpainting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend import tasks
from backend.engine.prior import PosePrior
from tests.backend.evaluation.tiny_checkpoint import make_tiny_checkpoint


@pytest.fixture(scope="module")
def prior(tmp_path_factory: pytest.TempPathFactory) -> PosePrior:
    return PosePrior.load(make_tiny_checkpoint(tmp_path_factory.mktemp("w") / "tiny.pt"))


def test_inpaint_completion_keeps_observed_and_varies_hidden(prior: PosePrior) -> None:
    pose = (np.random.default_rng(0).standard_normal((3, 63)) * 0.2).astype(np.float32)
    keep = tasks.keep_from_mask("legs")
    r = tasks.complete(prior, pose, keep, n_hypotheses=4, seed=0, method="inpaint")
    assert r["poses"].shape == (3, 4, 63) and np.all(np.diff(r["scores"], axis=1) >= 0)
    dims = np.repeat(keep, 3)
    np.testing.assert_array_equal(r["poses"][:, :, dims], np.repeat(pose[:, None, dims], 4, 1))
    hidden = r["poses"][:, :, ~dims]
    assert np.abs(hidden[:, 0] - hidden[:, 1]).max() > 1e-3  # the hypotheses differ
    r2 = tasks.complete(prior, pose, keep, n_hypotheses=4, seed=0, method="inpaint")
    np.testing.assert_array_equal(r2["poses"], r["poses"])  # seeded
    with pytest.raises(tasks.BadInput, match="method"):
        tasks.complete(prior, pose, keep, method="nope")
