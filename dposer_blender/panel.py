"""The DPoser sidebar (3D Viewport > Sidebar > "DPoser"): UI only, the work is in ``operators/``.

The settings it shows live in ``scene.dposer`` (``properties.py``); the operators read them when a button
invokes them, so the panel only places the buttons.
"""

from typing import Any

import bpy

from . import runtime
from .blender.ghosts import ghost_of, ghosts_of, resolve_ghost
from .blender.rig import check_smpl_armature
from .operators import complete as _complete
from .operators import inbetween as _inbetween
from .operators import photo as _photo
from .operators import plausibility as _plaus
from .operators._hypotheses import draw_browser
from .properties import DPoserSceneSettings
from .ui_text import device_text, wrapped_label


def _settings(context: Any) -> DPoserSceneSettings:
    return context.scene.dposer


class _DPoserPanel:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "DPoser"


class _DPoserSubPanel(_DPoserPanel):
    bl_parent_id = "VIEW3D_PT_dposer"


class VIEW3D_PT_dposer(_DPoserPanel, bpy.types.Panel):
    """Backend and character: what every other DPoser panel needs."""

    bl_label = "DPoser"
    bl_idname = "VIEW3D_PT_dposer"

    def draw(self, context: Any) -> None:
        layout = self.layout
        state, text = runtime.status()
        icon = {"READY": 'CHECKMARK', "ERROR": 'ERROR', "STARTING": 'SORTTIME'}.get(state, 'RADIOBUT_OFF')
        box = layout.box()
        if state == runtime.READY:
            hello = runtime.last_hello() or {}
            box.label(text=f"Ready on {str(hello.get('device', '?')).upper()}", icon=icon)
            detail = device_text(hello)
            wrapped_label(box, context, detail)
        else:
            wrapped_label(box, context, text[:300], icon=icon)
        row = box.row(align=True)
        if state in (runtime.NOT_STARTED, runtime.ERROR):
            row.operator("dposer.backend_start", text="Start", icon='PLAY')
        else:
            row.operator("dposer.backend_stop", text="Stop", icon='PAUSE')
        prog = runtime.progress()
        if prog is not None:
            wrapped_label(box, context, f"{prog.label}… (progress in the status bar)", icon='SORTTIME')
            box.label(text="Esc cancels", icon='CANCEL')
        last = runtime.recent_reports()
        if last and last[-1][0] == 'ERROR' and prog is None:
            wrapped_label(box, context, last[-1][1][:300], icon='ERROR')
        col = layout.column()
        col.label(text="Character", icon='ARMATURE_DATA')
        col.operator("dposer.add_smpl_armature", text="Add SMPL Armature", icon='OUTLINER_OB_ARMATURE')
        tgt = _target(context)
        ok, reason = check_smpl_armature(tgt)
        if not ok:
            wrapped_label(col, context, reason[:300], icon='INFO')
        else:
            col.label(text=tgt.name, icon='CHECKMARK')


def _target(context: Any) -> Any:
    return resolve_ghost(context.active_object)


def _seed_steps(layout: Any, s: Any) -> None:
    row = layout.row(align=True)
    row.prop(s, "random_seed", text="Random Seed", toggle=True)
    sub = row.row(align=True)
    sub.enabled = not s.random_seed
    sub.prop(s, "seed", text="Seed")
    row = layout.row(align=True)
    row.prop(s, "auto_steps", text="Auto Steps", toggle=True)
    sub = row.row(align=True)
    sub.enabled = not s.auto_steps
    sub.prop(s, "steps", text="Steps")


class VIEW3D_PT_dposer_import(_DPoserSubPanel, bpy.types.Panel):
    bl_label = "Import"

    def draw(self, context: Any) -> None:
        self.layout.operator("dposer.import_motion", text="BVH / AMASS…", icon='IMPORT')


class VIEW3D_PT_dposer_clean(_DPoserSubPanel, bpy.types.Panel):
    bl_label = "Clean"

    def draw(self, context: Any) -> None:
        s = _settings(context)
        layout = self.layout
        layout.label(text="Denoise", icon='MOD_SMOOTH')
        row = layout.row(align=True)
        row.prop(s, "noise", expand=True)
        sub = row.row()
        sub.enabled = s.noise == "MM"
        sub.prop(s, "noise_mm", text="")
        layout.prop(s, "use_frame_range", text="Scene Range Only")
        layout.operator("dposer.denoise", text="Denoise to New Action", icon='MOD_SMOOTH')
        tgt = _target(context)
        last = tgt.get("dposer_last_denoise") if tgt is not None else None
        if last is not None:
            wrapped_label(layout, context, f"{last['frames_before']} frames cleaned, mean change "
                                           f"{last['mean_joint_change_mm']:.1f} mm; original in the NLA")
        layout.separator()
        layout.label(text="Plausibility", icon='GRAPH')
        layout.operator("dposer.plausibility", text="Score Every Frame", icon='GRAPH')
        row = layout.row(align=True)
        row.prop(s, "worst_count", text="Worst")
        row.operator("dposer.select_worst_frames", text="Mark", icon='MARKER_HLT')
        if tgt is not None and tgt.type == 'ARMATURE' and _plaus.plausibility_fcurve(tgt) is not None:
            wrapped_label(layout, context, f'Curve: ["{_plaus.PROP}"] in the Graph Editor', icon='FCURVE')


class VIEW3D_PT_dposer_pose(_DPoserSubPanel, bpy.types.Panel):
    bl_label = "Pose"

    def draw(self, context: Any) -> None:
        s = _settings(context)
        layout = self.layout
        col = layout.column(align=True)
        col.prop(s, "n")
        col.prop(s, "sampler", text="")
        _seed_steps(layout, s)
        row = layout.row(align=True)
        row.operator("dposer.sample", text="Sample", icon='OUTLINER_OB_ARMATURE')
        row.operator("dposer.variations", text="Variations")
        layout.prop(s, "strength", text="Variation Strength")
        tgt = _target(context)
        ghosts = ghosts_of(tgt) if tgt is not None and tgt.type == 'ARMATURE' else []
        if ghosts:
            box = layout.box()
            picked = ghost_of(context.active_object)
            if picked is not None:
                i = int(picked["dposer_ghost_index"])
                sc = picked.get("dposer_score")
                box.label(text=f"Picked {i + 1}" + (f", score {sc:.2f}" if sc is not None else ""), icon='RESTRICT_SELECT_OFF')
                idx = i
            else:
                wrapped_label(box, context, f"{len(ghosts)} candidates, best first. Click one, or pick by number:")
                box.prop(s, "candidate", text="Number")
                idx = min(s.candidate, len(ghosts)) - 1
            row = box.row(align=True)
            op = row.operator("dposer.apply_candidate", text="Apply")
            op.index, op.key = idx, False
            op = row.operator("dposer.apply_candidate", text="Apply & Key", icon='KEY_HLT')
            op.index, op.key = idx, True
            box.operator("dposer.clear_candidates", text="Clear", icon='X')
        layout.separator()
        layout.label(text="Complete", icon='MOD_ARMATURE')
        wrapped_label(layout, context, "Selected and locked bones stay; the rest is filled in.", icon='LOCKED')
        layout.prop(s, "hypotheses", text="Hypotheses")
        layout.operator("dposer.complete", text="Complete Pose", icon='MOD_ARMATURE')
        h = _complete.hypotheses(tgt)
        if h is not None:
            draw_browser(layout, h, "dposer.complete_flip", "dposer.complete_apply", "dposer.complete_discard")
        _draw_photo(layout, context, s, tgt)


def _draw_photo(layout: Any, context: Any, s: Any, tgt: Any) -> None:
    layout.separator()
    layout.label(text="From a Photo", icon='IMAGE_DATA')
    ok, msg = _photo.feature_state()
    layout.prop(s, "photo_hypotheses", text="Fits")
    layout.operator("dposer.pose_from_image", text="Pose from Image…", icon='FILE_IMAGE')
    if ok is False:
        wrapped_label(layout, context, msg or "Not available in the backend's Python", icon='INFO')
    h = _photo.hypotheses(tgt)
    if h is not None:
        draw_browser(layout, h, "dposer.photo_flip", "dposer.photo_apply", "dposer.photo_discard")


class VIEW3D_PT_dposer_inbetween(_DPoserSubPanel, bpy.types.Panel):
    bl_label = "In-between"

    def draw(self, context: Any) -> None:
        s = _settings(context)
        layout = self.layout
        layout.prop(s, "use_auto_range", text="Keys Around Current Frame")
        tgt = _target(context)
        if s.use_auto_range:
            a = b = None
            if tgt is not None and check_smpl_armature(tgt)[0]:
                a, b = _inbetween.default_range(tgt, context.scene.frame_current)
            layout.label(text=f"A = {a if a is not None else '–'}   B = {b if b is not None else '–'}")
        else:
            row = layout.row(align=True)
            row.prop(s, "frame_a")
            row.prop(s, "frame_b")
        layout.prop(s, "ease")
        layout.prop(s, "root", expand=True)
        layout.operator("dposer.inbetween", text="In-between", icon='IPO_EASE_IN_OUT')


CLASSES = [VIEW3D_PT_dposer, VIEW3D_PT_dposer_import, VIEW3D_PT_dposer_clean, VIEW3D_PT_dposer_pose,
           VIEW3D_PT_dposer_inbetween]
HOOKS: list = []
