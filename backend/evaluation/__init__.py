"""Metrics and baselines for ``python -m backend.eval`` (numpy in / numpy out)."""
