"""Shared operator machinery: SMPL polls, the blocking/modal backend operator base, small helpers.

:class:`BackendOperator` subclasses implement two methods:

* ``build_request(context) -> (request_type, params)`` - read the scene (main thread), validate;
  raise :class:`OpError` with a plain sentence to refuse. Must not change the scene.
* ``apply_result(context, result) -> set`` - write the result into the scene in one pass.

``execute`` runs the request blocking (background mode, scripts, tests, redo panel); ``invoke`` in an
interactive session submits it and goes modal: a window-manager timer polls the future, progress goes
to the status bar and the panel, Esc cancels (the scene has not been touched, so it stays exactly as
it was). Either way the scene is written once, on the main thread, and the operator is one undo step.
"""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np
from bpy_extras.io_utils import ImportHelper

from .. import pose_convert as pc
from .. import runtime
from ..ui_text import progress_text
from ..dposer_core.skeleton import smpl_skeleton


class OpError(Exception):
    """A refusal with a plain-words message (reported as an error; the operator is cancelled)."""


# ----------------------------------------------------------------------------------------- polls

def active_object(context: Any) -> Any:
    obj = getattr(context, "active_object", None)
    if obj is None:
        vl = getattr(context, "view_layer", None)
        obj = vl.objects.active if vl is not None else None
    return obj


def ghost_of(obj: Any) -> Any:
    """The candidate ghost armature ``obj`` belongs to (itself, or the ghost whose body or label it is), else None."""
    if obj is None:
        return None
    if obj.get("dposer_ghost_of") is not None:
        return obj
    part = obj.get("dposer_ghost_part")
    return bpy.data.objects.get(part) if part is not None else None


def resolve_ghost(obj: Any) -> Any:
    """``obj``, or the character it is a candidate ghost (or a ghost's body or label) of, when that exists."""
    ghost = ghost_of(obj)
    owner = bpy.data.objects.get(ghost["dposer_ghost_of"]) if ghost is not None else None
    return owner if owner is not None else obj


def smpl_poll(cls: type, context: Any) -> bool:
    """Poll for operators that need an SMPL armature as the active object (says why not)."""
    ok, reason = pc.check_smpl_armature(resolve_ghost(active_object(context)))
    if not ok:
        cls.poll_message_set(reason)
    return ok


def smpl_object(context: Any) -> Any:
    """The active SMPL armature (a candidate ghost resolves to its character); OpError otherwise."""
    obj = resolve_ghost(active_object(context))
    ok, reason = pc.check_smpl_armature(obj)
    if not ok:
        raise OpError(reason)
    return obj


class StatePoll:
    """Mix-in poll for operators that need an SMPL armature *and* an earlier result to work on.

    Subclasses set ``missing_state`` (the poll message) and implement ``has_state(context)``.
    """

    missing_state = ""

    @classmethod
    def has_state(cls, context: Any) -> bool:
        raise NotImplementedError

    @classmethod
    def poll(cls, context: Any) -> bool:
        if not smpl_poll(cls, context):
            return False
        if not cls.has_state(context):
            cls.poll_message_set(cls.missing_state)
            return False
        return True


def active_action(obj: Any) -> Any:
    ad = obj.animation_data
    if ad is None or ad.action is None:
        raise OpError(f"'{obj.name}' has no active action: key or import some animation first")
    return ad.action


def finite_or_raise(a: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(a)):
        raise OpError(f"{what} contains NaN or infinite values; fix or delete those keys first")
    return a


def current_body_pose(obj: Any, rig: pc.SMPLRig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The armature's current body pose (21,3) and root orientation (3,); OpError on NaN rotations."""
    body, root, _ = pc.read_smpl_pose(obj, rig)
    if not np.all(np.isfinite(body)):
        raise OpError(f"the current pose of '{obj.name}' contains NaN values")
    return body, root


def object_after_call(name: str, doing: str) -> Any:
    """The object ``name`` again once the backend has answered; OpError if it was deleted meanwhile."""
    obj = bpy.data.objects.get(name)
    if obj is None:
        raise OpError(f"'{name}' was deleted while {doing}")
    return obj


def read_motion(obj: Any, action: Any, rig: pc.SMPLRig | None = None) -> dict[str, np.ndarray]:
    """``action_io.read_smpl_motion`` of ``obj``'s ``action``, with a read failure as an OpError."""
    from .. import action_io as aio

    try:
        return aio.read_smpl_motion(obj, action, rig=rig)
    except ValueError as ex:
        raise OpError(str(ex)) from None


def object_and_action_after_call(job: dict, doing: str) -> tuple[Any, Any]:
    """``job["obj"]`` and ``job["action"]`` again once the backend has answered; OpError if either is gone."""
    obj = bpy.data.objects.get(job["obj"])
    action = bpy.data.actions.get(job["action"])
    if obj is None or action is None:
        raise OpError(f"the armature or its action was removed while {doing}")
    return obj, action


def scene_fps(scene: Any) -> float:
    return float(scene.render.fps) / float(scene.render.fps_base or 1.0)


def body_bone_names(rig: pc.SMPLRig) -> list[str]:
    return [rig.bone_names[j] for j in range(1, 22)]


# ----------------------------------------------------------------------------------------- FK (numpy)

def fk_joints(body_pose: np.ndarray, root_orient: np.ndarray | None = None,
              trans: np.ndarray | None = None) -> np.ndarray:
    """SMPL forward kinematics of the 22 body joints (T,22,3), SMPL frame, metres (for reports)."""
    sk = smpl_skeleton()
    bp = np.asarray(body_pose, dtype=np.float64).reshape(-1, 21, 3)
    T = bp.shape[0]
    ro = np.zeros((T, 3)) if root_orient is None else np.asarray(root_orient, np.float64).reshape(T, 3)
    R = pc.axis_angle_to_matrix(np.concatenate([ro[:, None], bp], axis=1))  # (T,22,3,3)
    rest = sk.rest_joints[:22]
    W = np.empty_like(R)
    J = np.empty((T, 22, 3))
    W[:, 0] = R[:, 0]
    J[:, 0] = rest[0]
    for j in range(1, 22):
        p = sk.parents[j]
        W[:, j] = W[:, p] @ R[:, j]
        J[:, j] = J[:, p] + np.einsum("tij,j->ti", W[:, p], rest[j] - rest[p])
    if trans is not None:
        J = J + np.asarray(trans, np.float64).reshape(T, 1, 3)
    return J


# ----------------------------------------------------------------------------------------- pose at a frame

def pose_quats_at(obj: Any, action: Any, frame: float, rig: pc.SMPLRig) -> tuple[np.ndarray, np.ndarray | None]:
    """Pose-bone quaternions (24,4) and pelvis location (3,) or None, evaluated from ``action`` at ``frame``
    (channels without an F-curve: the bone's current value). No scene change."""
    from .. import action_io as aio

    curves = {(fc.data_path, fc.array_index): fc for fc in aio.action_fcurves(action, obj)}
    cur_q, cur_loc = pc.read_pose_quats(obj, rig)
    q = cur_q.copy()
    for j in rig.present():
        path = aio.ROT_PATH.format(rig.bone_names[j])
        for i in range(4):
            fc = curves.get((path, i))
            if fc is not None:
                q[j, i] = fc.evaluate(float(frame))
    loc = None
    lp = aio.LOC_PATH.format(rig.bone_names[0])
    if any((lp, i) in curves for i in range(3)):
        loc = cur_loc.copy()
        for i in range(3):
            fc = curves.get((lp, i))
            if fc is not None:
                loc[i] = fc.evaluate(float(frame))
    finite_or_raise(q, f"action '{action.name}' at frame {frame:g}")
    if loc is not None:
        finite_or_raise(loc, f"action '{action.name}' at frame {frame:g}")
    return q, loc


# ----------------------------------------------------------------------------------------- bulk F-curve edits

def fcurve_container(obj: Any, action: Any, create: bool = True) -> Any:
    from .. import action_io as aio

    slot = aio.action_slot_for(obj, action) if aio.uses_slotted_actions() else None
    if aio.uses_slotted_actions() and slot is None and create:
        _, slot = aio.ensure_action(obj, action)
    return aio.channelbag(action, slot, create=create)


def get_fcurve(container: Any, data_path: str, index: int, group: str | None) -> Any:
    """Find or create an F-curve (slotted channelbag on 4.4+, ``action.fcurves`` on 4.2)."""
    from .. import action_io as aio

    fcs = container.fcurves
    fc = fcs.find(data_path, index=index)
    if fc is not None:
        return fc
    if aio.uses_slotted_actions():
        try:
            fc = fcs.new(data_path, index=index, group_name=group or "")
        except TypeError:
            fc = fcs.new(data_path, index=index)
            if group:
                fc.group = container.groups.get(group) or container.groups.new(group)
    else:
        fc = fcs.new(data_path, index=index, action_group=group or "")
    return fc


def replace_keys_in_range(fc: Any, lo: float, hi: float, frames: np.ndarray, values: np.ndarray,
                          key_type: int | None, interpolation: int | None = None) -> None:
    """Remove the keys strictly inside (lo, hi) and add ``frames``/``values`` in one bulk write.

    Keys outside the range keep their values bit-exact (float32 read back and written unchanged).
    """
    kps = fc.keyframe_points
    n = len(kps)
    if n:
        co = np.empty(2 * n, dtype=np.float32)
        kps.foreach_get("co", co)
        inside = np.nonzero((co[0::2] > lo) & (co[0::2] < hi))[0]
        for i in inside[::-1]:
            kps.remove(kps[int(i)], fast=True)
    m = len(kps)
    k = len(frames)
    if k == 0:
        fc.update()
        return
    kps.add(k)
    co = np.empty(2 * (m + k), dtype=np.float32)
    kps.foreach_get("co", co)
    co[2 * m::2] = frames
    co[2 * m + 1::2] = values
    kps.foreach_set("co", co)
    for attr, val in (("type", key_type), ("interpolation", interpolation)):
        if val is None:
            continue
        arr = np.empty(m + k, dtype=np.int32)
        kps.foreach_get(attr, arr)
        arr[m:] = val
        kps.foreach_set(attr, arr)
    # new points: handles at their keys (update() recomputes auto handles)
    hl = np.empty(2 * (m + k), dtype=np.float32)
    kps.foreach_get("handle_left", hl)
    hl[2 * m:] = co[2 * m:]
    kps.foreach_set("handle_left", hl)
    kps.foreach_set("handle_right", hl)
    fc.update()


def hemisphere_align(q: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Flip quaternions (T,B,4) so consecutive ones (starting from ``ref`` (B,4)) have a positive dot."""
    out = np.array(q, dtype=np.float64, copy=True)
    prev = np.asarray(ref, dtype=np.float64)
    for t in range(out.shape[0]):
        s = np.where(np.sum(out[t] * prev, axis=-1, keepdims=True) < 0, -1.0, 1.0)
        out[t] *= s
        prev = out[t]
    return out


# ----------------------------------------------------------------------------------------- the operator base

class BackendOperator:
    """Mix-in for operators that run one backend request (see the module docstring)."""

    bl_options = {'REGISTER', 'UNDO'}
    progress_label = "Working"

    _future: Any = None
    _timer: Any = None

    @classmethod
    def poll(cls, context: Any) -> bool:
        return smpl_poll(cls, context)

    # -- to implement --------------------------------------------------------------------------
    def build_request(self, context: Any) -> tuple[str, dict]:
        raise NotImplementedError

    def apply_result(self, context: Any, result: Any) -> set[str]:
        raise NotImplementedError

    def say(self, kind: set[str], message: str) -> None:
        """``report``, also remembered by the runtime (the panel shows the last error under the status)."""
        runtime.note_report(next(iter(kind), 'INFO'), message)
        self.report(kind, message)

    def follow_up(self, context: Any, result: Any) -> tuple[str, dict] | None:
        """Optional second request built from the first result (e.g. scores of sampled poses); None: done."""
        return None

    # -- blocking ------------------------------------------------------------------------------
    def _request(self, context: Any) -> tuple[str, dict] | None:
        """``build_request``, with a refusal reported as an error (then None)."""
        try:
            return self.build_request(context)
        except OpError as ex:
            self.say({'ERROR'}, str(ex))
            return None

    def execute(self, context: Any) -> set[str]:
        request = self._request(context)
        if request is None:
            return {'CANCELLED'}
        while request is not None:
            rtype, params = request
            try:
                result = runtime.call(rtype, **params)
                request = self.follow_up(context, result)
            except OpError as ex:
                self.say({'ERROR'}, str(ex))
                return {'CANCELLED'}
            except Exception as ex:  # noqa: BLE001 - every failure becomes a report
                self.say({'ERROR'}, runtime.describe_error(ex))
                return {'CANCELLED'}
        return self._apply(context, result)

    def _apply(self, context: Any, result: Any) -> set[str]:
        try:
            return self.apply_result(context, result)
        except OpError as ex:
            self.say({'ERROR'}, str(ex))
            return {'CANCELLED'}
        except Exception as ex:  # noqa: BLE001
            self.say({'ERROR'}, f"Writing the result failed: {ex}")
            return {'CANCELLED'}

    # -- modal ---------------------------------------------------------------------------------
    # Blender's ``Event`` has type, value, modifiers and the mouse, nothing else (no ``timer``): the
    # modal loop polls the future on every TIMER event, whoever's timer it is (``done()`` is cheap).
    # Every path out of ``modal`` goes through ``_cleanup`` (``_fail`` for an exception, ours or
    # Blender's): one plain report, the busy state and the progress cleared.

    _progress: Any = None
    _shown: Any = None  # the (fraction, message) last shown in the status bar

    def _blocking(self, context: Any) -> bool:
        """Run blocking (``execute``) instead of modal: background mode, or no window to drive a modal."""
        return bool(bpy.app.background) or context.window is None

    def _add_modal_handler(self, context: Any) -> None:
        context.window_manager.modal_handler_add(self)

    def invoke(self, context: Any, event: Any) -> set[str]:
        if self._blocking(context):
            return self.execute(context)
        runtime.clear_stale_progress()
        prog = runtime.progress()
        if prog is not None:
            self.say({'WARNING'}, f"DPoser is busy ({prog.label}); wait for it or press Esc")
            return {'CANCELLED'}
        request = self._request(context)
        if request is None:
            return {'CANCELLED'}
        rtype, params = request
        try:
            self._future = runtime.submit(rtype, **params)
        except Exception as ex:  # noqa: BLE001
            self.say({'ERROR'}, runtime.describe_error(ex))
            return {'CANCELLED'}
        try:
            wm = context.window_manager
            self._progress = runtime.begin_progress(self.progress_label)
            self._timer = wm.event_timer_add(0.1, window=context.window)
            self._add_modal_handler(context)
            wm.progress_begin(0, 100)
            self._status(context, 0.0, "")
        except Exception as ex:  # noqa: BLE001
            return self._fail(context, ex)
        return {'RUNNING_MODAL'}

    def _status(self, context: Any, fraction: float, message: str) -> None:
        runtime.update_progress(fraction, message)
        text = f"DPoser {progress_text(runtime.progress())}   Esc to cancel" if runtime.progress() else ""
        try:
            # the status bar only: redrawing the sidebar would redraw the viewport under it too (region
            # overlap), the costliest part of a frame; the panel shows that the operation runs
            context.workspace.status_text_set(text)
            context.window_manager.progress_update(int(100 * fraction))
        except Exception:  # noqa: BLE001
            pass

    def _cleanup(self, context: Any) -> None:
        """Remove the timer, the status text and the progress (only ours); never raises."""
        fut, self._future = self._future, None
        if fut is not None and not fut.done():
            try:
                fut.cancel()
            except Exception:  # noqa: BLE001
                pass
        timer, self._timer = self._timer, None
        try:
            wm = context.window_manager
            if timer is not None:
                wm.event_timer_remove(timer)
            wm.progress_end()
            context.workspace.status_text_set(None)
        except Exception:  # noqa: BLE001
            pass
        runtime.end_progress(self._progress)
        self._progress = None

    def _fail(self, context: Any, ex: BaseException) -> set[str]:
        """Any unexpected failure: clean up, one plain report, the operator is cancelled."""
        self._cleanup(context)
        runtime.note_error(ex)
        self.say({'ERROR'}, f"DPoser {self.progress_label} failed: {runtime.describe_error(ex)}")
        return {'CANCELLED'}

    def modal(self, context: Any, event: Any) -> set[str]:
        try:
            return self._modal(context, event)
        except Exception as ex:  # noqa: BLE001 - a modal must never leave DPoser busy
            return self._fail(context, ex)

    def _modal(self, context: Any, event: Any) -> set[str]:
        fut = self._future
        if fut is None or self._progress is None or runtime.progress() is not self._progress:
            # Stop Backend (or an add-on reload) took the operation away: leave quietly
            self._cleanup(context)
            self.say({'WARNING'}, f"{self.progress_label} stopped; nothing was changed.")
            return {'CANCELLED'}
        if event.type == 'ESC' and event.value == 'PRESS':
            self._cleanup(context)
            self.say({'WARNING'}, f"{self.progress_label} cancelled; nothing was changed.")
            return {'CANCELLED'}
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        runtime.heartbeat(self._progress)
        if not fut.done():
            shown = fut.progress
            if shown != self._shown:  # redraw only when the progress changed
                self._shown = shown
                self._status(context, *shown)
            return {'RUNNING_MODAL'}
        self._future = None
        try:
            result = fut.result(0)
        except Exception as ex:  # noqa: BLE001
            self._cleanup(context)
            runtime.note_error(ex)
            self.say({'ERROR'}, runtime.describe_error(ex))
            return {'CANCELLED'}
        request = self.follow_up(context, result)
        if request is not None:  # a second request in the same operation (and the same undo step)
            self._future = runtime.submit(request[0], **request[1])
            return {'RUNNING_MODAL'}
        self._cleanup(context)
        return self._apply(context, result)

    def cancel(self, context: Any) -> None:
        """Blender calls this when the modal operator is aborted (file load, window closed)."""
        self._cleanup(context)


class FilePickedRequest(BackendOperator):
    """A backend operator whose input is a file the user picks: with no ``filepath`` its button opens the
    file browser (``ImportHelper``, which the operator class must also derive from); once a file is picked
    it runs modal like every long operation, so the window stays live."""

    def invoke(self, context: Any, event: Any) -> set[str]:
        if not self.filepath:
            return ImportHelper.invoke(self, context, event)
        return BackendOperator.invoke(self, context, event)

    def execute(self, context: Any) -> set[str]:
        if not self._blocking(context):  # after the file browser
            return BackendOperator.invoke(self, context, None)
        return BackendOperator.execute(self, context)
