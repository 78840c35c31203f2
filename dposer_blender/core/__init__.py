"""Pure maths of the Blender side, no ``bpy`` objects: pose conversion (the one SMPL <-> Blender axis
conversion), SMPL bone names of a rig, key ranges and quaternion continuity, the completion keep mask."""
