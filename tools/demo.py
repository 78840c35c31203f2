#!/usr/bin/env python3
"""DPoser for Blender - the headless demo (run with the bpy module's Python; ``scripts/demo.sh`` does it).

It drives the *installed* extension the way an animator would, through its ``bpy.ops.dposer.*`` operators:

1. installs the built extension zip into a temporary Blender user folder, enables it, points its
   preferences at the backend Python, and adds the SMPL armature with the mannequin;
2. imports the shipped CMU walk (``tests/data/cmu_daz_07_01_walk.bvh``) through the backend's BVH
   retargeting;
3. adds 60 mm Gaussian noise to the joint positions (a noisy action) and denoises it into a new action
   (the noisy one is kept in a muted NLA track, the clean original is kept too);
4. samples 8 poses;
5. in-betweens two of them over 24 frames (and scores the result's plausibility per frame);
6. completes a pose with the legs free (several hypotheses, ranked by score);
7. saves ``demo_out/dposer_demo.blend``;
8. renders PNGs into ``demo_out/``: the sampled poses, the in-between filmstrip, the completion
   hypotheses, and a before/after plot of the denoising (joint trajectories; drawn by matplotlib in
   the backend Python, since the bpy venv has none).

Usage::

    .venv-bpy-5.0/bin/python tools/demo.py --zip dist/dposer_blender-0.1.0.zip --python .venv/bin/python \
        [--weights PATH] [--out demo_out] [--device auto|cpu|cuda|mps] [--seed N] [--docs docs/images]

``--python`` defaults to ``$DPOSER_PYTHON``, ``--weights`` to ``$DPOSER_WEIGHTS`` (empty: the weights
shipped inside the extension). Exit status 0 when every step worked.

The steps are :mod:`tools.demo_steps`; the figure sheets :mod:`tools.demo_sheets` (on :mod:`tools.render`),
the plots :mod:`tools.demo_plots`.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Blender's user folders go to a temp dir (set before bpy is imported), so nothing touches a real profile.
USER_DIR = tempfile.mkdtemp(prefix="dposer_demo_user_")
os.environ["BLENDER_USER_RESOURCES"] = USER_DIR

import bpy  # noqa: E402

from dposer_core.constants import DEVICES  # noqa: E402
from tools import demo_steps as steps  # noqa: E402
from tools import figures as F  # noqa: E402
from tools import render as R  # noqa: E402
from tools.demo_ops import LOG, op  # noqa: E402
from tools.demo_plots import docs_copies, plot_denoise  # noqa: E402
from tools.demo_sheets import FREE_COLOR, KEY_COLOR, figures, legs_coloured, material, sheet, tint  # noqa: E402


def find_zip(arg: str | None) -> Path:
    if arg:
        return Path(arg).resolve()
    zips = sorted(glob.glob(str(REPO / "dist" / "dposer_blender-*.zip")), key=os.path.getmtime)
    if not zips:
        raise SystemExit("[demo] no dist/dposer_blender-*.zip: run scripts/build_extension.py first (demo.sh does)")
    return Path(zips[-1])


def _sheet_done(d: steps.Demo, p: Path, what: str, t: float) -> None:
    d.outputs.append(p)
    LOG.note(f"{p.name}: {what} ({time.perf_counter() - t:.1f} s)")


def render_samples(d: steps.Demo, keymat: Any) -> None:
    t, p = time.perf_counter(), d.out / "samples.png"
    a, b = d.keys
    caps = [f"#{i + 1}   {sc:.2f}" + ("   key A" if i == a else "   key B" if i == b else "")
            for i, sc in enumerate(d.scores)]
    cells, _, made = figures(d.poser, d.samples, np.zeros((len(d.samples), 3)), caps, 0.13)
    try:
        tint([o for o in cells[a] + cells[b] if o.type == 'MESH'], keymat)
        sheet(f"{steps.N_SAMPLES} poses sampled by DPoser (seed {d.seed}) with their scores (lower = more "
              "plausible); orange: the two keys of the in-between", cells, str(p), (1280, 800), columns=4)
    finally:
        R.remove_objects(made)
    _sheet_done(d, p, f"the {steps.N_SAMPLES} samples with their scores", t)


def render_inbetween(d: steps.Demo, keymat: Any) -> None:
    t, p = time.perf_counter(), d.out / "inbetween.png"
    fa, fb = d.key_frames
    strip = list(range(fa, fb + 1, 3))
    caps = [("A  " if f == fa else "B  " if f == fb else "") + str(f) for f in strip]
    cells, _, made = figures(d.poser, None, F.grid_offsets(len(strip), None, 1.0), caps, 0.12, frames=strip)
    try:
        tint([o for i in (0, len(strip) - 1) for o in cells[i] if o.type == 'MESH'], keymat)
        sheet(f"In-between over {steps.INBETWEEN_FRAMES} frames (ease in/out), every 3rd frame: keys A "
              f"(frame {fa}) and B (frame {fb}) in orange, DPoser's frames in between", cells, str(p), (1600, 440))
    finally:
        R.remove_objects(made)
    _sheet_done(d, p, f"frames {strip}", t)


def render_completion(d: steps.Demo) -> None:
    t, p = time.perf_counter(), d.out / "completion.png"
    comp, hyp = d.completer, d.hypotheses
    offs = F.grid_offsets(len(hyp) + 1, None, 0.9)
    offs[0, 0] -= 0.25  # a little gap after the reference
    plain = comp.children[0].active_material
    made: list[Any] = []
    try:
        with legs_coloured(comp, steps.LEG_JOINTS, material("DPoser Free", FREE_COLOR)):
            caps = ["mocap"] + [f"#{i + 1}   {sc:.2f}" for i, sc in enumerate(d.hyp_scores)]
            cells, _, made = figures(comp, [d.motion[0][d.src_frame]] + list(hyp), offs, caps, 0.12)
            tint([o for o in cells[0] if o.type == 'MESH'], plain)  # the reference keeps its own legs' colour
            sheet(f"Completion: the upper body of walk frame {d.frames[d.src_frame]:g} (left: the mocap) is "
                  f"kept, the legs (blue) are free; {len(hyp)} hypotheses, best score first", cells, str(p),
                  (1500, 480))
            R.remove_objects(made)  # before the coloured mesh copy goes
    finally:
        R.remove_objects(made)
    _sheet_done(d, p, f"{len(hyp)} hypotheses, best first", t)


def render(d: steps.Demo) -> None:
    """8. The PNGs: samples, the in-between filmstrip, the completions, the denoising plot."""
    keymat = material("DPoser Key", KEY_COLOR)
    render_samples(d, keymat)
    render_inbetween(d, keymat)
    render_completion(d)
    t, p = time.perf_counter(), d.out / "denoise.png"
    plot_denoise(d.python, d.plot_data, str(p))
    d.outputs.append(p)
    LOG.note(f"{p.name}: joint trajectories, noisy vs denoised vs original ({time.perf_counter() - t:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="DPoser for Blender headless demo")
    ap.add_argument("--zip", default=None, help="extension zip (default: the newest dist/dposer_blender-*.zip)")
    ap.add_argument("--python", default=os.environ.get("DPOSER_PYTHON", ""),
                    help="backend Python with torch (default $DPOSER_PYTHON)")
    ap.add_argument("--weights", default=os.environ.get("DPOSER_WEIGHTS", ""),
                    help="checkpoint (default $DPOSER_WEIGHTS, else the weights shipped in the extension)")
    ap.add_argument("--device", default=os.environ.get("DPOSER_DEVICE", "auto"), choices=DEVICES)
    ap.add_argument("--out", default=str(REPO / "demo_out"), help="output folder (default demo_out/)")
    ap.add_argument("--seed", type=int, default=steps.SEED, help=f"sampling seed (default {steps.SEED})")
    ap.add_argument("--docs", default="", help="also write 256-colour copies of the PNGs here (e.g. docs/images)")
    args = ap.parse_args(argv)

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    d = steps.Demo(zpath=find_zip(args.zip), out=out, python=args.python or str(REPO / ".venv" / "bin" / "python"),
                   device=args.device, weights=args.weights, seed=args.seed)
    print(f"DPoser for Blender demo - Blender {bpy.app.version_string} (bpy module), output in {out}")
    for title, step in (
            ("Install the extension, enable it, add the SMPL armature", steps.install),
            (f"Import the shipped CMU walk ({steps.BVH.name}) onto the armature", steps.import_walk),
            (f"Add {steps.NOISE_MM:g} mm Gaussian noise to the joint positions, then denoise", steps.noise_and_denoise),
            (f"Sample {steps.N_SAMPLES} poses", steps.sample),
            (f"In-between two sampled poses over {steps.INBETWEEN_FRAMES} frames", steps.inbetween),
            (f"Complete a pose with the legs free ({steps.N_HYPOTHESES} hypotheses)", steps.complete),
            ("Save the scene", steps.save),
            ("Render the PNGs", render)):
        with LOG.step(title):
            step(d)
    if args.docs:
        print(docs_copies(d.python, Path(args.docs).resolve(), [str(p) for p in d.outputs if p.suffix == ".png"]))
    op("backend_stop")
    bpy.ops.preferences.addon_disable(module=steps.PKG)
    LOG.summary()
    print("\nOutputs:")
    for p in d.outputs:
        print(f"  {p}")
    return 0


if __name__ == "__main__":
    try:
        rc = main(sys.argv[1:])
    finally:
        shutil.rmtree(USER_DIR, ignore_errors=True)
    sys.exit(rc)
