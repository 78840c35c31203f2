"""The backend operator: one request (or two) to the backend, run blocking or modal, written in one pass.

:class:`BackendOperator` subclasses implement two methods:

* ``build_request(context) -> (request_type, params)`` - read the scene (main thread), validate;
  raise :class:`OpError` with a plain sentence to refuse. Must not change the scene.
* ``apply_result(context, result) -> set`` - write the result into the scene in one pass.

``execute`` runs the request blocking (background mode, scripts, tests, redo panel); ``invoke`` in an
interactive session submits it and goes modal: a window-manager timer polls the future, progress goes
to the status bar and the panel, Esc cancels (the scene has not been touched, so it stays exactly as
it was). Either way the scene is written once, on the main thread, and the operator is one undo step.

When invoked (a panel button, F3 search) an operator takes the properties it was not given from the scene
settings (:class:`SceneDefaults`, ``properties.py``); scripts pass them.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy_extras.io_utils import ImportHelper

from .. import runtime
from ..properties import DPoserSceneSettings, scene_settings
from ..ui_text import progress_text
from ._context import OpError, smpl_poll


class SceneDefaults:
    """Mix-in: on ``invoke``, each property named by :meth:`scene_defaults` that the caller did not set is
    taken from the scene settings (``scene.dposer``), so the panel's settings drive the operator without the
    panel copying them into it. A value Blender restored from the operator's last run (a "ghost") does not
    count as set: the settings win over it."""

    def scene_defaults(self, settings: DPoserSceneSettings) -> dict[str, Any]:
        """Operator property -> value from the scene settings (none by default)."""
        return {}

    def take_scene_defaults(self, context: Any) -> None:
        settings = scene_settings(context)
        if settings is None:
            return
        for name, value in self.scene_defaults(settings).items():
            if not self.properties.is_property_set(name, ghost=False):
                setattr(self, name, value)

    def invoke(self, context: Any, event: Any) -> set[str]:
        self.take_scene_defaults(context)
        return self.execute(context)


# ----------------------------------------------------------------------------------------- the operator base

class BackendOperator(SceneDefaults):
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
        self.take_scene_defaults(context)
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
