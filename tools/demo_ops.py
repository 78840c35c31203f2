"""The demo's console log and its calls of the extension's operators (``bpy.ops.dposer.*``)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import bpy
import numpy as np

from dposer_blender.blender.fcurves import action_fcurves, read_keys


class Log:
    """Step headers with timings, indented details, and a summary table at the end."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.t0 = time.perf_counter()
        self.rows: list[tuple[str, float]] = []
        self.n = 0

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.n += 1
        print(f"\n[{self.n}/{self.total}] {title}", flush=True)
        t = time.perf_counter()
        yield
        dt = time.perf_counter() - t
        self.rows.append((title, dt))
        print(f"      ({dt:.1f} s)", flush=True)

    @staticmethod
    def note(msg: str) -> None:
        for i, line in enumerate(str(msg).splitlines() or [""]):
            print(("      " if i == 0 else "        ") + line, flush=True)

    def summary(self) -> None:
        print("\nTimings:")
        for title, dt in self.rows:
            print(f"  {dt:6.1f} s  {title}")
        print(f"  {time.perf_counter() - self.t0:6.1f} s  total")


LOG = Log(8)


def have_op(name: str) -> bool:
    """True when ``bpy.ops.dposer.<name>`` is registered."""
    try:
        getattr(bpy.ops.dposer, name).get_rna_type()
        return True
    except (AttributeError, KeyError):
        return False


def op(name: str, **props: Any) -> set[str]:
    """Run ``bpy.ops.dposer.<name>(**props)`` (blocking in background mode) and print what it reported."""
    fn = getattr(bpy.ops.dposer, name)
    args = ", ".join(f"{k}={v!r}" for k, v in props.items())
    LOG.note(f"bpy.ops.dposer.{name}({args})")
    t = time.perf_counter()
    try:
        res = fn(**props)
    except RuntimeError as ex:  # an ERROR report makes bpy raise
        raise SystemExit(f"[demo] bpy.ops.dposer.{name} failed: {str(ex).strip()}") from None
    if res != {'FINISHED'}:
        raise SystemExit(f"[demo] bpy.ops.dposer.{name} returned {res}")
    LOG.note(f"  -> {', '.join(sorted(res))} in {time.perf_counter() - t:.1f} s")
    return res


def name_character(obj: Any, name: str) -> Any:
    """Rename a new SMPL armature and its body mesh ("<name>", "<name> body")."""
    obj.name = obj.data.name = name
    for c in obj.children:
        c.name = f"{name} body"
        if c.data is not None:
            c.data.name = f"{name} body"
    return obj


def add_character(name: str, x: float) -> Any:
    """``dposer.add_smpl_armature`` at (x, 0, 0), renamed ``name``."""
    bpy.context.scene.cursor.location = (x, 0.0, 0.0)
    op("add_smpl_armature")
    return name_character(bpy.context.view_layer.objects.active, name)


def key_values(obj: Any, frames: Sequence[float]) -> dict[tuple[str, int, float], float]:
    """The keyed values of ``obj``'s active action at ``frames`` per (data path, index, frame)."""
    out = {}
    for fc in action_fcurves(obj.animation_data.action, obj):
        fr, val = read_keys(fc)
        for f, v in zip(fr, val):
            if float(f) in frames:
                out[(fc.data_path, fc.array_index, float(f))] = float(v)
    return out


def set_active(obj: Any) -> None:
    vl = bpy.context.view_layer
    for o in vl.objects:
        o.select_set(False)
    vl.objects.active = obj
    obj.select_set(True)


def plausibility_keys(action: Any, obj: Any) -> np.ndarray:
    """The values of the ``dposer_plausibility`` F-curve (one per frame)."""
    fc = [f for f in action_fcurves(action, obj) if f.data_path == '["dposer_plausibility"]'][0]
    return read_keys(fc)[1]
