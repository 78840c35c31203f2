"""``python -m backend.eval --quick`` end to end on synthetic clips and a tiny random checkpoint
(structure of the JSON only; random weights say nothing about quality)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backend import eval as ev
from backend.evaluation.completion import COMPLETION_MASKS
from tests.backend.evaluation.tiny_checkpoint import make_tiny_checkpoint


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("eval")
    w = make_tiny_checkpoint(d / "tiny.pt")
    rng = np.random.default_rng(0)
    clips = d / "clips"
    clips.mkdir()
    for i in range(6):
        T = 70
        base = rng.standard_normal(63) * 0.2
        poses = base + 0.1 * np.sin(np.arange(T)[:, None] / 10.0 + rng.standard_normal(63))
        np.savez(clips / f"clip_{i}.npz", poses=poses.astype(np.float32))
    return {"w": str(w), "clips": str(clips), "dir": d}


def test_eval_quick(setup: dict, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # keep the test independent of any prepared dataset on this machine
    import backend.data.dataset as dsmod

    def _no_dataset(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise FileNotFoundError("none")
    monkeypatch.setattr(dsmod, "load_dataset", _no_dataset)
    from backend import tasks
    monkeypatch.setitem(tasks.DENOISE_SCHEDULES, 20, (4, 2, 0.2, 0.05))
    monkeypatch.setitem(tasks.DENOISE_SCHEDULES, 40, (4, 2, 0.25, 0.05))
    monkeypatch.setitem(tasks.DENOISE_SCHEDULES, 100, (4, 2, 0.15, 0.05))
    monkeypatch.setitem(tasks.ODE_DEFAULTS, "steps", 4)
    out = setup["dir"] / "res.json"
    rc = ev.main(["--data", setup["clips"], "--json", str(out), "--weights", setup["w"], "--quick",
                  "--n-em", "2", "--n-samples", "16"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["seed"] == 0 and "settings" in res
    for mask in COMPLETION_MASKS:
        assert {"dposer", "mean_pose_fill", "nn_retrieval"} <= set(res["completion"][mask])
    for lvl in ("20mm", "40mm", "100mm"):
        assert {"input", "dposer", "dposer_no_prior", "gaussian_filter", "butterworth_filter"} <= set(res["denoising"][lvl])
    assert "roundtrip" in res["interpolation"]
    assert {"dposer_em1000", "dposer_ddim10", "gaussian", "real_heldout"} <= set(res["generation"])
    assert "Completion" in capsys.readouterr().out


def test_eval_bad_data(setup: dict, capsys: pytest.CaptureFixture) -> None:
    rc = ev.main(["--data", str(setup["dir"] / "nothing_here"), "--json", str(setup["dir"] / "x.json"),
                  "--weights", setup["w"], "--quick"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_eval_mpvpe_with_smpl_model(setup: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an SMPL model file (a synthetic one here) completion and denoising report MPVPE too."""
    from tests.backend.engine.engine_helpers import synthetic_smpl_arrays
    import backend.data.dataset as dsmod
    from backend import tasks

    def _no_dataset(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise FileNotFoundError("none")
    monkeypatch.setattr(dsmod, "load_dataset", _no_dataset)
    for k in (20, 40, 100):
        monkeypatch.setitem(tasks.DENOISE_SCHEDULES, k, (2, 1, 0.2, 0.05))
    model = setup["dir"] / "smpl.npz"
    np.savez(model, **synthetic_smpl_arrays())
    out = setup["dir"] / "res_v.json"
    rc = ev.main(["--data", setup["clips"], "--json", str(out), "--weights", setup["w"], "--quick",
                  "--tasks", "completion,denoising", "--smpl-model", str(model)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert "mpvpe_best_of_h_mm" in res["completion"]["left_leg"]["dposer"]
    assert "mpvpe_mm" in res["denoising"]["40mm"]["dposer"]
