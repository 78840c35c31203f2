"""``python -m backend.server``: the JSON-lines subprocess server the Blender extension talks to.

One process, one loaded prior, one task at a time. Protocol: :mod:`dposer_core.protocol` (message
dataclasses, bounds) and ``dposer_core/protocol/README.md`` (overview, array-encoding numbers).

Modules, each importing only those above it:

* ``transport``: protocol lines out (the real stdout kept, fd 1 pointed at stderr so stray prints cannot
  corrupt the stream), bounded lines in, and the checks on files that requests name.
* ``device``: device choice with a CPU fallback, out-of-memory recognition and advice.
* ``weights``: the loaded prior (file, sha256, device).
* ``handlers``: one function per queued request type, calling ``backend.tasks`` (tests give a stub).
* ``dispatch``: the :class:`Server` (reader, queue, worker, cancel, shutdown, parent watchdog).
* ``launch``: command-line options, logging (``--log``, default ``<user cache dir>/dposer/server.log``;
  tracebacks go there, never into replies) and :func:`main`.

Adding a request type: its request and result classes in the protocol and one handler in
``handlers.HANDLERS``.
"""

from .launch import main

__all__ = ["main"]
