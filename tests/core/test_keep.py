"""dposer_core.keep: the one keep-mask parser (names, indices, booleans, masks) and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from dposer_core.constants import BODY_MASKS, MASK_NAMES, NUM_BODY_JOINTS
from dposer_core.errors import BadInput
from dposer_core.keep import keep_from_mask, parse_keep
from dposer_core.skeleton import body_joint_names

NAMES = list(body_joint_names())


def _mask(*indices: int) -> np.ndarray:
    m = np.zeros(NUM_BODY_JOINTS, bool)
    m[list(indices)] = True
    return m


def test_names_indices_and_comma_string_agree() -> None:
    idx = [NAMES.index("left_knee"), NAMES.index("head")]
    want = _mask(*idx)
    for keep in (["left_knee", "head"], ("head", "left_knee"), "left_knee, head", np.array(["left_knee", "head"]),
                 idx, np.array(idx), [np.int64(i) for i in idx]):
        got = parse_keep(keep)
        assert got.dtype == bool and got.shape == (NUM_BODY_JOINTS,)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(parse_keep(["head", "head"]), _mask(NAMES.index("head")))  # repeats are fine
    np.testing.assert_array_equal(parse_keep(range(21)), np.ones(21, bool))


def test_booleans() -> None:
    b = [True] * 10 + [False] * 11
    for keep in (b, np.array(b), tuple(b), [np.bool_(x) for x in b]):
        np.testing.assert_array_equal(parse_keep(keep), np.array(b))
    np.testing.assert_array_equal(parse_keep([False] * 21), np.zeros(21, bool))


@pytest.mark.parametrize("name", MASK_NAMES)
def test_masks_hide_their_joints(name: str) -> None:
    keep = keep_from_mask(name)
    assert keep.dtype == bool and keep.shape == (NUM_BODY_JOINTS,)
    assert sorted(np.flatnonzero(~keep)) == sorted(BODY_MASKS[name])


@pytest.mark.parametrize("keep,match", [
    ([True] * 20, "21 entries"),
    (np.ones((1, 21), bool), "21 entries"),
    ([], "must not be empty"),
    ("", "must not be empty"),
    (["left_knee", "tail"], "unknown joint name 'tail'"),
    ([21], "out of range 0..20"),
    ([-1], "out of range"),
    ([True, 3], "joint names or indices"),       # a bool is not an index
    ([1.0, 2.0], "joint names or indices"),
    ([None], "joint names or indices"),
    (5, "keep must be"),
    (None, "keep must be"),
])
def test_bad_inputs(keep: object, match: str) -> None:
    with pytest.raises(BadInput, match=match):
        parse_keep(keep)


def test_echoed_input_is_clipped() -> None:
    with pytest.raises(BadInput) as e:
        parse_keep(["x" * 100_000])
    assert "100,000 characters" in str(e.value) and len(str(e.value)) < 400
    with pytest.raises(BadInput) as e:
        keep_from_mask("m" * 100_000)
    assert "100,000 characters" in str(e.value) and len(str(e.value)) < 300
    with pytest.raises(BadInput, match="known masks"):
        keep_from_mask("tail")
