"""Contact sheets of photo fits (matplotlib): per fit, the photo with mediapipe's keypoints, the fitted
skeleton projected onto the photo, and the fitted skeleton seen from the side (depth), against the
ground truth when there is one and against the fit without a prior.

    contact_sheet(prior, work, rec, truths, items, path, configs)   # benchmark renders (photo_bench)
    photo_sheet(prior, paths, path)                                 # any photos (no ground truth)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.evaluation.metrics import procrustes_error
from dposer_core.skeleton import smpl_skeleton

PARENTS = smpl_skeleton().parents[:22]
LEFT = {j for j, n in enumerate(smpl_skeleton().names[:22]) if n.startswith("left_")}
RIGHT = {j for j, n in enumerate(smpl_skeleton().names[:22]) if n.startswith("right_")}


def _colour(j: int) -> str:
    return "#1f6fd1" if j in LEFT else "#d1341f" if j in RIGHT else "#555555"


def joints_cam(res: dict | object, i: int = 0) -> np.ndarray:
    """(22,3) camera-frame joints of hypothesis ``i`` of a fit (dict from ``api`` or FitResult)."""
    from backend.photo.fit import fk_camera_joints

    get = (lambda k: res[k]) if isinstance(res, dict) else (lambda k: getattr(res, k))
    return fk_camera_joints(get("poses")[i:i + 1], get("root_orient_cam")[i:i + 1])[0] + get("cam_t")[i]


def _image_axes(axes, img: np.ndarray) -> None:  # noqa: ANN001
    """Axes showing ``img`` in pixel coordinates (y down), without ticks."""
    for a in axes:
        a.set_xlim(0, img.shape[1])
        a.set_ylim(img.shape[0], 0)
        a.axis("off")


def _project(J: np.ndarray, focal: float, size: tuple[int, int]) -> np.ndarray:
    return focal * J[:, :2] / J[:, 2:] + np.array(size, float) / 2


def _draw_skeleton(ax, P: np.ndarray, lw: float = 2.0, alpha: float = 1.0, style: str = "-",  # noqa: ANN001
                   colour: str | None = None) -> None:
    for j in range(1, 22):
        p = PARENTS[j]
        ax.plot([P[p, 0], P[j, 0]], [P[p, 1], P[j, 1]], style, color=colour or _colour(j), lw=lw, alpha=alpha,
                solid_capstyle="round")


def _draw_keypoints(ax, kp: np.ndarray) -> None:  # noqa: ANN001
    from backend.photo.keypoints import KEYPOINT_NAMES

    for i, n in enumerate(KEYPOINT_NAMES):
        c = "#1f6fd1" if n.startswith("left") else "#d1341f" if n.startswith("right") else "#f0c000"
        ax.scatter(kp[i, 0], kp[i, 1], s=14 + 30 * kp[i, 2], c=c, edgecolors="k", linewidths=0.4, alpha=0.4 + 0.6 * kp[i, 2])


def _side(ax, J: np.ndarray, ref: np.ndarray | None, other: np.ndarray | None) -> None:  # noqa: ANN001
    """Side view: depth (z, camera frame) to the right, height up; pelvis-centred."""
    def view(X: np.ndarray) -> np.ndarray:
        X = X - X[0]
        return np.stack([X[:, 2], -X[:, 1]], 1)
    if ref is not None:
        _draw_skeleton(ax, view(ref), lw=4, alpha=0.35, colour="#2a2a2a")
    if other is not None:
        _draw_skeleton(ax, view(other), lw=1.3, alpha=0.9, style="--", colour="#8a8a8a")
    _draw_skeleton(ax, view(J), lw=2)
    ax.set_aspect("equal")
    ax.set_xlim(-0.9, 0.9)
    ax.set_ylim(-1.05, 0.85)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.02, 0.02, "camera \u2190   side view   \u2192 away", transform=ax.transAxes, fontsize=6, color="#666")


def contact_sheet(prior, work: Path, rec: dict, truths: list, items: list, path: str, configs: dict,  # noqa: ANN001
                  picks: list[int] | None = None, gaussian=None) -> str:  # noqa: ANN001
    """4-6 benchmark fits: photo + keypoints | DPoser fit on the photo | side view (DPoser colour,
    no-prior dashed grey, ground truth thick grey) with PA-MPJPE of both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from backend.photo.fit import fit_keypoints
    from backend.photo.image_io import read_image_rgb

    if picks is None:  # spread over the views and poses
        n = len(items)
        picks = sorted({int(round(x)) for x in np.linspace(0, n - 1, min(6, n))})
    rows = len(picks)
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, 3.05 * rows), gridspec_kw={"width_ratios": [1, 1, 1.1]})
    axes = np.atleast_2d(axes)
    for r, idx in enumerate(picks):
        kp, truth, k = items[idx]
        img = read_image_rgb(work / "renders" / str(rec["files"][k]))
        res_d = fit_keypoints(prior, kp, 4, configs["dposer"], seed=idx)
        res_n = fit_keypoints(prior, kp, 4, configs["none"], seed=idx)
        Jd, Jn = joints_cam(res_d), joints_cam(res_n)
        gt = truth["joints_cam"]
        pa_d, pa_n = procrustes_error(Jd, gt), procrustes_error(Jn, gt)
        a0, a1, a2 = axes[r]
        a0.imshow(img)
        _draw_keypoints(a0, kp.as_array())
        az, el = rec["view"][k]
        a0.set_title(f"render (view {az:g}\u00b0), mediapipe", fontsize=8)
        a1.imshow(img, alpha=0.55)
        _draw_skeleton(a1, _project(Jd, res_d.focal, res_d.image_size), lw=2.2)
        a1.set_title(f"DPoser fit (top of 4: {res_d.init[0]})", fontsize=8)
        _image_axes((a0, a1), img)
        _side(a2, Jd, gt, Jn)
        a2.set_title(f"PA-MPJPE: DPoser {pa_d:.0f} mm, no prior {pa_n:.0f} mm", fontsize=8)
    fig.text(0.5, 0.004, "side view: colour = DPoser fit, dashed = no prior, thick grey = ground truth (pelvis-aligned)",
             ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.012, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def photo_sheet(prior, photos: list[str | Path], path: str, titles: list[str] | None = None) -> str:  # noqa: ANN001
    """Real photos (no ground truth): photo + keypoints | DPoser fit on the photo | side view (DPoser
    colour; no-prior fit dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from backend.photo.api import fit_image
    from backend.photo.fit import FitConfig
    from backend.photo.image_io import read_image_rgb

    rows = len(photos)
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, 3.0 * rows), gridspec_kw={"width_ratios": [1, 1, 1.1]})
    axes = np.atleast_2d(axes)
    for r, p in enumerate(photos):
        img = read_image_rgb(p)
        res = fit_image(prior, p, 4, seed=0)
        res_n = fit_image(prior, p, 4, seed=0, config=FitConfig(prior="none", rank_prior=0.0))
        Jd, Jn = joints_cam(res), joints_cam(res_n)
        a0, a1, a2 = axes[r]
        a0.imshow(img)
        _draw_keypoints(a0, res["keypoints"])
        a0.set_title((titles[r] if titles else Path(p).name) + ": mediapipe", fontsize=8)
        a1.imshow(img, alpha=0.55)
        _draw_skeleton(a1, _project(Jd, res["focal_px"], tuple(res["image_size"])), lw=2.2)
        a1.set_title(f"DPoser fit (top of 4, {res['seconds']:.1f} s)", fontsize=8)
        _image_axes((a0, a1), img)
        _side(a2, Jd, None, Jn)
        a2.set_title("side view (dashed: no prior)", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
