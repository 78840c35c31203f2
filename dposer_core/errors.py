"""The two exceptions every layer raises for unusable input and for a cancelled run, and :func:`clip`.

A leaf module (stdlib only), so that :mod:`dposer_core.keep` and :mod:`dposer_core.protocol` can both
import it without importing each other. The protocol re-exports all three from
:mod:`dposer_core.protocol.errors`, next to the wire error codes that carry them.
"""

from __future__ import annotations

__all__ = ["BadInput", "TaskCancelled", "clip"]

from typing import Any


class BadInput(ValueError):
    """A task got an array of the wrong shape, NaN/inf values, an out-of-range value or an unknown joint
    name (protocol code ``bad_input``). ``str(err)`` is one line."""


class TaskCancelled(RuntimeError):
    """``should_cancel()`` returned True; the task stopped (within one step) and returns nothing
    (protocol code ``cancelled``)."""


def clip(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters (with the full length), for echoing input."""
    text = value if isinstance(value, str) else repr(value)
    if isinstance(value, str):
        text = repr(value[:limit + 1])
    if len(text) <= limit + 2:
        return text
    n = len(value) if isinstance(value, (str, bytes, list, tuple, dict)) else None
    return text[:limit] + "..." + (f" ({n:,} characters)" if isinstance(value, str) else
                                   f" ({n:,} items)" if n is not None else "")
