"""The DPoser sidebar (3D Viewport > Sidebar > "DPoser"): UI only, the work is in ``operators/``.

Panel settings live in ``scene.dposer`` (a PropertyGroup) and are passed to the operators as their
properties, so every operator also works on its own from scripts.
"""

from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty

from . import pose_convert as pc
from . import runtime
from .operators import complete as _complete
from .operators import inbetween as _inbetween
from .operators import plausibility as _plaus
from .operators import sample as _sample
from .operators._base import resolve_ghost


class DPoserSceneSettings(bpy.types.PropertyGroup):
    n: IntProperty(name="Count", default=6, min=1, max=64)
    seed: IntProperty(name="Seed", description="-1: random each time", default=-1, min=-1)
    sampler: EnumProperty(name="Sampler", items=_sample.SAMPLERS, default="ddim")
    steps: IntProperty(name="Steps", description="0: the sampler's default", default=0, min=0, max=5000)
    strength: FloatProperty(name="Strength", default=0.3, min=0.01, max=1.0, subtype='FACTOR')
    candidate: IntProperty(name="Candidate", description="Candidate to apply", default=1, min=1)
    use_auto_range: BoolProperty(name="Auto A/B", description="Previous/next keyframe around the current frame",
                                 default=True)
    frame_a: IntProperty(name="A", default=1)
    frame_b: IntProperty(name="B", default=24)
    ease: EnumProperty(name="Ease", items=_inbetween.EASES, default="linear")
    root: EnumProperty(name="Root", items=_inbetween.ROOT_MODES, default="INTERPOLATE")
    hypotheses: IntProperty(name="Hypotheses", default=5, min=1, max=50)
    complete_steps: IntProperty(name="Steps", default=200, min=1, max=5000)
    noise: EnumProperty(name="Noise", items=[("AUTO", "Auto", ""), ("MM", "mm", "")], default="AUTO")
    noise_mm: FloatProperty(name="mm", default=40.0, min=0.0, max=1000.0)
    use_frame_range: BoolProperty(name="Scene Frame Range", default=False)
    worst_count: IntProperty(name="Count", default=5, min=1, max=1000)


def _settings(context: Any) -> DPoserSceneSettings:
    return context.scene.dposer


class _DPoserPanel:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "DPoser"


class _DPoserSubPanel(_DPoserPanel):
    bl_parent_id = "VIEW3D_PT_dposer"


class VIEW3D_PT_dposer(_DPoserPanel, bpy.types.Panel):
    bl_label = "DPoser"
    bl_idname = "VIEW3D_PT_dposer"

    def draw(self, context: Any) -> None:
        layout = self.layout
        state, text = runtime.status()
        icon = {"READY": 'CHECKMARK', "ERROR": 'ERROR', "STARTING": 'SORTTIME'}.get(state, 'RADIOBUT_OFF')
        box = layout.box()
        box.label(text=text[:120], icon=icon)
        row = box.row(align=True)
        if state in (runtime.NOT_STARTED, runtime.ERROR):
            row.operator("dposer.backend_start", icon='PLAY')
        else:
            row.operator("dposer.backend_stop", icon='PAUSE')
        prog = runtime.progress()
        if prog is not None:
            label = f"{prog.label} {prog.fraction:.0%}" + (f" {prog.message}" if prog.message else "")
            if hasattr(box, "progress"):
                box.progress(factor=prog.fraction, type='BAR', text=label)
            else:
                box.label(text=label)
            box.label(text="Esc cancels", icon='CANCEL')
        layout.operator("dposer.add_smpl_armature", icon='OUTLINER_OB_ARMATURE')
        ok, reason = pc.check_smpl_armature(_target(context))
        if not ok:
            layout.label(text=reason[:120], icon='INFO')


def _target(context: Any) -> Any:
    return resolve_ghost(context.active_object)


class VIEW3D_PT_dposer_sample(_DPoserSubPanel, bpy.types.Panel):
    bl_label = "Sample"

    def draw(self, context: Any) -> None:
        s = _settings(context)
        layout = self.layout
        col = layout.column(align=True)
        col.prop(s, "n")
        col.prop(s, "seed")
        col.prop(s, "sampler")
        col.prop(s, "steps")
        op = layout.operator("dposer.sample", icon='OUTLINER_OB_ARMATURE')
        op.n, op.seed, op.sampler, op.steps = s.n, s.seed, s.sampler, s.steps
        row = layout.row(align=True)
        row.prop(s, "strength")
        op = row.operator("dposer.variations", text="Variations")
        op.n, op.seed, op.steps, op.strength = s.n, s.seed, s.steps, s.strength
        tgt = _target(context)
        ghosts = _sample.ghosts_of(tgt) if tgt is not None and tgt.type == 'ARMATURE' else []
        if ghosts:
            box = layout.box()
            box.label(text=f"{len(ghosts)} candidates: click one in the viewport, or")
            row = box.row(align=True)
            row.prop(s, "candidate")
            idx = min(s.candidate, len(ghosts)) - 1
            op = row.operator("dposer.apply_candidate", text="Apply")
            op.index, op.key = idx, False
            op = row.operator("dposer.apply_candidate", text="Apply & Key", icon='KEY_HLT')
            op.index, op.key = idx, True
            box.operator("dposer.clear_candidates", icon='X')


class VIEW3D_PT_dposer_inbetween(_DPoserSubPanel, bpy.types.Panel):
    bl_label = "In-between"

    def draw(self, context: Any) -> None:
        s = _settings(context)
        layout = self.layout
        layout.prop(s, "use_auto_range")
        tgt = _target(context)
        if s.use_auto_range:
            a = b = None
            if tgt is not None and pc.check_smpl_armature(tgt)[0]:
                a, b = _inbetween.default_range(tgt, context.scene.frame_current)
            layout.label(text=f"A = {a if a is not None else '–'}   B = {b if b is not None else '–'}")
        else:
            row = layout.row(align=True)
            row.prop(s, "frame_a")
            row.prop(s, "frame_b")
        layout.prop(s, "ease")
        layout.prop(s, "root", expand=True)
        op = layout.operator("dposer.inbetween", icon='IPO_EASE_IN_OUT')
        op.frame_a = -1 if s.use_auto_range else s.frame_a
        op.frame_b = -1 if s.use_auto_range else s.frame_b
        op.ease, op.root = s.ease, s.root


class VIEW3D_PT_dposer_complete(_DPoserSubPanel, bpy.types.Panel):
    bl_label = "Complete"

    def draw(self, context: Any) -> None:
        s = _settings(context)
        layout = self.layout
        layout.label(text="Selected and rotation-locked bones are kept", icon='LOCKED')
        row = layout.row(align=True)
        row.prop(s, "hypotheses")
        row.prop(s, "complete_steps")
        op = layout.operator("dposer.complete", icon='MOD_ARMATURE')
        op.hypotheses, op.steps = s.hypotheses, s.complete_steps
        tgt = _target(context)
        h = _complete.hypotheses(tgt) if tgt is not None and tgt.get(_complete.PROP) is not None else None
        if h is not None:
            row = layout.row(align=True)
            row.operator("dposer.complete_flip", text="", icon='TRIA_LEFT').direction = -1
            i = h["index"]
            row.label(text=f"{i + 1}/{h['count']}   score {h['scores'][i]:.3f}")
            row.operator("dposer.complete_flip", text="", icon='TRIA_RIGHT').direction = 1
            row = layout.row(align=True)
            row.operator("dposer.complete_apply", text="Apply", icon='KEY_HLT')
            row.operator("dposer.complete_discard", text="Discard", icon='X')


class VIEW3D_PT_dposer_denoise(_DPoserSubPanel, bpy.types.Panel):
    bl_label = "Denoise"

    def draw(self, context: Any) -> None:
        s = _settings(context)
        layout = self.layout
        row = layout.row(align=True)
        row.prop(s, "noise", expand=True)
        sub = row.row()
        sub.enabled = s.noise == "MM"
        sub.prop(s, "noise_mm")
        layout.prop(s, "use_frame_range")
        op = layout.operator("dposer.denoise", icon='MOD_SMOOTH')
        op.noise, op.noise_mm, op.use_frame_range = s.noise, s.noise_mm, s.use_frame_range
        tgt = _target(context)
        last = tgt.get("dposer_last_denoise") if tgt is not None else None
        if last is not None:
            layout.label(text=f"{last['frames_before']} → {last['frames_after']} frames, "
                              f"mean change {last['mean_joint_change_mm']:.1f} mm")


class VIEW3D_PT_dposer_import(_DPoserSubPanel, bpy.types.Panel):
    bl_label = "Import"

    def draw(self, context: Any) -> None:
        self.layout.operator("dposer.import_motion", text="AMASS .npz / BVH…", icon='IMPORT')


class VIEW3D_PT_dposer_plausibility(_DPoserSubPanel, bpy.types.Panel):
    bl_label = "Plausibility"

    def draw(self, context: Any) -> None:
        s = _settings(context)
        layout = self.layout
        layout.operator("dposer.plausibility", icon='GRAPH')
        row = layout.row(align=True)
        row.prop(s, "worst_count")
        row.operator("dposer.select_worst_frames", icon='MARKER_HLT').count = s.worst_count
        tgt = _target(context)
        if tgt is not None and tgt.type == 'ARMATURE' and _plaus.plausibility_fcurve(tgt) is not None:
            layout.label(text=f'Curve: {tgt.name}["{_plaus.PROP}"] (Graph Editor)', icon='FCURVE')


def _reg() -> None:
    bpy.types.Scene.dposer = PointerProperty(type=DPoserSceneSettings)


def _unreg() -> None:
    if hasattr(bpy.types.Scene, "dposer"):
        del bpy.types.Scene.dposer


CLASSES = [DPoserSceneSettings, VIEW3D_PT_dposer, VIEW3D_PT_dposer_sample, VIEW3D_PT_dposer_inbetween,
           VIEW3D_PT_dposer_complete, VIEW3D_PT_dposer_denoise, VIEW3D_PT_dposer_import,
           VIEW3D_PT_dposer_plausibility]
HOOKS = [(_reg, _unreg)]
