"""Denoise: the active action (or the scene frame range of it) -> a new action ``<name>_dposer``.

The original action is kept in a muted NLA track ("DPoser original"), so nothing is lost and it is
saved with the file. The report gives the frame count before/after and the mean joint change (mm).
"""

from typing import Any

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty

from ..blender import fcurves
from ..blender.actions import write_smpl_motion
from ..blender.rig import SMPLRig
from ..dposer_core.kinematics_np import forward_kinematics
from ..properties import NOISE_ITEMS
from ._base import BackendOperator
from ._context import OpError, active_action, object_and_action_after_call, read_motion, smpl_object

NLA_TRACK = "DPoser original"


def has_location(obj: Any, action: Any, rig: SMPLRig) -> bool:
    path = fcurves.LOC_PATH.format(rig.bone_names[0])
    return any(fc.data_path == path for fc in fcurves.action_fcurves(action, obj))


def keep_in_muted_track(obj: Any, action: Any, start: float) -> Any:
    """Put ``action`` into a new muted NLA track of ``obj`` (its user keeps it alive across save/reload)."""
    ad = obj.animation_data or obj.animation_data_create()
    track = ad.nla_tracks.new()
    track.name = NLA_TRACK
    strip = track.strips.new(action.name, int(round(start)), action)
    if hasattr(strip, "action_slot") and getattr(strip, "action_slot", None) is None:
        slot = fcurves.action_slot_for(obj, action)
        if slot is not None:
            try:
                strip.action_slot = slot
            except (AttributeError, TypeError, RuntimeError):
                pass
    track.mute = True
    return track


class DPOSER_OT_denoise(BackendOperator, bpy.types.Operator):
    """Clean up a noisy motion with the pose prior into a new action (the original is kept in a muted NLA track)"""

    bl_idname = "dposer.denoise"
    bl_label = "Denoise Motion"
    bl_options = {'REGISTER', 'UNDO'}
    progress_label = "Denoising"

    noise: EnumProperty(name="Noise", items=NOISE_ITEMS, default="AUTO")
    noise_mm: FloatProperty(name="Noise (mm)", description="Noise standard deviation per coordinate", default=40.0,
                            min=0.0, max=1000.0)
    use_frame_range: BoolProperty(name="Scene Frame Range", description="Only the frames in the scene's range",
                                  default=False)
    seed: IntProperty(name="Seed", default=0, min=0)

    def scene_defaults(self, settings: Any) -> dict[str, Any]:
        return {"noise": settings.noise, "noise_mm": settings.noise_mm, "use_frame_range": settings.use_frame_range}

    def build_request(self, context: Any) -> tuple[str, dict]:
        obj = smpl_object(context)
        action = active_action(obj)
        rig = SMPLRig.from_armature(obj)
        m = read_motion(obj, action, rig)
        frames = m["frames"]
        sel = np.ones(len(frames), dtype=bool)
        if self.use_frame_range:
            sc = context.scene
            sel = (frames >= sc.frame_start - 1e-6) & (frames <= sc.frame_end + 1e-6)
        if sel.sum() < 2:
            raise OpError(f"action '{action.name}' has {int(sel.sum())} keyed frame(s) to denoise; it needs at least 2")
        body = m["body_pose"][sel]
        root, trans = m["root_orient"][sel], m["trans"][sel]
        for a, what in ((body, "body rotations"), (root, "root rotation"), (trans, "root location")):
            if not np.all(np.isfinite(a)):
                raise OpError(f"action '{action.name}' contains NaN values in its {what}")
        self._job = dict(obj=obj.name, action=action.name, frames=frames[sel], body=body, root=root, trans=trans,
                         loc=has_location(obj, action, rig))
        return "denoise", {"poses": body.astype(np.float32), "root_orient": root.astype(np.float32),
                           "trans": trans.astype(np.float32),
                           "noise_mm": float(self.noise_mm) if self.noise == "MM" else None, "seed": int(self.seed)}

    def apply_result(self, context: Any, result: Any) -> set[str]:
        job = self._job
        obj, src = object_and_action_after_call(job, "denoising")
        poses = np.asarray(result.poses, np.float64)
        T = len(job["frames"])
        if poses.shape != (T, 63) or not np.all(np.isfinite(poses)):
            raise OpError(f"the backend returned {poses.shape[0]} frames, expected {T}")
        rig = SMPLRig.from_armature(obj)
        keep_in_muted_track(obj, src, job["frames"][0])
        new = write_smpl_motion(obj, poses, job["root"], job["trans"] if job["loc"] else None,
                                    frames=job["frames"], name=f"{src.name}_dposer", rig=rig)
        before = forward_kinematics(job["body"])
        after = forward_kinematics(poses)
        change_mm = 1000.0 * float(np.linalg.norm(after - before, axis=-1).mean())
        noise = getattr(result, "noise_mm", None)
        self.report({'INFO'}, f"Denoised '{src.name}' into '{new.name}': {T} frames before, {T} after, "
                              f"mean joint change {change_mm:.1f} mm"
                              + (f" (noise level {noise:.0f} mm)" if noise is not None else "")
                              + f"; the original is in the muted NLA track '{NLA_TRACK}'")
        obj["dposer_last_denoise"] = {"source": src.name, "result": new.name, "frames_before": T, "frames_after": T,
                                      "mean_joint_change_mm": change_mm}
        context.scene.frame_set(context.scene.frame_current)
        return {'FINISHED'}


CLASSES = [DPOSER_OT_denoise]
HOOKS: list = []
