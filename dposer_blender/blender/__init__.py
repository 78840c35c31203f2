"""What touches Blender data: the SMPL rig (read / pose), F-curves (the one bulk writer), actions, the SMPL
armature and its mannequin body."""
