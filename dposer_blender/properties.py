"""The scene settings (``scene.dposer``): what the sidebar shows, and what the operators read when they are
invoked from the UI (a panel button, F3 search).

The operators keep their own properties, so scripts call them with explicit values
(``bpy.ops.dposer.sample(n=4, seed=0)``); when invoked, each property that was not given is taken from
these settings (``operators._base.SceneDefaults``). The enum items of the panel and the operators are built
here from the ``dposer_core.constants`` names, with one label table each.
"""

from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty

from .dposer_core.constants import EASES, SAMPLERS

SAMPLER_LABELS = {
    "ddim": ("DDIM (fast)", "Few-step sampler with fresh noise at each step (eta = 1): fast, varied"),
    "em": ("Euler-Maruyama", "Reverse SDE, the paper's sampler (slow: many steps)"),
    "ode": ("ODE (deterministic)", "Probability-flow ODE (Heun): the same seed gives the same poses"),
}
SAMPLER_ITEMS = [(name, *SAMPLER_LABELS[name]) for name in SAMPLERS]

EASE_LABELS = {
    "linear": ("Linear", "Constant speed"),
    "ease_in_out": ("Ease In/Out", "Slow at both keys"),
    "ease_in": ("Ease In", "Slow at A"),
    "ease_out": ("Ease Out", "Slow at B"),
}
EASE_ITEMS = [(name, *EASE_LABELS[name]) for name in EASES]

ROOT_ITEMS = [("INTERPOLATE", "Fill Root", "Also fill the pelvis rotation (and location, if keyed)"),
              ("KEEP", "Keep Root", "Leave the pelvis channels to Blender's interpolation")]
NOISE_ITEMS = [("AUTO", "Auto", "Estimate the noise level from the motion"),
               ("MM", "mm", "Give the noise level in millimetres")]


class DPoserSceneSettings(bpy.types.PropertyGroup):
    n: IntProperty(name="Count", default=6, min=1, max=64)
    random_seed: BoolProperty(name="Random", description="A new random seed each time (off: a fixed seed, "
                              "the same poses again)", default=True)
    seed: IntProperty(name="Seed", description="The fixed random seed", default=0, min=0)
    sampler: EnumProperty(name="Sampler", items=SAMPLER_ITEMS, default="ddim")
    auto_steps: BoolProperty(name="Auto Steps", description="The sampler's own number of steps", default=True)
    steps: IntProperty(name="Steps", description="Sampler steps", default=10, min=1, max=5000)
    strength: FloatProperty(name="Strength", default=0.3, min=0.01, max=1.0, subtype='FACTOR')
    candidate: IntProperty(name="Candidate", description="Candidate to apply", default=1, min=1)
    use_auto_range: BoolProperty(name="Auto A/B", description="Previous/next keyframe around the current frame",
                                 default=True)
    frame_a: IntProperty(name="A", default=1)
    frame_b: IntProperty(name="B", default=24)
    ease: EnumProperty(name="Ease", items=EASE_ITEMS, default="linear")
    root: EnumProperty(name="Root", items=ROOT_ITEMS, default="INTERPOLATE")
    hypotheses: IntProperty(name="Hypotheses", default=5, min=1, max=50)
    noise: EnumProperty(name="Noise", items=NOISE_ITEMS, default="AUTO")
    noise_mm: FloatProperty(name="mm", default=40.0, min=0.0, max=1000.0)
    use_frame_range: BoolProperty(name="Scene Frame Range", default=False)
    worst_count: IntProperty(name="Count", default=5, min=1, max=1000)
    photo_hypotheses: IntProperty(name="Fits", description="How many fits of the photo to offer", default=4,
                                  min=1, max=32)


# Module functions, not methods: a PropertyGroup with Python methods makes bpy 4.2 crash at exit
# (SpaceType destructor -> bpy_class_free after Python is finalised; seen in the bpy wheel).

def seed_value(settings: DPoserSceneSettings) -> int:
    """The operators' ``seed``: -1 (a new one each time) or the fixed seed."""
    return -1 if settings.random_seed else int(settings.seed)


def steps_value(settings: DPoserSceneSettings) -> int:
    """The operators' ``steps``: 0 (the sampler's own) or the fixed count."""
    return 0 if settings.auto_steps else int(settings.steps)


def frame_values(settings: DPoserSceneSettings) -> tuple[int, int]:
    """The In-between operator's ``frame_a`` / ``frame_b``: -1 (the keys around the current frame) or fixed."""
    return (-1, -1) if settings.use_auto_range else (int(settings.frame_a), int(settings.frame_b))


def scene_settings(context: Any) -> "DPoserSceneSettings | None":
    """``context.scene.dposer`` (None without a scene or before registration)."""
    return getattr(getattr(context, "scene", None), "dposer", None)


def _reg() -> None:
    bpy.types.Scene.dposer = PointerProperty(type=DPoserSceneSettings)


def _unreg() -> None:
    if hasattr(bpy.types.Scene, "dposer"):
        del bpy.types.Scene.dposer


CLASSES = [DPoserSceneSettings]
HOOKS = [(_reg, _unreg)]
