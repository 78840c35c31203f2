"""Add SMPL Armature (with the mannequin, or the real SMPL mesh when a model file is set)."""

from typing import Any

import bpy
from bpy.props import BoolProperty

from .. import runtime
from ..blender.armature import create_smpl_armature


class DPOSER_OT_add_smpl_armature(bpy.types.Operator):
    """Add an SMPL armature (24 bones, SMPL-X add-on names) with a mannequin body"""

    bl_idname = "dposer.add_smpl_armature"
    bl_label = "Add SMPL Armature"
    bl_options = {'REGISTER', 'UNDO'}

    body: BoolProperty(name="Body", description="Add the mannequin (or the SMPL mesh set in Preferences)",
                       default=True)

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None  # create_smpl_armature switches to Object Mode itself

    def execute(self, context: Any) -> set[str]:
        try:
            obj = create_smpl_armature(context, mannequin=self.body, smpl_model_path=runtime.settings().smpl_model)
            if context.scene.cursor is not None:
                lift = obj.location.z
                obj.location = (context.scene.cursor.location.x, context.scene.cursor.location.y,
                                context.scene.cursor.location.z + lift)
        except Exception as ex:  # noqa: BLE001
            self.report({'ERROR'}, f"Could not add the SMPL armature: {ex}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"Added '{obj.name}'")
        return {'FINISHED'}


def menu_func_add(self: Any, context: Any) -> None:
    self.layout.operator(DPOSER_OT_add_smpl_armature.bl_idname, icon='OUTLINER_OB_ARMATURE')


def _reg() -> None:
    bpy.types.VIEW3D_MT_armature_add.append(menu_func_add)


def _unreg() -> None:
    bpy.types.VIEW3D_MT_armature_add.remove(menu_func_add)


CLASSES = [DPOSER_OT_add_smpl_armature]
HOOKS = [(_reg, _unreg)]
