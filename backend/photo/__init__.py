"""Pose from a photo (issue 13): mediapipe keypoints -> SMPLify-style fit with the DPoser prior.

    from backend.photo import fit_image
    res = fit_image(prior, "photo.jpg", n_hypotheses=4)    # FitResult, hypotheses best first

Modules: ``image_io`` (accepted image files), ``keypoints`` (mediapipe landmarks -> SMPL keypoints),
``fit`` (the optimisation), ``api`` (image -> result, the CLI and server entry points).
"""
