"""The evaluation behind ``python -m backend.eval`` (numpy in / numpy out), one module per benchmark task:
``completion``, ``denoising``, ``interpolation``, ``generation``, ``convention``; ``eval_data`` (clips and
reference poses), ``metrics``, ``baselines``, ``report`` (tables). The photo benchmark: ``photo_bench``
(fits and scores), ``photo_renders`` (held-out poses, renders, ground truth), ``photo_sheet``, ``photo_timing``.
"""
