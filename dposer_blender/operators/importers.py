"""Import an AMASS ``.npz`` or a BVH of a known skeleton family onto the SMPL armature.

The backend reads the file (``read_amass`` / ``retarget_bvh``) and resamples it to the scene fps; the
motion is written in one pass as a new action named after the file. Without an active SMPL armature
one is added. Also in File > Import.
"""

import os
from typing import Any

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from .. import runtime
from ..blender.actions import write_smpl_motion
from ..blender.armature import create_smpl_armature
from ..blender.rig import check_smpl_armature
from ._base import FilePickedRequest
from ._context import OpError, active_object, scene_fps


class DPOSER_OT_import_motion(FilePickedRequest, bpy.types.Operator, ImportHelper):
    """Import an AMASS .npz or a BVH motion onto the SMPL armature (as an action at the scene fps)"""

    bl_idname = "dposer.import_motion"
    bl_label = "Import Motion (DPoser)"
    bl_options = {'REGISTER', 'UNDO'}
    progress_label = "Importing"

    filename_ext = ".npz;.bvh"
    filter_glob: StringProperty(default="*.npz;*.bvh", options={'HIDDEN'})
    family: StringProperty(name="BVH Family", description="Skeleton family of a BVH file (empty: detect)",
                           default="")
    set_frame_range: BoolProperty(name="Set Frame Range", description="Set the scene's frame range to the motion",
                                  default=True)

    @classmethod
    def poll(cls, context: Any) -> bool:
        return True  # adds an SMPL armature when none is active

    def build_request(self, context: Any) -> tuple[str, dict]:
        path = os.path.abspath(bpy.path.abspath(self.filepath))
        if not os.path.isfile(path):
            raise OpError(f"No such file: {path}")
        ext = os.path.splitext(path)[1].lower()
        fps = scene_fps(context.scene)
        self._job = dict(path=path, fps=fps)
        if ext == ".npz":
            return "read_amass", {"path": path, "fps": fps}
        if ext == ".bvh":
            return "retarget_bvh", {"path": path, "fps": fps, "family": self.family or None}
        raise OpError(f"{os.path.basename(path)} is neither an AMASS .npz nor a .bvh file")

    def apply_result(self, context: Any, result: Any) -> set[str]:
        scene = context.scene
        obj = active_object(context)
        if not check_smpl_armature(obj)[0]:
            prefs = runtime.settings()
            obj = create_smpl_armature(context, smpl_model_path=prefs.smpl_model)
        body = result.body_pose
        T = int(body.shape[0])
        name = os.path.splitext(os.path.basename(self._job["path"]))[0]
        start = scene.frame_start
        act = write_smpl_motion(obj, body, result.root_orient, result.trans, frame_start=start,
                                    floor_based_trans=True, name=name)
        act["dposer_source"] = self._job["path"]
        act["dposer_fps"] = float(result.fps)
        if self.set_frame_range:
            scene.frame_start, scene.frame_end = start, start + T - 1
        scene.frame_set(start)
        self.report({'INFO'}, f"Imported {name}: {T} frames at {result.fps:g} fps onto '{obj.name}'")
        return {'FINISHED'}


def menu_func_import(self: Any, context: Any) -> None:
    self.layout.operator(DPOSER_OT_import_motion.bl_idname, text="DPoser Motion (.npz AMASS, .bvh)")


def _reg() -> None:
    bpy.types.TOPBAR_MT_file_import.append(menu_func_import)


def _unreg() -> None:
    bpy.types.TOPBAR_MT_file_import.remove(menu_func_import)


CLASSES = [DPOSER_OT_import_motion]
HOOKS = [(_reg, _unreg)]
