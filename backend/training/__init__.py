"""Training of the DPoser score network (``python -m backend.train``): ``schedule`` (settings, LR, EMA),
``data`` (datasets, source weights), ``validation`` (left-leg completion), ``loop`` (the run)."""
