"""The backend <-> extension protocol (stdlib only; never imports torch).

``backend.protocol.schema`` is the single definition of every message. The Blender extension
loads that same file by path (see ``dposer_blender/client``), so keep it self-contained.
"""

from .schema import PROTOCOL_VERSION, ProtocolError  # noqa: F401
