"""Add-on preferences: backend Python (auto-discovered; a button tests it), device, weights, SMPL model."""

from typing import Any

import bpy
from bpy.props import EnumProperty, StringProperty

from . import runtime
from .dposer_core.constants import DEVICES
from .ui_text import wrapped_label

#: label, description and the stored enum number (kept when the list changes: saved preferences stay valid)
DEVICE_LABELS = {
    "auto": ("Auto", "A GPU when available (CUDA, then MPS), else the CPU", 0),
    "cuda": ("CUDA", "NVIDIA GPU (falls back to the CPU, with a note, when unusable)", 1),
    "cpu": ("CPU", "Always the CPU", 2),
    "mps": ("MPS", "Apple GPU (falls back to the CPU, with a note, when unusable)", 3),
}
DEVICE_ITEMS = [(name, *DEVICE_LABELS[name]) for name in DEVICES]


def _settings_changed(self: Any, context: Any) -> None:
    # the next request rebuilds the client with the new settings (runtime.client compares them)
    runtime.redraw()


class DPoserPreferences(bpy.types.AddonPreferences):
    bl_idname = runtime.ADDON_ID

    backend_python: StringProperty(
        name="Backend Python", subtype='FILE_PATH', update=_settings_changed,
        description="Python with PyTorch that runs the backend (empty: auto-discover the checkout's .venv, "
                    "then $DPOSER_PYTHON)")
    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="auto", update=_settings_changed)
    weights_path: StringProperty(
        name="Weights", subtype='FILE_PATH', update=_settings_changed,
        description="Pose-prior checkpoint (.pt); empty: the weights shipped with the extension")
    smpl_model_path: StringProperty(
        name="SMPL Model", subtype='FILE_PATH',
        description="Optional SMPL model file (.npz / .pkl) for the real body mesh instead of the mannequin")

    def draw(self, context: Any) -> None:
        layout = self.layout
        col = layout.column()
        col.label(text="Backend Python (a Python 3.11 with PyTorch)")
        row = col.row(align=True)
        row.prop(self, "backend_python", text="")
        row.operator("dposer.backend_test", text="Test", icon='PLAY')
        if not self.backend_python:
            wrapped_label(col, context, "Empty: found automatically (the checkout's .venv, then $DPOSER_PYTHON)",
                          icon='INFO')
        col.prop(self, "device")
        col.prop(self, "weights_path")
        if not self.weights_path:
            wrapped_label(col, context, f"Empty: the shipped weights, {runtime.shipped_weights_path()}", icon='INFO')
        col.prop(self, "smpl_model_path")
        box = layout.box()
        state, text = runtime.status()
        icon = {"READY": 'CHECKMARK', "ERROR": 'ERROR', "STARTING": 'SORTTIME'}.get(state, 'DOT')
        wrapped_label(box, context, text, icon=icon)
        hello = runtime.last_hello()
        if hello and state == runtime.READY:
            if hello.get("device_note"):
                wrapped_label(box, context, str(hello["device_note"]), icon='ERROR')
            if hello.get("weights_path"):
                wrapped_label(box, context, f"Weights: {hello['weights_path']}", icon='BLANK1')
            if hello.get("weights_error"):
                wrapped_label(box, context, f"Weights: {hello['weights_error'].get('message', '')}", icon='ERROR')
        wrapped_label(box, context, f"Log: {runtime.log_path()}", icon='TEXT')


CLASSES = [DPoserPreferences]
HOOKS: list = []
