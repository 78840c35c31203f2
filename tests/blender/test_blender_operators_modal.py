"""The modal (interactive) path of the backend operators, and the panels' draw code.

The bpy module runs in background mode with no event loop, so Blender never calls ``modal()`` itself.
These tests drive the operator's own ``invoke`` / ``modal`` methods by hand on a stand-in object (the
real methods, with ``_blocking`` -> False and no window-manager modal handler), feeding TIMER and ESC
events that have only the attributes a real ``bpy.types.Event`` has. The real event loop is covered by
the real-window suite (``tests/window``); these pin the logic on the oldest and newest bpy.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import bpy
import numpy as np
import pytest

from dposer_blender.blender import actions, armature, fcurves, ghosts
from dposer_blender.operators import _context
from dposer_blender.operators import complete as complete_ops
from dposer_blender.operators import inbetween as inbetween_ops
from dposer_blender.operators import sample as sample_ops

pytestmark = pytest.mark.usefixtures("dposer_addon")


def stand_in(op_cls: type, **props):
    """An object with ``op_cls``'s Python methods and class attributes, and ``props`` as plain attributes
    (reports collected; ``props`` count as set, as a caller's would, the others come from the scene settings)."""
    ns = {k: v for k, v in vars(op_cls).items() if not k.startswith("__")}
    for base in op_cls.__mro__:  # the first definition along the MRO wins, as in Python
        if not base.__module__.startswith("dposer_blender"):
            continue
        for k, v in vars(base).items():
            if not k.startswith("__") and k not in ns:
                ns[k] = v
    ns.update(_blocking=lambda self, context: False, _add_modal_handler=lambda self, context: None,
              report=lambda self, kind, msg: self.reports.append((set(kind), msg)),
              properties=SimpleNamespace(is_property_set=lambda name, ghost=True: name in props),
              progress_label=getattr(op_cls, "progress_label", "Working"))
    cls = type(f"StandIn_{op_cls.__name__}", (), ns)
    obj = cls()
    obj.reports = []
    for k, v in props.items():
        setattr(obj, k, v)
    return obj


class RealEventShape:
    """An event with only attributes that Blender's ``bpy.types.Event`` has (reading any other raises, as a
    real Event would): a stand-in that cannot hide a read of a missing attribute such as ``event.timer``."""

    _REAL = frozenset(p.identifier for p in bpy.types.Event.bl_rna.properties)

    def __init__(self, type: str, value: str = 'NOTHING') -> None:  # noqa: A002
        object.__setattr__(self, "_values", {"type": type, "value": value, "ctrl": False, "shift": False,
                                             "alt": False, "oskey": False, "is_repeat": False})

    def __getattr__(self, name: str):
        if name not in self._REAL:
            raise AttributeError(f"'Event' object has no attribute '{name}'")
        return self._values.get(name, 0)


def test_the_event_stand_in_has_only_real_event_attributes() -> None:
    ev = RealEventShape('TIMER')
    assert ev.type == 'TIMER' and ev.value == 'NOTHING'
    with pytest.raises(AttributeError):
        ev.timer  # noqa: B018 - the attribute the old modal code read, which Blender's Event lacks
    assert "timer" not in RealEventShape._REAL and "type" in RealEventShape._REAL


def timer_event(op) -> RealEventShape:
    return RealEventShape('TIMER')


def drive(op, context, timeout: float = 120.0) -> set[str]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        res = op.modal(context, timer_event(op))
        if res != {'RUNNING_MODAL'}:
            return res
        time.sleep(0.02)
    raise AssertionError("the modal operator did not finish")


def test_modal_sample_writes_once_at_the_end(dposer_addon) -> None:
    runtime = dposer_addon
    obj = armature.create_smpl_armature(mannequin=False)
    ctx = bpy.context
    op = stand_in(sample_ops.DPOSER_OT_sample, n=3, seed=2, steps=3, sampler="ddim")
    assert op.invoke(ctx, None) == {'RUNNING_MODAL'}
    assert runtime.progress() is not None and runtime.progress().label == "Sampling"
    assert not ghosts.ghosts_of(obj)  # nothing written while it runs
    assert drive(op, ctx) == {'FINISHED'}, op.reports
    assert len(ghosts.ghosts_of(obj)) == 3
    assert runtime.progress() is None  # progress cleared
    assert op._timer is None  # the window-manager timer was removed
    assert any("3 candidate poses" in m for _, m in op.reports)


def test_modal_escape_cancels_and_leaves_the_scene_unchanged(dposer_addon) -> None:
    runtime = dposer_addon
    obj = armature.create_smpl_armature(mannequin=False)
    bpy.context.view_layer.objects.active = obj
    rng = np.random.default_rng(0)
    for f in (1, 30):
        actions.key_smpl_pose(obj, f, rng.normal(0, 0.3, 63), rng.normal(0, 0.2, 3))
    bpy.context.scene.frame_set(10)
    action = obj.animation_data.action

    def snapshot():
        out = {}
        for fc in fcurves.action_fcurves(action, obj):
            co = np.empty(2 * len(fc.keyframe_points), np.float32)
            fc.keyframe_points.foreach_get("co", co)
            out[(fc.data_path, fc.array_index)] = co.tobytes()
        return out, sorted(o.name for o in bpy.data.objects), len(bpy.data.actions)

    before = snapshot()
    # a slow request (the paper's 1000-step sampler over many poses) so Esc arrives while it runs
    op = stand_in(sample_ops.DPOSER_OT_sample, n=1024, seed=0, steps=5000, sampler="em")
    assert op.invoke(bpy.context, None) == {'RUNNING_MODAL'}
    fut = op._future
    op.modal(bpy.context, timer_event(op))
    res = op.modal(bpy.context, RealEventShape('ESC', 'PRESS'))
    assert res == {'CANCELLED'}
    assert any("cancelled; nothing was changed" in m for _, m in op.reports)
    with pytest.raises(Exception) as ei:
        fut.result(120)
    assert getattr(ei.value, "code", None) == "cancelled"
    assert snapshot() == before
    assert runtime.progress() is None

    # other events pass through while it runs; an in-between run modally then fills the frames
    op = stand_in(inbetween_ops.DPOSER_OT_inbetween, frame_a=-1, frame_b=-1, ease="linear", root="INTERPOLATE",
                  steps=2, seed=0)
    assert op.invoke(bpy.context, None) == {'RUNNING_MODAL'}
    assert op.modal(bpy.context, RealEventShape('MOUSEMOVE')) == {'PASS_THROUGH'}
    assert drive(op, bpy.context) == {'FINISHED'}
    m = actions.read_smpl_motion(obj)
    assert len(m["frames"]) == 30


def test_modal_backend_error_is_reported(dposer_addon) -> None:
    obj = armature.create_smpl_armature(mannequin=False)
    bpy.context.view_layer.objects.active = obj
    op = stand_in(complete_ops.DPOSER_OT_complete, hypotheses=2, steps=3, seed=0)
    for pb in obj.pose.bones:
        pb.lock_rotation = (True, True, True)
    with pytest.raises(_context.OpError):
        op.build_request(bpy.context)
    assert op.invoke(bpy.context, None) == {'CANCELLED'}
    assert any("nothing to complete" in m for _, m in op.reports)


def test_invoke_takes_the_properties_it_was_not_given_from_the_scene_settings(dposer_addon) -> None:
    s = bpy.context.scene.dposer
    s.n, s.random_seed, s.seed, s.auto_steps, s.steps, s.sampler = 3, False, 7, False, 12, "ode"
    op = stand_in(sample_ops.DPOSER_OT_sample, n=2)
    op.take_scene_defaults(bpy.context)
    assert (op.n, op.seed, op.steps, op.sampler) == (2, 7, 12, "ode")  # n was given: kept
    s.random_seed, s.auto_steps = True, True
    op = stand_in(sample_ops.DPOSER_OT_sample)
    op.take_scene_defaults(bpy.context)
    assert (op.n, op.seed, op.steps) == (3, -1, 0)
    s.use_auto_range, s.frame_a, s.frame_b, s.ease, s.root = False, 3, 9, "ease_in", "KEEP"
    op = stand_in(inbetween_ops.DPOSER_OT_inbetween, seed=0)
    op.take_scene_defaults(bpy.context)
    assert (op.frame_a, op.frame_b, op.ease, op.root) == (3, 9, "ease_in", "KEEP")
    s.use_auto_range = True
    op.take_scene_defaults(bpy.context)
    assert (op.frame_a, op.frame_b) == (-1, -1)
    s.hypotheses, s.photo_hypotheses = 7, 3
    op = stand_in(complete_ops.DPOSER_OT_complete)
    op.take_scene_defaults(bpy.context)
    assert op.hypotheses == 7


# --------------------------------------------------------------------------- panel draw code

class _Layout:
    """Records layout calls; accepts any attribute assignment (operator properties)."""

    def __init__(self, log: list) -> None:
        object.__setattr__(self, "_log", log)

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            self._log.append((name, args, kwargs))
            return _Layout(self._log)
        return call

    def __setattr__(self, name: str, value) -> None:
        self._log.append(("set", name, value))


def _draw_all(context) -> list:
    from dposer_blender import panel

    log: list = []
    for cls in panel.CLASSES:
        if issubclass(cls, bpy.types.Panel):
            cls.draw(SimpleNamespace(layout=_Layout(log)), context)
    return log


def test_panels_draw_in_every_state(dposer_addon) -> None:
    log = _draw_all(bpy.context)  # no armature: the reason is shown
    labels = [kw.get("text", "") for n, a, kw in log if n == "label"]
    assert any("No active object" in t for t in labels)
    assert any(t.startswith("Ready on CPU") for t in labels)
    obj = armature.create_smpl_armature(mannequin=False)
    bpy.ops.dposer.sample(n=2, steps=2, seed=0)
    bpy.ops.dposer.complete(hypotheses=2, steps=3, seed=0)
    rng = np.random.default_rng(0)
    for f in (1, 5):
        actions.key_smpl_pose(obj, f, rng.normal(0, 0.3, 63))
    bpy.context.scene.frame_set(2)
    bpy.ops.dposer.plausibility()
    log = _draw_all(bpy.context)
    ops = [a[0] for n, a, kw in log if n == "operator"]
    assert {"dposer.sample", "dposer.variations", "dposer.apply_candidate", "dposer.clear_candidates",
            "dposer.inbetween", "dposer.complete", "dposer.complete_flip", "dposer.complete_apply",
            "dposer.denoise", "dposer.import_motion", "dposer.plausibility", "dposer.select_worst_frames",
            "dposer.backend_stop", "dposer.add_smpl_armature"} <= set(ops)
    labels = [kw.get("text", "") for n, a, kw in log if n == "label"]
    assert "A = 1   B = 5" in labels
    assert any(t.startswith("1/2  score") for t in labels)
    assert any("dposer_plausibility" in t for t in labels)


def test_progress_is_drawn_in_the_panel(dposer_addon) -> None:
    runtime = dposer_addon
    runtime.begin_progress("Sampling")
    runtime.update_progress(0.4, "step 4/10")
    try:
        log = _draw_all(bpy.context)
    finally:
        runtime.end_progress()
    texts = [kw.get("text", "") for n, a, kw in log if n in ("progress", "label")]
    assert any(t.startswith("Sampling…") for t in texts) and "Esc cancels" in texts


def test_an_exception_in_the_result_handler_cleans_up(dposer_addon) -> None:
    """Any exception inside modal (here: the result handler) clears the busy state and the progress, gives
    one plain report, and the next operation is not refused as 'busy'."""
    runtime = dposer_addon
    obj = armature.create_smpl_armature(mannequin=False)
    op = stand_in(sample_ops.DPOSER_OT_sample, n=2, seed=2, steps=3, sampler="ddim")

    def boom(self, context, result):
        raise RuntimeError("disk on fire")

    type(op).follow_up = lambda self, context, result: None
    type(op).apply_result = boom
    assert op.invoke(bpy.context, None) == {'RUNNING_MODAL'}
    res = drive(op, bpy.context)
    assert res == {'CANCELLED'}
    assert runtime.progress() is None and op._timer is None
    errors = [m for k, m in op.reports if 'ERROR' in k]
    assert len(errors) == 1 and "disk on fire" in errors[0]
    assert not ghosts.ghosts_of(obj)
    op2 = stand_in(sample_ops.DPOSER_OT_sample, n=2, seed=2, steps=3, sampler="ddim")
    assert op2.invoke(bpy.context, None) == {'RUNNING_MODAL'}  # not refused as busy
    assert drive(op2, bpy.context) == {'FINISHED'}


def test_stop_backend_clears_a_busy_state(dposer_addon) -> None:
    runtime = dposer_addon
    armature.create_smpl_armature(mannequin=False)
    op = stand_in(sample_ops.DPOSER_OT_sample, n=256, seed=0, steps=3000, sampler="em")
    assert op.invoke(bpy.context, None) == {'RUNNING_MODAL'}
    assert runtime.progress() is not None
    runtime.close()  # what Stop Backend does
    assert runtime.progress() is None
    # the orphaned modal operator leaves quietly on its next tick
    assert op.modal(bpy.context, timer_event(op)) == {'CANCELLED'}
    assert op._timer is None


def test_a_stale_operation_no_longer_blocks_new_ones(dposer_addon) -> None:
    """An operation whose modal operator stopped ticking (its window closed) is dropped when a new one
    starts; a live one (ticking) is never dropped, however slow the event loop."""
    runtime = dposer_addon
    token = runtime.begin_progress("Sampling")
    assert not runtime.clear_stale_progress(max_age_s=30.0) and runtime.progress() is token
    token.beat -= 31.0
    assert runtime.clear_stale_progress(max_age_s=30.0) and runtime.progress() is None
