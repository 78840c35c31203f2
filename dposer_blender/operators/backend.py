"""Backend start / stop / test (Preferences button) operators."""

from typing import Any

import bpy

from .. import runtime
from ..client import PythonNotFound, find_python


def _start_backend(op: Any) -> str | None:
    """Start the backend; its status line, or None after reporting the failure on ``op``."""
    try:
        runtime.start()
    except Exception as ex:  # noqa: BLE001
        op.report({'ERROR'}, runtime.describe_error(ex))
        return None
    state, text = runtime.status()
    return text


class DPOSER_OT_backend_start(bpy.types.Operator):
    """Start the DPoser backend (a PyTorch subprocess)"""

    bl_idname = "dposer.backend_start"
    bl_label = "Start Backend"

    def execute(self, context: Any) -> set[str]:
        text = _start_backend(self)
        if text is None:
            return {'CANCELLED'}
        self.report({'INFO'}, text)
        return {'FINISHED'}


class DPOSER_OT_backend_stop(bpy.types.Operator):
    """Stop the DPoser backend (it starts again on the next request)"""

    bl_idname = "dposer.backend_stop"
    bl_label = "Stop Backend"

    @classmethod
    def poll(cls, context: Any) -> bool:
        if runtime.current_client() is None:
            cls.poll_message_set("The backend is not running")
            return False
        return True

    def execute(self, context: Any) -> set[str]:
        runtime.close()
        runtime.redraw()
        self.report({'INFO'}, "DPoser backend stopped")
        return {'FINISHED'}


class DPOSER_OT_backend_test(bpy.types.Operator):
    """Find the backend Python, start the backend with the current settings and show its torch version and device"""

    bl_idname = "dposer.backend_test"
    bl_label = "Test Backend"

    def execute(self, context: Any) -> set[str]:
        s = runtime.settings()
        try:
            found = find_python(s.python)
        except PythonNotFound as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        runtime.close()
        text = _start_backend(self)
        if text is None:
            return {'CANCELLED'}
        self.report({'INFO'}, f"Backend Python: {found.executable} ({found.source}, {found.detail}). {text}")
        return {'FINISHED'}


CLASSES = [DPOSER_OT_backend_start, DPOSER_OT_backend_stop, DPOSER_OT_backend_test]
HOOKS: list = []
