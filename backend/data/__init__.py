"""Mocap data for DPoser (numpy/scipy only; importing this package is cheap and torch-free).

- ``bvh.read_bvh(path) -> BVHMotion``
- ``amass.read_amass(path) -> AmassMotion`` (Z-up -> SMPL Y-up, 30 fps)
- ``retarget.retarget_bvh(motion, family=None, fps=30) -> SMPLMotion`` (``families`` reads ``families/*.json``;
  ``retarget_plan`` maps a family onto a skeleton; ``resample`` to 30 fps)
- ``dataset.load_dataset(cache_dir=None) -> PoseDataset``; build with ``python -m backend.data.build``

See ``backend/data/README.md``.
"""
