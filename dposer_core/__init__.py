"""DPoser's shared vocabulary and numpy math: imported by ``backend/`` and vendored into the extension.

Standard library + numpy only: no torch, no bpy, and only relative imports inside the package, so the
same files import as ``dposer_core`` (backend, tools, tests) and as ``<extension>.dposer_core`` inside
Blender (the extension reaches it through the ``dposer_blender/dposer_core`` link; the zip holds a copy).
``tests/core`` checks all three rules and pins each numpy function to its torch twin.

Modules (each imports only those listed before it):

* ``constants`` -- pose dimensions, joint masks, samplers, eases, devices, weights name, log path;
* ``errors``    -- ``BadInput``, ``TaskCancelled`` and ``clip`` (the protocol's codes carry them);
* ``skeleton``  -- the SMPL skeleton and joint names; ``smpl_model_file`` -- the safe SMPL ``.pkl`` reader;
* ``rotations_np``, ``kinematics_np`` (FK, Kabsch), ``curves`` (ease) -- numpy twins of the engine's math;
* ``keep``      -- the one parser of a completion keep mask;
* ``protocol``  -- the backend <-> extension messages (``from dposer_core import protocol as S``).
"""
