"""Pose from a photo through its three doors: ``python -m backend fit-image``, the server's ``fit_image``
request and the bpy-free client. Bad paths and non-image files get one-line ``bad_input`` errors before
any work; without mediapipe the answer is ``feature_unavailable`` with the install hint, and the hello
says so (``features.fit_image``); with mediapipe the round trips return ranked hypotheses."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
PHOTOS = REPO / "tests" / "data" / "photos"
WEIGHTS = REPO / "weights" / "dposer_cmu_bandai.pt"
sys.path.insert(0, str(REPO / "tests" / "backend" / "server"))
from server_helpers import RawServer  # noqa: E402

HAVE_MP = importlib.util.find_spec("mediapipe") is not None and importlib.util.find_spec("cv2") is not None
needs_mp = pytest.mark.skipif(not HAVE_MP, reason="mediapipe not installed (optional: requirements/photo.txt)")
without_mp = pytest.mark.skipif(HAVE_MP, reason="mediapipe is installed here; the missing-dependency path is "
                                                "tested in-process by test_handler_without_mediapipe")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if WEIGHTS.is_file():
        return WEIGHTS
    from tests.backend.evaluation.tiny_checkpoint import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("w") / "tiny.pt")


@pytest.fixture(scope="module")
def not_an_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    f = tmp_path_factory.mktemp("files") / "notes.png"
    f.write_text("just text named like a picture\n")
    return f


# ------------------------------------------------------------------------------------------ CLI

def _cli(weights: Path, *args: str) -> int:
    from backend.cli import main

    return main(["fit-image", *args, "--weights", str(weights)])


def test_cli_refuses_non_images(weights: Path, not_an_image: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture) -> None:
    assert _cli(weights, "--input", str(not_an_image), "--output", str(tmp_path / "o.npz")) == 2
    err = capsys.readouterr().err
    assert "not an image file" in err and err.count("\n") == 1 and "Traceback" not in err
    assert _cli(weights, "--input", str(tmp_path / "missing.jpg"), "--output", str(tmp_path / "o.npz")) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


@needs_mp
def test_cli_round_trip(weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit.npz"
    assert _cli(weights, "--input", str(PHOTOS / "mannequin_three_quarter.jpg"), "--hypotheses", "3",
                "--output", str(out), "--seed", "0") == 0
    d = np.load(out)
    assert d["poses"].shape == (3, 63) and d["root_orient"].shape == (3, 3) and d["scores"].shape == (3,)
    assert np.all(np.diff(d["scores"]) >= 0)
    assert d["keypoints"].shape == (21, 3) and list(d["keypoint_names"][:2]) == ["left_shoulder", "right_shoulder"]
    assert np.isfinite(d["poses"]).all() and tuple(d["image_size"]) == (480, 640)


@without_mp
def test_cli_without_mediapipe(weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _cli(weights, "--input", str(PHOTOS / "mannequin_front.png"), "--output", str(tmp_path / "o.npz")) == 2
    err = capsys.readouterr().err
    assert "install with:" in err and "requirements/photo.txt" in err


# ------------------------------------------------------------------------------------------ server

@pytest.fixture(scope="module")
def server(weights: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    s = RawServer("--weights", str(weights), "--device", "cpu", log=tmp_path_factory.mktemp("log") / "server.log")
    yield s
    s.close()


def test_hello_says_whether_photo_fitting_is_available(server) -> None:  # noqa: ANN001
    feat = server.hello["features"]["fit_image"]
    assert feat["available"] is HAVE_MP
    assert (feat["message"] == "") is HAVE_MP
    assert "fit_image" in server.hello["requests"]


def test_server_refuses_bad_paths_before_queueing(server, not_an_image: Path, tmp_path: Path) -> None:  # noqa: ANN001
    r = server.request({"id": 1, "type": "fit_image", "path": str(not_an_image)})
    assert r["type"] == "error" and r["code"] == "bad_input" and "not an image file" in r["message"], r
    r = server.request({"id": 2, "type": "fit_image", "path": str(tmp_path / "gone.webp")})
    assert r["code"] == "bad_input" and "image file" in r["message"], r
    r = server.request({"id": 3, "type": "fit_image", "path": str(tmp_path)})
    assert r["code"] == "bad_input", r
    r = server.request({"id": 4, "type": "fit_image", "path": str(PHOTOS / "mannequin_front.png"), "n_hypotheses": 0})
    assert r["code"] == "bad_input" and "n_hypotheses" in r["message"], r
    r = server.request({"id": 5, "type": "fit_image", "path": str(PHOTOS / "mannequin_front.png"), "colour": 1})
    assert r["code"] == "bad_request", r


@needs_mp
def test_server_fit_image(server) -> None:  # noqa: ANN001
    from dposer_core import protocol as S

    server.send({"id": 10, "type": "fit_image", "path": str(PHOTOS / "mannequin_front.png"), "n_hypotheses": 4,
                 "seed": 0})
    msgs = server.replies(10, timeout=180)
    final = msgs[-1]
    assert final["type"] == "result", final
    res = S.parse_result("fit_image", final["data"])
    assert res.poses.shape == (4, 63) and res.scores.shape == (4,) and np.all(np.diff(res.scores) >= 0)
    assert res.keypoints.shape == (21, 3) and len(res.keypoint_names) == 21 and len(res.init) == 4
    assert res.image_size == [480, 640] and res.focal_px > 0
    assert any(m["type"] == "progress" for m in msgs[:-1])
    # the top hypothesis faces the camera (the render's view is frontal): world root near the identity
    assert np.linalg.norm(res.root_orient[0]) < np.pi / 3, res.root_orient[0]


@without_mp
def test_server_without_mediapipe(server) -> None:  # noqa: ANN001
    r = server.request({"id": 20, "type": "fit_image", "path": str(PHOTOS / "mannequin_front.png")})
    assert r["code"] == "feature_unavailable" and "install with:" in r["message"], r


def test_handler_without_mediapipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, whatever is installed: the handler answers feature_unavailable with the hint."""
    from backend.photo import api
    from backend.server.handlers import h_fit_image
    from dposer_core import protocol as S

    monkeypatch.setattr(api, "photo_available", lambda: (False, "pose from a photo needs mediapipe; install with: X"))
    req = S.make_request("fit_image", 1, path=str(PHOTOS / "mannequin_front.png"))
    with pytest.raises(S.ProtocolError) as e:
        h_fit_image(SimpleNamespace(request=req, server=None))
    assert e.value.code == S.FEATURE_UNAVAILABLE and "install with" in e.value.message


# ------------------------------------------------------------------------------------------ client

def test_client_round_trip(weights: Path, not_an_image: Path, tmp_path: Path) -> None:
    from dposer_blender import client as pkg

    c = pkg.BackendClient(python=sys.executable, weights=str(weights), device="cpu",
                          log_path=str(tmp_path / "client.log"))
    try:
        hello = c.start()
        assert hello["features"]["fit_image"]["available"] is HAVE_MP
        with pytest.raises(pkg.BackendError) as e:
            c.call("fit_image", path=str(not_an_image), timeout=60)
        assert e.value.code == "bad_input"
        if HAVE_MP:
            res = c.call("fit_image", path=str(PHOTOS / "mannequin_three_quarter.jpg"), n_hypotheses=2, timeout=180)
            assert res.poses.shape == (2, 63) and res.root_orient.shape == (2, 3)
    finally:
        c.close()
