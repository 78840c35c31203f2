"""Issue 12 on the command line: out-of-range input, size bounds, capped messages, the CPU allocator's
out-of-memory error and non-finite results, each one clear line (exit status != 0, no traceback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend import tasks
from backend.cli import main
from tests.backend.evaluation.tiny_checkpoint import make_tiny_checkpoint


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_tiny_checkpoint(tmp_path_factory.mktemp("clih") / "tiny.pt"))


def _err(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("arrays,words", [
    ({"poses": np.full((2, 63), 1e30, np.float32)}, "4 pi"),
    ({"poses": np.full((2, 63), 90.0, np.float32)}, "degrees"),
    ({"poses": np.zeros((2, 63), np.float32), "root_orient": np.full((2, 3), 1e30, np.float32)}, "4 pi"),
    ({"joints": np.full((3, 22, 3), 1e30, np.float32)}, "metres"),
    ({"poses": np.zeros((2, 63), np.float32), "trans": np.full((2, 3), 5e4, np.float32)}, "metres"),
])
def test_out_of_range_input_files(arrays: dict, words: str, w: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    np.savez(tmp_path / "in.npz", **arrays)
    task = "denoise" if "joints" in arrays else "score"
    assert main([task, "--input", str(tmp_path / "in.npz"), "--weights", w, "--output", str(tmp_path / "o.npz")]) == 2
    assert words in _err(capsys)
    assert not (tmp_path / "o.npz").exists()


def test_task_api_rejects_huge_rotations(w: str) -> None:
    from backend.engine.prior import PosePrior

    prior = PosePrior.load(w)
    with pytest.raises(tasks.BadInput, match="4 pi"):
        tasks.score(prior, np.full((2, 63), 1e30, np.float32))
    with pytest.raises(tasks.BadInput, match="4 pi"):
        tasks.complete(prior, np.zeros(63, np.float32), ["head"], root_orient=np.full(3, 100.0, np.float32))


@pytest.mark.parametrize("args,words", [
    (["sample", "--n", "1000000"], "--n must be between 1 and "),
    (["sample", "--n", "2", "--steps", "999999"], "--steps"),
])
def test_size_bounds(args: list[str], words: str, w: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([*args, "--weights", w, "--output", str(tmp_path / "o.npz")]) == 2
    assert words in _err(capsys)


def test_inbetween_and_complete_totals_bounded(w: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    np.savez(tmp_path / "k.npz", poses=np.zeros((5, 63), np.float32))
    assert main(["inbetween", "--input", str(tmp_path / "k.npz"), "--frames", "99999", "--weights", w,
                 "--output", str(tmp_path / "o.npz")]) == 2
    assert "200,000" in _err(capsys)
    np.savez(tmp_path / "p.npz", poses=np.zeros((100, 63), np.float32))
    assert main(["complete", "--input", str(tmp_path / "p.npz"), "--mask", "legs", "--hypotheses", "1000",
                 "--weights", w, "--output", str(tmp_path / "o.npz")]) == 2
    assert "hypotheses" in _err(capsys)


def test_long_joint_name_is_capped(w: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    np.savez(tmp_path / "p.npz", poses=np.zeros((1, 63), np.float32))
    assert main(["complete", "--input", str(tmp_path / "p.npz"), "--keep", "x" * 100_000, "--weights", w,
                 "--output", str(tmp_path / "o.npz")]) == 2
    err = _err(capsys)
    assert len(err) < 1100 and "unknown joint name" in err


def test_cpu_allocator_error_is_out_of_memory(w: str, tmp_path: Path, capsys: pytest.CaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 40000000000 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(tasks, "score", boom)
    np.savez(tmp_path / "p.npz", poses=np.zeros((1, 63), np.float32))
    assert main(["score", "--input", str(tmp_path / "p.npz"), "--weights", w, "--output", str(tmp_path / "o.npz")]) == 1
    err = _err(capsys)
    assert "ran out of memory" in err and "fewer" in err and "DefaultCPUAllocator" not in err


def test_non_finite_result_is_refused(w: str, tmp_path: Path, capsys: pytest.CaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "score", lambda prior, p, **k: {"pose": np.full(len(p), np.nan, np.float32),
                                                                "joints": np.zeros((len(p), 21), np.float32)})
    np.savez(tmp_path / "p.npz", poses=np.zeros((2, 63), np.float32))
    assert main(["score", "--input", str(tmp_path / "p.npz"), "--weights", w, "--output", str(tmp_path / "o.npz")]) == 2
    assert "NaN" in _err(capsys) and not (tmp_path / "o.npz").exists()


def test_weights_errors_give_our_advice(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_text("root:x:0:0:root:/root:/bin/bash\n")
    np.savez(tmp_path / "p.npz", poses=np.zeros((1, 63), np.float32))
    assert main(["score", "--input", str(tmp_path / "p.npz"), "--weights", str(bad), "--output",
                 str(tmp_path / "o.npz")]) == 2
    err = _err(capsys)
    assert "--weights" in err and "--checkpoint" not in err and "weights_only" not in err and "root:" not in err


@pytest.mark.parametrize("task,flag,rtype,field", [
    ("sample", "--n", "sample", "n"), ("sample", "--steps", "sample", "steps"),
    ("inbetween", "--frames", "inbetween", "n_frames"), ("complete", "--hypotheses", "complete", "n_hypotheses"),
    ("fit-image", "--hypotheses", "fit_image", "n_hypotheses"), ("variations", "--n", "variations", "n"),
])
def test_bounds_are_the_protocols(task: str, flag: str, rtype: str, field: str, w: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    """The CLI checks its options by building the server's request: the same bounds, named by the option."""
    from dposer_core import protocol as S

    np.savez(tmp_path / "k.npz", poses=np.zeros((2, 63), np.float32))
    inputs = {"sample": [], "fit-image": ["--input", str(tmp_path / "photo.png")],
              "complete": ["--input", str(tmp_path / "k.npz"), "--mask", "legs"]}.get(task,
                                                                                   ["--input", str(tmp_path / "k.npz")])
    extra = ["--frames", "1"] if task == "inbetween" and flag != "--frames" else []
    _, hi = S.bounds(rtype, field)
    assert main([task, *inputs, *extra, flag, str(hi + 1), "--weights", w, "--output", str(tmp_path / "o.npz")]) == 2
    err = _err(capsys)
    assert err.startswith(f"error: {flag} must be between") and str(hi) in err.replace(",", "")
