"""The demo's plots and docs copies, drawn in the backend Python (matplotlib, PIL), which the bpy venv lacks."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np


def plot_denoise(python: str, data: dict[str, np.ndarray], filepath: str) -> str:
    """Before/after plot of the denoising, drawn by matplotlib in the backend Python (a subprocess)."""
    d = tempfile.mkdtemp(prefix="dposer_demo_plot_")
    try:
        npz = os.path.join(d, "plot.npz")
        np.savez(npz, **data)
        env = {**os.environ, "MPLBACKEND": "Agg", "CUDA_VISIBLE_DEVICES": ""}
        proc = subprocess.run([python, "-c", PLOT_SCRIPT, npz, filepath], capture_output=True, text=True,
                              timeout=300, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"the plot subprocess failed: {proc.stderr.strip()[-800:]}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return filepath


PLOT_SCRIPT = r'''
import sys
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

d = np.load(sys.argv[1])
t = d["frames"]
names = list(d["names"])
noise = float(d["noise_mm"])
C_NOISY, C_CLEAN, C_DEN = "#e07b72", "#222222", "#1f6fd1"
fig, axes = plt.subplots(2, 2, figsize=(11.0, 6.8), dpi=100)
panels = [(axes[0, 0], "left_ankle", "height", None, "Left ankle: height above the floor (mm)"),
          (axes[0, 1], "left_ankle", "local", 2, "Left ankle: forward of the pelvis (mm)"),
          (axes[1, 0], "right_wrist", "local", 2, "Right wrist: forward of the pelvis (mm)")]
for ax, joint, kind, axis, title in panels:
    j = names.index(joint)
    if kind == "height":
        series = [1000 * d["height_" + k][:, j] for k in ("noisy", "clean", "denoised")]
    else:
        series = [1000 * d[k][:, j, axis] for k in ("noisy", "clean", "denoised")]
    ax.plot(t, series[0], color=C_NOISY, lw=1.0, label=f"noisy input ({noise:.0f} mm noise)")
    ax.plot(t, series[1], color=C_CLEAN, lw=1.6, ls="--", label="original mocap")
    ax.plot(t, series[2], color=C_DEN, lw=2.2, label="DPoser denoised")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("frame (30 fps)")
    ax.grid(alpha=0.3)
ax = axes[1, 1]
ax.plot(t, d["err_noisy"], color=C_NOISY, lw=1.2, label=f"noisy input: mean {d['err_noisy'].mean():.0f} mm")
ax.plot(t, d["err_denoised"], color=C_DEN, lw=2.2, label=f"DPoser denoised: mean {d['err_denoised'].mean():.0f} mm")
ax.set_ylim(0, 1.25 * max(d["err_noisy"].max(), d["err_denoised"].max()))
ax.set_title("Mean joint distance to the original mocap (mm)", fontsize=11)
ax.set_xlabel("frame (30 fps)")
ax.grid(alpha=0.3)
ax.legend(loc="upper right", fontsize=9.5, framealpha=0.95)
handles, labels = axes[0, 0].get_legend_handles_labels()
fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=10.5, frameon=False, bbox_to_anchor=(0.5, 0.955))
fig.suptitle(f"Denoising a CMU walk: {noise:.0f} mm Gaussian noise on the joint positions, "
             "cleaned by dposer.denoise", fontsize=13)
fig.tight_layout(rect=(0, 0, 1, 0.93))
fig.savefig(sys.argv[2])
'''


QUANTIZE_SCRIPT = r'''
import os, sys
from PIL import Image
for src in sys.argv[2:]:
    dst = os.path.join(sys.argv[1], os.path.basename(src))
    Image.open(src).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                            dither=Image.Dither.NONE).save(dst, optimize=True)
    print(f"      docs copy: {dst} ({os.path.getsize(dst) // 1024} KB)")
'''


def docs_copies(python: str, docs: Path, pngs: Sequence[str]) -> str:
    """256-colour copies of ``pngs`` in ``docs`` (PIL in the backend Python); returns what it printed."""
    docs.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([python, "-c", QUANTIZE_SCRIPT, str(docs), *pngs], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"[demo] writing the docs copies failed: {proc.stderr.strip()[-800:]}")
    return proc.stdout.rstrip()
