"""mediapipe landmarks -> the SMPL keypoint set; left/right mirroring; the optional-dependency hint."""

from __future__ import annotations

import numpy as np
import pytest

from backend.photo import keypoints as K


def test_keypoint_set_and_mirror_map() -> None:
    assert K.NUM_KEYPOINTS == len(K.KEYPOINT_NAMES) == 21
    assert len(set(K.KEYPOINT_NAMES)) == 21
    assert np.array_equal(K.MIRROR_INDEX[K.MIRROR_INDEX], np.arange(21))  # an involution
    for i, name in enumerate(K.KEYPOINT_NAMES):
        other = K.KEYPOINT_NAMES[K.MIRROR_INDEX[i]]
        if name.startswith("left_"):
            assert other == "right_" + name[5:]
            # mirrored keypoints sit on mirrored joints with x-mirrored offsets
            a, b = K.KEYPOINTS[i], K.KEYPOINTS[K.MIRROR_INDEX[i]]
            assert a.offset[0] == -b.offset[0] and a.offset[1:] == b.offset[1:]
        elif not name.startswith("right_"):
            assert other == name
    assert K.KEYPOINTS[K.KEYPOINT_NAMES.index("left_wrist")].mp == 15
    assert K.KEYPOINTS[K.KEYPOINT_NAMES.index("right_knee")].joint == 5


def test_from_mediapipe_maps_pixels_and_visibility() -> None:
    lm = np.zeros((33, 4))
    lm[:, 0] = np.linspace(0.1, 0.9, 33)
    lm[:, 1] = np.linspace(0.2, 0.8, 33)
    lm[:, 3] = 0.9
    lm[16, 0] = 1.3  # right wrist outside the image: kept, but confidence halved
    world = np.arange(99, dtype=float).reshape(33, 3)
    kp = K.keypoints_from_mediapipe(lm, (200, 100), world)
    i = K.KEYPOINT_NAMES.index("left_shoulder")
    assert np.allclose(kp.xy[i], [lm[11, 0] * 200, lm[11, 1] * 100])
    assert np.allclose(kp.world[i], world[11])
    j = K.KEYPOINT_NAMES.index("right_wrist")
    assert kp.conf[j] == pytest.approx(0.45) and kp.conf[i] == pytest.approx(0.9)
    m = kp.mirrored_labels()
    assert np.allclose(m.xy[i], kp.xy[K.KEYPOINT_NAMES.index("right_shoulder")])
    assert kp.as_array().shape == (21, 3)
    with pytest.raises(ValueError):
        K.keypoints_from_mediapipe(np.zeros((17, 4)), (10, 10))


def test_missing_mediapipe_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mediapipe" else real(name, *a))
    ok, msg = K.photo_available()
    assert not ok
    assert "mediapipe" in msg and "install with:" in msg and "requirements/photo.txt" in msg and "\n" not in msg
    with pytest.raises(K.PhotoUnavailable, match="install with"):
        K.detect_keypoints(np.zeros((64, 64, 3), np.uint8))


def test_mediapipe_on_the_mannequin_render() -> None:
    pytest.importorskip("mediapipe", reason="mediapipe is optional (requirements/photo.txt)")
    from pathlib import Path

    from backend.photo.image_io import read_image_rgb

    d = Path(__file__).resolve().parents[2] / "data" / "photos"
    truth = np.load(d / "mannequin_front_truth.npz")
    kp = K.detect_keypoints(read_image_rgb(d / "mannequin_front.png"))
    body = [K.KEYPOINT_NAMES.index(n) for n in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                                                 "left_wrist", "right_wrist", "left_knee", "right_knee")]
    err = np.linalg.norm(kp.xy[body] - truth["keypoints_2d"][body], axis=1)
    # the subject's left is on the image right in this front view: labels must not be swapped
    assert np.median(err) < 15.0, err
    assert kp.world is not None and kp.conf[body].min() > 0.5
    with pytest.raises(ValueError, match="no person"):
        K.detect_keypoints(np.full((256, 256, 3), 200, np.uint8))
