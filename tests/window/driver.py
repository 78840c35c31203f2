"""Drives a real Blender window (run by ``tests/window/run_suite.sh``; Blender's own Python, no pytest).

The scenario is a generator stepped by ``bpy.app.timers``, so Blender's event loop runs between steps:
operators are called with ``'INVOKE_DEFAULT'`` in the 3D Viewport's context (the path a panel button
takes, so the modal operators, their timers and the status bar run for real), a ghost is clicked and Esc
and Ctrl+Z / Ctrl+Shift+Z are pressed with ``xdotool``, and screenshots are taken with ImageMagick's
``import -window root``. Each check is judged by what lands in the scene and is written to
``<out>/results.json``; a heartbeat timer records the largest gap in the event loop while an operation
runs. Blender quits at the end.

The helpers are ``window_common.py`` and ``window_scene.py``, the scenario ``scenario_pose.py`` and
``scenario_clip.py`` (this folder is put on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

import bpy

_HERE = os.path.dirname(os.path.abspath(globals().get("__file__") or
                                        os.path.join(sys.argv[sys.argv.index("--repo") + 1], "tests", "window", "x")))
sys.path.insert(0, _HERE)

import scenario_clip  # noqa: E402
import scenario_pose  # noqa: E402
from window_common import ARGS, EXT_TIME, HB, RESULTS, SHOTS, check, ext, log  # noqa: E402


def scenario():
    """The whole scenario, part after part (each a generator of waits)."""
    yield from scenario_pose.setup()
    char = yield from scenario_pose.pose()
    yield from scenario_pose.complete(char)
    yield from scenario_clip.photo(char)
    yield from scenario_clip.motion()


def finish(error: str | None = None) -> None:
    if error:
        check("driver", False, error)
    try:
        runtime = ext("runtime")
        runtime.close()
        ext_dir = os.path.dirname(ext().__file__)
        pyc = [os.path.relpath(os.path.join(d, f), ext_dir) for d, _, fs in os.walk(ext_dir) for f in fs
               if f.endswith(".pyc")]
        # Blender's importer compiles the package's own __init__ before any of its code runs (as for every
        # extension); everything the extension imports itself, and the backend, writes no bytecode
        ours = [p for p in pyc if not (p.startswith("__pycache__" + os.sep + "__init__.") and p.count(os.sep) == 1)]
        check("nothing written in the extension folder", not ours,
              f"{len(ours)} .pyc files written by the extension or its backend: {ours[:5]} "
              f"(Blender's own import of __init__: {len(pyc) - len(ours)})")
    except Exception as ex:  # noqa: BLE001
        check("nothing written in the extension folder", False, f"could not check: {ex}")
    gaps = {k: round(v, 3) for k, v in HB.gaps.items()}
    worst = max(gaps.values()) if gaps else None
    RESULTS["_heartbeat"] = {"ok": worst is not None and worst < 0.5,
                             "detail": f"largest gap per operation: {gaps}; largest idle gap {HB.idle:.3f} s",
                             "max_gap_s": worst, "gaps": gaps, "idle_max_gap_s": round(HB.idle, 3),
                             "quiet_baseline_max_gap_s": round(HB.baseline or 0.0, 3),
                             "full_window_redraw_s": round(getattr(HB, "redraw_s", 0.0), 3),
                             "extension_tick_max_s": {k: round(v, 3) for k, v in EXT_TIME.items()}}
    RESULTS["_screenshots"] = {"ok": True, "detail": ", ".join(os.path.basename(s) for s in SHOTS)}
    with open(os.path.join(ARGS.out, "results.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)
    log(f"heartbeat: {gaps}; idle {HB.idle:.3f} s; quiet baseline {HB.baseline or 0.0:.3f} s; "
        f"the extension's longest modal tick per operation: "
        f"{ {k: round(v, 3) for k, v in EXT_TIME.items()} }")
    log("done")
    bpy.ops.wm.quit_blender()


_GEN = None


def step() -> float | None:
    global _GEN
    try:
        if _GEN is None:
            _GEN = scenario()
        delay = next(_GEN)
        HB.last = max(HB.last, time.monotonic())  # the driver's own work (screenshots, checks) is not a gap
        return float(delay)
    except StopIteration:
        finish()
        return None
    except Exception:  # noqa: BLE001 - recorded as a failed check, then Blender quits
        finish("driver error: " + traceback.format_exc().replace("Traceback", "Driver exception"))
        return None


def start() -> None:
    os.makedirs(ARGS.out, exist_ok=True)
    bpy.app.timers.register(HB.tick, first_interval=0.05, persistent=True)
    bpy.app.timers.register(step, first_interval=2.0, persistent=True)


start()
