"""``python -m backend`` CLI contract on a tiny random-weight checkpoint: outputs, shapes and the
one-line bad-input errors (exit status != 0, no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend import DEFAULT_WEIGHTS
from backend.cli import main
from tests.backend.evaluation.tiny_checkpoint import make_tiny_checkpoint

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("cli")
    w = make_tiny_checkpoint(d / "tiny.pt")
    poses = (np.random.default_rng(0).standard_normal((3, 63)) * 0.2).astype(np.float32)
    np.savez(d / "poses.npz", poses=poses, root_orient=np.zeros((3, 3), np.float32))
    return {"dir": d, "w": str(w), "poses": poses}


def _run(env: dict, *args: str) -> int:
    return main([*args, "--weights", env["w"]])


def test_default_weights_path_is_in_repo() -> None:
    assert DEFAULT_WEIGHTS == REPO / "weights" / "dposer_cmu_bandai.pt"


def test_sample(env: dict) -> None:
    out = env["dir"] / "s.npz"
    assert _run(env, "sample", "--n", "4", "--steps", "3", "--seed", "1", "--output", str(out)) == 0
    a = np.load(out)["poses"]
    assert a.shape == (4, 63) and a.dtype == np.float32
    out2 = env["dir"] / "s2.npz"
    assert _run(env, "sample", "--n", "4", "--steps", "3", "--seed", "1", "--output", str(out2)) == 0
    assert np.array_equal(a, np.load(out2)["poses"])


def test_complete_mask_and_keep(env: dict) -> None:
    out = env["dir"] / "c.npz"
    assert _run(env, "complete", "--input", str(env["dir"] / "poses.npz"), "--mask", "left_leg",
                "--hypotheses", "3", "--steps", "4", "--seed", "0", "--output", str(out)) == 0
    z = np.load(out)
    assert z["poses"].shape == (3, 3, 63) and z["scores"].shape == (3, 3)
    keep = np.repeat(z["keep"], 3)
    assert np.array_equal(z["poses"][:, 0, keep], env["poses"][:, keep])
    assert _run(env, "complete", "--input", str(env["dir"] / "poses.npz"), "--keep", "left_hip,spine1",
                "--hypotheses", "2", "--steps", "2", "--output", str(out)) == 0


def test_inbetween_denoise_encode_decode_score(env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from backend import tasks
    monkeypatch.setitem(tasks.DENOISE_SCHEDULES, 100, (5, 2, 0.15, 0.05))  # short schedule for speed
    d = env["dir"]
    assert _run(env, "inbetween", "--input", str(d / "poses.npz"), "--frames", "2", "--output", str(d / "i.npz")) == 0
    i = np.load(d / "i.npz")
    assert i["poses"].shape == (7, 63) and i["root_orient"].shape == (7, 3)
    assert np.array_equal(i["poses"][0], env["poses"][0]) and np.array_equal(i["poses"][-1], env["poses"][-1])
    np.savez(d / "j.npz", joints=np.random.default_rng(1).standard_normal((4, 22, 3)).astype(np.float32) * 0.01)
    assert _run(env, "denoise", "--input", str(d / "j.npz"), "--noise-mm", "100", "--output", str(d / "d.npz")) == 0
    z = np.load(d / "d.npz")
    assert z["poses"].shape == (4, 63) and z["joints"].shape == (4, 22, 3)
    assert _run(env, "encode", "--input", str(d / "poses.npz"), "--output", str(d / "e.npz")) == 0
    assert np.load(d / "e.npz")["latents"].shape == (3, 63)
    assert _run(env, "decode", "--input", str(d / "e.npz"), "--output", str(d / "p.npz")) == 0
    assert np.load(d / "p.npz")["poses"].shape == (3, 63)
    assert _run(env, "score", "--input", str(d / "poses.npz"), "--output", str(d / "sc.npz")) == 0
    assert np.load(d / "sc.npz")["joints"].shape == (3, 21)


def _bad_files(d: Path) -> dict[str, Path]:
    (d / "garbage.npz").write_bytes(b"not a zip file at all")
    np.savez(d / "nan.npz", poses=np.full((2, 63), np.nan, np.float32))
    np.savez(d / "shape.npz", poses=np.zeros((2, 60), np.float32))
    np.savez(d / "empty.npz", other=np.zeros(3))
    (d / "x.txt").write_text("hi")
    return {n: d / f for n, f in [("garbage", "garbage.npz"), ("nan", "nan.npz"), ("shape", "shape.npz"),
                                   ("empty", "empty.npz"), ("txt", "x.txt"), ("missing", "missing.npz")]}


@pytest.mark.parametrize("case", ["garbage", "nan", "shape", "empty", "txt", "missing", "joint", "mask",
                                  "noargs", "weights", "frames"])
def test_bad_input_one_line(env: dict, case: str, capsys: pytest.CaptureFixture) -> None:
    files = _bad_files(env["dir"])
    good = str(env["dir"] / "poses.npz")
    args = {
        "joint": ["complete", "--input", good, "--keep", "left_hip,tail"],
        "mask": ["complete", "--input", good, "--mask", "tentacles"],
        "noargs": ["complete", "--input", good],
        "frames": ["inbetween", "--input", good, "--frames", "-3"],
    }.get(case, ["score", "--input", str(files.get(case, good))])
    if case == "weights":
        rc = main(["sample", "--n", "1", "--weights", str(env["dir"] / "nope.pt")])
    else:
        rc = _run(env, *args, "--output", str(env["dir"] / "bad_out.npz")) if case != "noargs" else None
        if case == "noargs":
            with pytest.raises(SystemExit) as e:
                _run(env, *args)
            rc = e.value.code
    err = capsys.readouterr().err.strip()
    assert rc not in (0, None)
    assert len(err.splitlines()) == 1 and "Traceback" not in err and err.startswith("error:")


def test_subprocess_no_traceback(env: dict) -> None:
    r = subprocess.run([sys.executable, "-m", "backend", "score", "--input", str(env["dir"] / "missing.npz"),
                        "--weights", env["w"]], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
