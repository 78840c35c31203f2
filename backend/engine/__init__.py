"""Pure tensor engine: skeleton, rotations, kinematics, SDE, network, samplers, regulariser."""
