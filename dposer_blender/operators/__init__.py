"""The ``dposer.*`` operators, one module per feature. ``CLASSES`` / ``HOOKS`` are registered by the package."""

from . import armature_ops, backend, complete, denoise, importers, inbetween, photo, plausibility, sample

_MODULES = (backend, armature_ops, sample, inbetween, complete, denoise, importers, plausibility, photo)

CLASSES: list[type] = [c for m in _MODULES for c in m.CLASSES]
HOOKS: list = [h for m in _MODULES for h in m.HOOKS]
