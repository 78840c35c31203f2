"""The demo's noisy-motion maths (``tools/demo_kinematics.py``) on ``dposer_core``'s FK."""

from __future__ import annotations

import numpy as np

from dposer_core.rotations_np import axis_angle_to_matrix
from tools import demo_kinematics as kin


def test_reach_of_the_clean_joints_gives_the_clean_pose_back() -> None:
    rng = np.random.default_rng(0)
    body, root, trans = rng.normal(0, 0.3, (4, 63)), rng.normal(0, 0.3, (4, 3)), rng.normal(0, 0.1, (4, 3))
    again = kin.reach(body, root, trans, kin.fk(body, root, trans))
    np.testing.assert_allclose(axis_angle_to_matrix(again.reshape(4, 21, 3)),
                               axis_angle_to_matrix(body.reshape(4, 21, 3)), atol=1e-8)


def test_reach_moves_the_joints_to_noisy_targets() -> None:
    rng = np.random.default_rng(1)
    body, root, trans = rng.normal(0, 0.2, (3, 63)), np.zeros((3, 3)), np.zeros((3, 3))
    clean = kin.fk(body, root, trans)
    targets = clean + rng.normal(0, 0.03, clean.shape)
    noisy = kin.fk(kin.reach(body, root, trans, targets), root, trans)
    assert np.linalg.norm(noisy - targets, axis=-1).mean() < np.linalg.norm(clean - targets, axis=-1).mean()
    assert kin.body_local(clean, root).shape == (3, 22, 3)


def test_a_sheet_of_posed_figures_with_a_title(tmp_path) -> None:
    """The demo's figure sheet: posed duplicates with captions, a title bar on top, the scene left clean."""
    import bpy

    from dposer_blender.blender import armature
    from tools import demo_sheets, render

    obj = armature.create_smpl_armature()
    n_obj = len(bpy.data.objects)
    poses = [np.zeros(63), np.random.default_rng(0).normal(0, 0.3, 63)]
    cells, arms, made = demo_sheets.figures(obj, poses, np.array([[0.0, 0, 0], [0.9, 0, 0]]), ["a", "b"], 0.1)
    try:
        assert len(cells) == len(arms) == 2
        out = demo_sheets.sheet("two poses", cells, str(tmp_path / "sheet.png"), (160, 80), columns=2)
    finally:
        render.remove_objects(made)
    px = render.read_png_pixels(out)
    assert px.shape == (80 + 46, 160, 4)  # the body and the 46-pixel title bar
    assert len(bpy.data.objects) == n_obj
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.png"]
