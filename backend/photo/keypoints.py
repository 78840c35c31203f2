"""2D keypoints for photo fitting: mediapipe's 33 BlazePose landmarks -> the SMPL keypoint set.

The keypoint set (``KEYPOINTS``) is what the fit compares against: 12 SMPL joints (shoulders, elbows,
wrists, hips, knees, ankles) plus 9 *virtual points* rigidly attached to an SMPL joint's frame (nose,
eyes and ears on the head; heels on the ankles; toe tips on the feet). The virtual points carry what
the joints cannot: which way the head faces (front/back) and where the feet point. Offsets are in the
SMPL rest frame (metres), chosen to match the procedural mannequin's face and feet.

mediapipe is optional (``requirements/photo.txt``); everything here but :func:`detect_keypoints` works
without it. "left"/"right" are the subject's, in mediapipe as in SMPL.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
PHOTO_REQUIREMENTS = "requirements/photo.txt"
MEDIAPIPE_MODEL_COMPLEXITY = 1  # the only one whose model ships inside the wheel (0 and 2 download)
NUM_MP_LANDMARKS = 33


class PhotoUnavailable(RuntimeError):
    """mediapipe (or OpenCV) is missing or broken in this Python; ``str(err)`` is the one-line
    install hint."""


@dataclass(frozen=True)
class KeypointDef:
    """One fitted keypoint: SMPL FK joint ``joint`` (0..21) plus ``offset`` (rest frame, metres) turned
    by that joint's global rotation; ``mp`` the mediapipe landmark index; ``weight`` its data weight;
    ``mirror`` the name of its left/right counterpart (itself on the midline)."""

    name: str
    joint: int
    mp: int
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    weight: float = 1.0
    mirror: str = ""


def _pair(name: str, joint_l: int, joint_r: int, mp_l: int, mp_r: int, offset_l: tuple[float, float, float] = (0, 0, 0),
          weight: float = 1.0) -> list[KeypointDef]:
    ox, oy, oz = offset_l
    return [KeypointDef(f"left_{name}", joint_l, mp_l, (ox, oy, oz), weight, f"right_{name}"),
            KeypointDef(f"right_{name}", joint_r, mp_r, (-ox, oy, oz), weight, f"left_{name}")]


# FK joints: 4/5 knees, 7/8 ankles, 10/11 feet, 15 head, 16/17 shoulders, 18/19 elbows, 20/21 wrists, 1/2 hips
KEYPOINTS: tuple[KeypointDef, ...] = tuple(
    _pair("shoulder", 16, 17, 11, 12) + _pair("elbow", 18, 19, 13, 14) + _pair("wrist", 20, 21, 15, 16)
    + _pair("hip", 1, 2, 23, 24) + _pair("knee", 4, 5, 25, 26) + _pair("ankle", 7, 8, 27, 28)
    + [KeypointDef("nose", 15, 0, (0.0, 0.065, 0.115), 0.6, "nose")]
    + _pair("eye", 15, 15, 2, 5, (0.032, 0.105, 0.085), 0.4)
    + _pair("ear", 15, 15, 7, 8, (0.074, 0.075, 0.0), 0.5)
    + _pair("heel", 7, 8, 29, 30, (0.0, -0.06, -0.085), 0.6)
    + _pair("toe", 10, 11, 31, 32, (0.0, -0.02, 0.09), 0.6)
)
KEYPOINT_NAMES: tuple[str, ...] = tuple(k.name for k in KEYPOINTS)
NUM_KEYPOINTS = len(KEYPOINTS)
MIRROR_INDEX = np.array([KEYPOINT_NAMES.index(k.mirror) for k in KEYPOINTS])
"""keypoint i of a left-right swapped labelling is keypoint MIRROR_INDEX[i] of the original."""
TORSO_KEYPOINTS = tuple(KEYPOINT_NAMES.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
KEYPOINT_JOINTS = np.array([k.joint for k in KEYPOINTS])
KEYPOINT_OFFSETS = np.array([k.offset for k in KEYPOINTS], dtype=np.float64)
KEYPOINT_WEIGHTS = np.array([k.weight for k in KEYPOINTS], dtype=np.float64)
KEYPOINT_MP = np.array([k.mp for k in KEYPOINTS])


@dataclass
class Keypoints:
    """Keypoints of one person in one image, in the order of ``KEYPOINTS``.

    Attributes:
        xy: (K,2) pixel coordinates (x right, y down, origin at the top-left corner).
        conf: (K,) confidence in [0, 1] (mediapipe's visibility); 0 = not observed.
        image_size: (width, height) in pixels.
        world: optional (K,3) metric 3D positions (mediapipe world landmarks: x right, y down, z away
            from the camera, origin between the hips), or None.
        landmarks: optional (33,4) raw mediapipe landmarks (x px, y px, z, visibility) for display.
    """

    xy: np.ndarray
    conf: np.ndarray
    image_size: tuple[int, int]
    world: np.ndarray | None = None
    landmarks: np.ndarray | None = field(default=None, repr=False)

    def mirrored_labels(self) -> "Keypoints":
        """The same detections with every left/right label swapped (the classic detector confusion)."""
        return Keypoints(self.xy[MIRROR_INDEX].copy(), self.conf[MIRROR_INDEX].copy(), self.image_size,
                         None if self.world is None else self.world[MIRROR_INDEX].copy(), self.landmarks)

    def as_array(self) -> np.ndarray:
        """(K,3) float32 rows (x, y, confidence)."""
        return np.concatenate([self.xy, self.conf[:, None]], axis=1).astype(np.float32)


def keypoints_from_mediapipe(landmarks: np.ndarray, image_size: tuple[int, int],
                             world: np.ndarray | None = None) -> Keypoints:
    """Map mediapipe's 33 landmarks (33, >=4: x, y normalised to [0,1], z, visibility) to ``KEYPOINTS``.

    ``world``: optional (33, >=3) world landmarks (metres). Landmarks outside the image keep their
    position but get their confidence halved (mediapipe extrapolates them).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape[0] != NUM_MP_LANDMARKS or lm.shape[1] < 4:
        raise ValueError(f"expected (33, 4) mediapipe landmarks, got {lm.shape}")
    w, h = image_size
    px = np.stack([lm[:, 0] * w, lm[:, 1] * h], axis=1)
    vis = np.clip(lm[:, 3], 0.0, 1.0)
    inside = (lm[:, 0] >= 0) & (lm[:, 0] <= 1) & (lm[:, 1] >= 0) & (lm[:, 1] <= 1)
    vis = np.where(inside, vis, 0.5 * vis)
    raw = np.concatenate([px, lm[:, 2:3], vis[:, None]], axis=1)
    wk = None if world is None else np.asarray(world, dtype=np.float64)[KEYPOINT_MP, :3]
    return Keypoints(px[KEYPOINT_MP], vis[KEYPOINT_MP], (int(w), int(h)), wk, raw)


# ------------------------------------------------------------------------------------------ mediapipe

def install_hint() -> str:
    """The one-line install instruction for this Python."""
    exe = Path(sys.executable)
    venv = REPO_ROOT / ".venv"
    py = ".venv/bin/python" if venv in exe.parents else str(exe)
    return f"install with: {py} -m pip install --no-deps -r {PHOTO_REQUIREMENTS}"


def photo_available() -> tuple[bool, str]:
    """(True, "") when mediapipe and OpenCV are importable (checked without importing them), else
    (False, "pose from a photo needs mediapipe; install with: ...")."""
    missing = [m for m in ("mediapipe", "cv2") if importlib.util.find_spec(m) is None]
    if missing:
        what = "mediapipe" if "mediapipe" in missing else "OpenCV (opencv-contrib-python)"
        return False, f"pose from a photo needs {what}, which this backend's Python lacks; {install_hint()}"
    return True, ""


_DETECTOR = None
_DETECTOR_LOCK = threading.Lock()


def _mediapipe_pose():  # noqa: ANN202
    """The mediapipe ``solutions.pose`` module (raises :class:`PhotoUnavailable`)."""
    ok, msg = photo_available()
    if not ok:
        raise PhotoUnavailable(msg)
    try:
        from mediapipe.python.solutions import pose as mp_pose
    except Exception as exc:  # noqa: BLE001  a broken install: say what and how to fix it
        raise PhotoUnavailable(f"mediapipe cannot be imported ({type(exc).__name__}: {str(exc)[:200]}); "
                               f"{install_hint()}") from None
    return mp_pose


def detect_keypoints(image_rgb: np.ndarray, min_confidence: float = 0.3) -> Keypoints:
    """Run mediapipe pose (``model_complexity=1``, static image) on (H,W,3) uint8 RGB pixels.

    Raises :class:`PhotoUnavailable` without mediapipe and ``ValueError`` ("no person found ...")
    when it detects nobody. One detector is kept per process (and used under a lock).
    """
    global _DETECTOR
    mp_pose = _mediapipe_pose()
    img = np.ascontiguousarray(np.asarray(image_rgb, dtype=np.uint8)[..., :3])
    h, w = img.shape[:2]
    with _DETECTOR_LOCK:
        if _DETECTOR is None:
            _DETECTOR = mp_pose.Pose(static_image_mode=True, model_complexity=MEDIAPIPE_MODEL_COMPLEXITY,
                                     enable_segmentation=False, min_detection_confidence=min_confidence)
        res = _DETECTOR.process(img)
    if res.pose_landmarks is None:
        raise ValueError("no person found in the image (mediapipe detected no body); use a photo where one "
                         "person is clearly visible, ideally head to feet")
    lm = np.array([(p.x, p.y, p.z, p.visibility) for p in res.pose_landmarks.landmark])
    world = None
    if res.pose_world_landmarks is not None:
        world = np.array([(p.x, p.y, p.z) for p in res.pose_world_landmarks.landmark])
    return keypoints_from_mediapipe(lm, (w, h), world)
