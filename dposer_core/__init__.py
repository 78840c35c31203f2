"""DPoser's shared vocabulary and numpy math: imported by ``backend/`` and vendored into the extension.

Standard library + numpy only: no torch, no bpy, and only relative imports inside the package, so the
same files import as ``dposer_core`` (backend, tools, tests) and as ``<extension>.dposer_core`` inside
Blender (the extension reaches it through the ``dposer_blender/dposer_core`` link; the zip holds a copy).
"""
