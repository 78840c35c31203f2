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
from .operators import photo as _photo
from .operators import plausibility as _plaus
from .operators import sample as _sample
from .operators._base import resolve_ghost
from .operators._hypotheses import draw_browser
from .ui_text import wrapped_label


class DPoserSceneSettings(bpy.types.PropertyGroup):
    n: IntProperty(name="Count", default=6, min=1, max=64)
    random_seed: BoolProperty(name="Random", description="A new random seed each time (off: a fixed seed, "
                              "the same poses again)", default=True)
    seed: IntProperty(name="Seed", description="The fixed random seed", default=0, min=0)
    sampler: EnumProperty(name="Sampler", items=_sample.SAMPLERS, default="ddim")
    auto_steps: BoolProperty(name="Auto Steps", description="The sampler's own number of steps", default=True)
    steps: IntProperty(name="Steps", description="Sampler steps", default=10, min=1, max=5000)
    strength: FloatProperty(name="Strength", default=0.3, min=0.01, max=1.0, subtype='FACTOR')
    candidate: IntProperty(name="Candidate", description="Candidate to apply", default=1, min=1)
    use_auto_range: BoolProperty(name="Auto A/B", description="Previous/next keyframe around the current frame",
                                 default=True)
    frame_a: IntProperty(name="A", default=1)
    frame_b: IntProperty(name="B", default=24)
    ease: EnumProperty(name="Ease", items=_inbetween.EASES, default="linear")
    root: EnumProperty(name="Root", items=_inbetween.ROOT_MODES, default="INTERPOLATE")
    hypotheses: IntProperty(name="Hypotheses", default=5, min=1, max=50)
    noise: EnumProperty(name="Noise", items=[("AUTO", "Auto", ""), ("MM", "mm", "")], default="AUTO")
    noise_mm: FloatProperty(name="mm", default=40.0, min=0.0, max=1000.0)
    use_frame_range: BoolProperty(name="Scene Frame Range", default=False)
    worst_count: IntProperty(name="Count", default=5, min=1, max=1000)
    photo_hypotheses: IntProperty(name="Fits", description="How many fits of the photo to offer", default=4,
                                  min=1, max=32)


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
            detail = runtime.device_text(hello)
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
        ok, reason = pc.check_smpl_armature(tgt)
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


def _op_seed(s: Any) -> int:
    return -1 if s.random_seed else int(s.seed)


def _op_steps(s: Any) -> int:
    return 0 if s.auto_steps else int(s.steps)


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
        op = layout.operator("dposer.denoise", text="Denoise to New Action", icon='MOD_SMOOTH')
        op.noise, op.noise_mm, op.use_frame_range = s.noise, s.noise_mm, s.use_frame_range
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
        row.operator("dposer.select_worst_frames", text="Mark", icon='MARKER_HLT').count = s.worst_count
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
        op = row.operator("dposer.sample", text="Sample", icon='OUTLINER_OB_ARMATURE')
        op.n, op.seed, op.sampler, op.steps = s.n, _op_seed(s), s.sampler, _op_steps(s)
        op = row.operator("dposer.variations", text="Variations")
        op.n, op.seed, op.steps, op.strength = s.n, _op_seed(s), _op_steps(s), s.strength
        layout.prop(s, "strength", text="Variation Strength")
        tgt = _target(context)
        ghosts = _sample.ghosts_of(tgt) if tgt is not None and tgt.type == 'ARMATURE' else []
        if ghosts:
            box = layout.box()
            picked = _sample.ghost_of(context.active_object)
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
        op = layout.operator("dposer.complete", text="Complete Pose", icon='MOD_ARMATURE')
        op.hypotheses = s.hypotheses
        h = _complete.hypotheses(tgt)
        if h is not None:
            draw_browser(layout, h, "dposer.complete_flip", "dposer.complete_apply", "dposer.complete_discard")
        _draw_photo(layout, context, s, tgt)


def _draw_photo(layout: Any, context: Any, s: Any, tgt: Any) -> None:
    layout.separator()
    layout.label(text="From a Photo", icon='IMAGE_DATA')
    ok, msg = _photo.feature_state()
    layout.prop(s, "photo_hypotheses", text="Fits")
    op = layout.operator("dposer.pose_from_image", text="Pose from Image…", icon='FILE_IMAGE')
    op.hypotheses = s.photo_hypotheses
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
            if tgt is not None and pc.check_smpl_armature(tgt)[0]:
                a, b = _inbetween.default_range(tgt, context.scene.frame_current)
            layout.label(text=f"A = {a if a is not None else '–'}   B = {b if b is not None else '–'}")
        else:
            row = layout.row(align=True)
            row.prop(s, "frame_a")
            row.prop(s, "frame_b")
        layout.prop(s, "ease")
        layout.prop(s, "root", expand=True)
        op = layout.operator("dposer.inbetween", text="In-between", icon='IPO_EASE_IN_OUT')
        op.frame_a = -1 if s.use_auto_range else s.frame_a
        op.frame_b = -1 if s.use_auto_range else s.frame_b
        op.ease, op.root = s.ease, s.root


def _reg() -> None:
    bpy.types.Scene.dposer = PointerProperty(type=DPoserSceneSettings)


def _unreg() -> None:
    if hasattr(bpy.types.Scene, "dposer"):
        del bpy.types.Scene.dposer


CLASSES = [DPoserSceneSettings, VIEW3D_PT_dposer, VIEW3D_PT_dposer_import, VIEW3D_PT_dposer_clean,
           VIEW3D_PT_dposer_pose, VIEW3D_PT_dposer_inbetween]
HOOKS = [(_reg, _unreg)]
