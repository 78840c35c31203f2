"""The backend <-> extension protocol (stdlib only; never imports torch): ``from dposer_core import protocol as S``.

Every message, its fields and their bounds are defined once here, and the server, the client, the CLI
and the tests all import them from this package.
"""

from .errors import *  # noqa: F401,F403
from .schema import *  # noqa: F401,F403
