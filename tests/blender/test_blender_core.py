"""The extension's pure maths (``dposer_blender.core``): keys around a frame, quaternion continuity, the
completion keep mask, bone names; and the enum tables built from ``dposer_core.constants``."""

from __future__ import annotations

import numpy as np

from dposer_blender import preferences, properties
from dposer_blender.core import bones, keep, keys
from dposer_blender.dposer_core.constants import DEVICES, EASES, SAMPLERS
from dposer_blender.operators import denoise, inbetween, sample


def test_keys_around_a_frame() -> None:
    k = np.array([1.0, 11.0, 25.0])
    assert keys.keys_around(k, 4) == (1, 11)
    assert keys.keys_around(k, 11) == (11, 25)   # on a key: that key and the next
    assert keys.keys_around(k, 25) == (11, 25)   # on the last key: fill up to it
    assert keys.keys_around(k, 0) == (None, 1)
    assert keys.keys_around(np.array([5.0]), 9) == (5, None)
    assert keys.keys_around(np.zeros(0), 3) == (None, None)


def test_hemisphere_align_keeps_rotations_and_removes_sign_flips() -> None:
    rng = np.random.default_rng(0)
    q = rng.normal(size=(6, 3, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    ref = q[0].copy()
    flipped = q * np.where(rng.random((6, 3, 1)) < 0.5, -1.0, 1.0)
    out = keys.hemisphere_align(flipped, ref)
    assert np.allclose(np.abs(out), np.abs(q))   # the same rotations (q ~ -q)
    prev = np.concatenate([ref[None], out[:-1]])
    assert np.all(np.sum(out * prev, axis=-1) >= 0)


def test_keep_mask_from_a_selection() -> None:
    selected = [False] * 21
    locked = [False] * 21
    selected[0] = True          # left_hip (joint 1)
    locked[20] = True           # right_wrist (joint 21)
    kept = keep.kept_joints(selected, locked)
    assert kept == [1, 21]
    mask = keep.keep_mask(kept)
    assert len(mask) == 21 and mask[0] and mask[20] and sum(mask) == 2
    assert keep.free_joints(kept) == list(range(2, 21))


def test_bone_names_of_other_rigs() -> None:
    assert bones.normalize_bone_name("m_avg_L_Hip") == "left_hip"
    assert bones.normalize_bone_name("R_Elbow") == "right_elbow"
    names = bones.find_smpl_bones(["Pelvis", "L_Knee", "left_hip"])
    assert names[0] == "Pelvis" and names[1] == "left_hip" and names[4] == "L_Knee" and names[2] is None
    assert "pelvis" in bones.missing_joints(["L_Knee"])


def _items(cls: type, prop: str) -> list[tuple]:
    return list(cls.__annotations__[prop].keywords["items"])


def test_enum_items_come_from_the_shared_names() -> None:
    assert [i[0] for i in properties.SAMPLER_ITEMS] == list(SAMPLERS)
    assert [i[0] for i in properties.EASE_ITEMS] == list(EASES)
    assert [i[0] for i in preferences.DEVICE_ITEMS] == list(DEVICES)
    assert _items(sample.DPOSER_OT_sample, "sampler") == properties.SAMPLER_ITEMS
    assert _items(properties.DPoserSceneSettings, "sampler") == properties.SAMPLER_ITEMS
    assert _items(inbetween.DPOSER_OT_inbetween, "ease") == properties.EASE_ITEMS
    assert _items(properties.DPoserSceneSettings, "ease") == properties.EASE_ITEMS
    assert _items(denoise.DPOSER_OT_denoise, "noise") == properties.NOISE_ITEMS


def test_only_the_ode_sampler_is_called_deterministic() -> None:
    """DDIM runs with eta = 1 (fresh noise at each step): stochastic, like Euler-Maruyama."""
    for name, label, description in properties.SAMPLER_ITEMS:
        said = "determinis" in (label + description).lower()
        assert said == (name == "ode"), (name, label, description)
