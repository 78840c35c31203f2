"""bpy-free, torch-free client for the DPoser backend server (``python -m backend.server``).

Usage (Blender operators: submit + poll from a timer/modal; background mode and tests: call)::

    client = BackendClient(python=prefs.backend_python or None)
    fut = client.submit("sample", n=4, steps=20, seed=1)   # never blocks the UI
    ...                                                      # poll fut.done(), fut.progress
    poses = fut.result().poses                               # (4, 63) float32 numpy
    res = client.call("complete", pose=pose, keep=["left_knee", ...], n_hypotheses=5)

Errors are :class:`BackendError` with a stable ``code`` and a human ``message``.

Modules: ``backend_client`` (the request API), ``session`` (one server process and its threads),
``futures`` (one pending reply), ``errors``, ``discovery`` (which Python runs the backend), ``locate``
(where the backend sources are).
"""

from .backend_client import BackendClient
from .discovery import PythonNotFound, ProbeResult, candidates, find_python, fix_instructions, probe
from .errors import CRASHED, TIMEOUT, UNAVAILABLE, BackendCrashed, BackendError, BackendUnavailable
from .futures import RequestFuture
from .locate import backend_root, repo_root

__all__ = [
    "BackendClient", "BackendError", "BackendCrashed", "BackendUnavailable", "RequestFuture",
    "CRASHED", "TIMEOUT", "UNAVAILABLE", "PythonNotFound", "ProbeResult", "find_python", "candidates",
    "probe", "fix_instructions", "backend_root", "repo_root",
]
