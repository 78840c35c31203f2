"""DPoser for Blender: a diffusion pose prior over SMPL body poses.

This package is the only part of the project that imports ``bpy``; it never imports torch. The PyTorch
backend runs as a subprocess. Sub-packages and modules (each imports only those above it):

* ``dposer_core``   - the shared vocabulary, skeleton, protocol and numpy math (a link to ``../dposer_core``;
                    the zip holds a copy)
* ``core``          - pure maths, no bpy objects: ``pose_convert`` (the one SMPL <-> Blender axis
                    conversion), ``bones`` (which bone is which joint), ``keys``, ``keep``
* ``blender``       - Blender data: ``rig`` (read / pose an SMPL armature), ``fcurves`` (the one bulk key
                    writer), ``actions``, ``armature`` ("Add SMPL Armature"), ``mannequin`` (the body)
* ``client``        - the bpy-free backend client (process, protocol, discovery)
* ``runtime``       - the one backend client of the session, its status and the timer that pumps it
* ``properties``    - the scene settings (``scene.dposer``) and the enum items
* ``operators``     - the ``dposer.*`` operators, one module per feature
* ``preferences``   - add-on preferences (backend Python, device, weights, SMPL model)
* ``panel``, ``ui_text`` - the 3D Viewport sidebar tab "DPoser"

Demo and render tooling lives in the checkout's ``tools/`` and is not shipped.

``register()`` / ``unregister()`` are kept minimal and symmetric: everything registered is tracked in
``_registered`` and removed again, so unregistering leaves no classes or timers behind.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

#: Classes registered by :func:`register`, in registration order (filled by the UI modules).
CLASSES: list[type] = []
#: Extra (register, unregister) callables, run in order / reverse order (menus, timers, handlers).
HOOKS: list[tuple[Callable[[], None], Callable[[], None]]] = []

_registered: list[type] = []
_hooks_done: list[Callable[[], None]] = []


def user_dir(create: bool = True) -> str:
    """Per-user writable directory of this extension (caches, logs); never the extension folder.

    ``bpy.utils.extension_path_user(__package__)`` when installed as an extension; when the package is
    imported from a source checkout (tests, scripts) a ``dposer_blender`` folder in Blender's user config.
    """
    import os

    import bpy

    try:
        return bpy.utils.extension_path_user(__package__, create=create)
    except (ValueError, RuntimeError):
        path = os.path.join(bpy.utils.user_resource('CONFIG'), "dposer_blender")
        if create:
            os.makedirs(path, exist_ok=True)
        return path


@contextlib.contextmanager
def no_bytecode() -> Iterator[None]:
    """Import without writing ``__pycache__`` into the extension's folder (restores the global flag)."""
    old = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = old


def _ui_parts() -> tuple[list[type], list[tuple[Callable[[], None], Callable[[], None]]]]:
    """Classes and hooks of the UI modules (imported here, not at package import: they need bpy).

    Importing them imports every module the extension uses, without bytecode: no module imports another
    of the package inside a function (``tests/blender/test_blender_package.py`` checks), so nothing is
    imported later, when a ``.pyc`` would be written next to it. The bundled ``backend`` is not imported."""
    with no_bytecode():
        from . import operators, panel, preferences, properties, runtime

    classes = [*preferences.CLASSES, *properties.CLASSES, *operators.CLASSES, *panel.CLASSES]
    hooks = [*runtime.HOOKS, *properties.HOOKS, *operators.HOOKS, *panel.HOOKS]
    return classes, hooks


def register() -> None:
    """Register the extension's classes and hooks."""
    import bpy

    ui_classes, ui_hooks = _ui_parts()
    for cls in [*CLASSES, *ui_classes]:
        bpy.utils.register_class(cls)
        _registered.append(cls)
    for reg, unreg in [*HOOKS, *ui_hooks]:
        reg()
        _hooks_done.append(unreg)


def unregister() -> None:
    """Undo :func:`register` completely (reverse order); tolerant of a partial register."""
    import bpy

    while _hooks_done:
        unreg = _hooks_done.pop()
        try:
            unreg()
        except Exception as ex:  # noqa: BLE001 - keep unregistering the rest
            print(f"[dposer] unregister hook failed: {ex}")
    while _registered:
        cls = _registered.pop()
        try:
            bpy.utils.unregister_class(cls)
        except RuntimeError as ex:
            print(f"[dposer] unregister {cls.__name__} failed: {ex}")


