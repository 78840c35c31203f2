"""The README's command-line examples (section "Backend command line") run as written, with the shipped
weights, on the example inputs in ``tests/data/examples/``: the README cannot drift from them unnoticed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from backend import DEFAULT_WEIGHTS
from backend.cli import main

REPO = Path(__file__).resolve().parents[3]
README = REPO / "README.md"
EXAMPLES = REPO / "tests" / "data" / "examples"


def _commands() -> list[list[str]]:
    cmds = []
    for line in README.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^ {4}\.venv/bin/python -m backend (.+)$", line)
        if m:
            cmds.append(shlex.split(m.group(1)))
    return cmds


def test_notes_list_the_examples() -> None:
    cmds = _commands()
    assert len(cmds) >= 6 and {c[0] for c in cmds} >= {"sample", "complete", "denoise", "inbetween", "encode"}
    for c in cmds:
        if "--input" in c:
            assert (REPO / c[c.index("--input") + 1]).is_file(), c


def test_example_files_are_what_the_notes_say() -> None:
    shapes = {"pose.npz": {"poses": (1, 63)}, "keys.npz": {"poses": (2, 63), "root_orient": (2, 3)},
              "poses.npz": {"poses": (8, 63)}, "noisy_joints.npz": {"joints": (60, 22, 3)}}
    for name, want in shapes.items():
        with np.load(EXAMPLES / name) as z:
            assert {k: z[k].shape for k in z.files} == want, name
            assert all(z[k].dtype == np.float32 and np.isfinite(z[k]).all() for k in z.files)


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="needs the shipped weights")
@pytest.mark.parametrize("i", range(len(_commands())))
def test_example_command_runs(i: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture) -> None:
    args = _commands()[i]
    out_at = args.index("--output") + 1
    out = tmp_path / Path(args[out_at]).name
    args[out_at] = str(out)
    monkeypatch.chdir(REPO)
    assert main(args) == 0, capsys.readouterr().err
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files}
    assert arrays and all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")
    task = args[0]
    if task == "complete":
        assert arrays["poses"].shape == (1, 10, 63)
    elif task == "inbetween":
        assert arrays["poses"].shape == (26, 63) and arrays["root_orient"].shape == (26, 3)
    elif task == "denoise":
        assert arrays["joints"].shape[1:] == (22, 3) and arrays["poses"].shape[0] == arrays["joints"].shape[0]
