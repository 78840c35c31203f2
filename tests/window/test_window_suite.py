"""The real-window suite, as pytest tests: one test per scenario check of ``driver.py``.

``run_suite.sh`` runs Blender 4.3 with its GUI once per session (a trixie root, Xvfb, software GL; it
needs root and is run by ``scripts/test.sh`` with ``DPOSER_WINDOW=1``); each test then reads its check
from ``results.json``. Without ``DPOSER_WINDOW=1`` the module is skipped, saying why.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "window_out"

pytestmark = pytest.mark.skipif(os.environ.get("DPOSER_WINDOW") != "1",
                                reason="the real-window suite runs with DPOSER_WINDOW=1 (as root: it builds a "
                                       "Debian trixie root with Blender 4.3; see tests/window/run_suite.sh)")

CHECKS = ["install", "preferences Test", "Add SMPL Armature", "Sample", "click a ghost", "Apply & Key",
          "Variations", "In-between", "Complete", "Complete flip", "Complete apply", "Pose from Image", "Pose from Image flip + apply",
          "Plausibility", "Import BVH (file browser)", "Import AMASS", "Denoise", "Esc during Denoise", "dead backend",
          "Stop Backend clears busy", "nothing written in the extension folder"]
UNDO = ["Add SMPL Armature", "Sample", "click a ghost", "Apply & Key", "Variations", "In-between", "Complete",
        "Complete flip", "Complete apply", "Pose from Image", "Plausibility", "Import BVH", "Import AMASS",
        "Denoise"]


@pytest.fixture(scope="module")
def results() -> dict:
    proc = subprocess.run(["bash", str(REPO / "tests/window/run_suite.sh"), str(OUT)], capture_output=True, text=True,
                          timeout=1800)
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    path = OUT / "results.json"
    assert path.is_file(), f"the window suite wrote no results (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(path.read_text())


def _check(results: dict, name: str) -> None:
    assert name in results, f"the driver never reached '{name}' ({results.get('driver', {}).get('detail', '')})"
    assert results[name]["ok"], results[name]["detail"]


@pytest.mark.parametrize("name", CHECKS)
def test_operation_in_the_real_window(results: dict, name: str) -> None:
    _check(results, name)


@pytest.mark.parametrize("name", UNDO)
def test_one_ctrl_z_undoes_it(results: dict, name: str) -> None:
    _check(results, f"undo: {name}")


def test_driver_finished_without_error(results: dict) -> None:
    assert "driver" not in results, results.get("driver", {}).get("detail")


def test_event_loop_keeps_running_during_operations(results: dict) -> None:
    """Blender never freezes: the heartbeat ticked through every long operation. (The 0.5 s responsiveness
    target is a measurement, printed by run_suite.sh, not asserted here; a multi-second stall is a freeze.)"""
    hb = results["_heartbeat"]
    gaps = hb.get("gaps", {})
    for op in ("Sample", "Variations", "In-between", "Complete", "Pose from Image", "Plausibility", "Import AMASS",
               "Denoise"):
        assert op in gaps, f"no heartbeat recorded while {op} ran: {hb['detail']}"
    assert hb["max_gap_s"] < 5.0, f"the event loop stalled: {hb['detail']}"


def test_console_has_no_python_traceback(results: dict) -> None:
    text = (OUT / "blender.log").read_text(errors="replace")
    found = [m.start() for m in re.finditer(r"Traceback \(most recent call last\)", text)]
    assert not found, text[max(0, found[0] - 500):found[0] + 2500] if found else ""


def test_screenshots_were_taken(results: dict) -> None:
    shots = sorted(p.name for p in OUT.glob("*.png"))
    for name in ("ghosts", "completion", "nla_original_kept", "preferences", "photo_fit"):
        assert f"{name}.png" in shots, shots
