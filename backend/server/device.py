"""Where the prior runs and what to do when memory runs out: device choice (with a CPU fallback that says
why), out-of-memory recognition and advice, freeing cached memory. torch is imported only when called."""

from __future__ import annotations

import gc
import logging
import platform
import sys

from .transport import one_line

log = logging.getLogger("dposer.server")

OOM_TEXTS = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory",
             "defaultcpuallocator", "failed to allocate")
"""Allocator wordings (CUDA's "out of memory", the CPU allocator's "DefaultCPUAllocator: can't allocate ...")."""


def select_device(requested: str) -> tuple[str, str, str]:
    """(device, device_name, note) for ``auto`` (cuda > mps > cpu), ``cuda``, ``mps`` or ``cpu``.

    A device that is asked for but unusable falls back to the CPU, and ``note`` says why.
    """
    import torch

    note = ""
    if requested in ("auto", "cuda"):
        try:
            if torch.cuda.is_available():
                torch.zeros(1, device="cuda").add_(1).cpu()  # really initialise it
                return "cuda", torch.cuda.get_device_name(0), ""
            if requested == "cuda":
                note = "CUDA was requested but is not available to this PyTorch build; running on the CPU."
        except Exception as exc:  # noqa: BLE001  any CUDA init failure -> CPU
            log.exception("CUDA initialisation failed")
            note = f"CUDA failed to start ({one_line(exc)}); running on the CPU instead."
    if requested in ("auto", "mps") and not note:
        try:
            if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
                torch.zeros(1, device="mps").add_(1).cpu()
                return "mps", "Apple Metal (MPS)", ""
            if requested == "mps":
                note = "MPS was requested but is not available; running on the CPU."
        except Exception as exc:  # noqa: BLE001
            log.exception("MPS initialisation failed")
            note = f"MPS failed to start ({one_line(exc)}); running on the CPU instead."
    cpu_name = platform.processor() or platform.machine() or "CPU"
    return "cpu", f"{cpu_name} ({torch.get_num_threads()} threads)", note


def is_oom(exc: BaseException) -> bool:
    """MemoryError, torch's OutOfMemoryError, or a RuntimeError from an allocator (:data:`OOM_TEXTS`)."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)) if t)
    if oom_types and isinstance(exc, oom_types):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(t in text for t in OOM_TEXTS)


def oom_advice(request_type: str, device: str) -> str:
    """The ``out_of_memory`` message: what ran out and what to do."""
    what = {"complete": "fewer poses or hypotheses", "denoise": "fewer frames (split the motion)",
            "inbetween": "fewer keys or in-between frames", "score": "fewer poses",
            "sample": "fewer poses (a smaller n)", "variations": "fewer variations (a smaller n)",
            }.get(request_type, "less data")
    where = ("or run the backend on a GPU (Device: CUDA), which has its own memory" if device == "cpu"
             else "or switch the backend to the CPU device, which can use the computer's main memory")
    return f"{request_type} ran out of memory on {device}; try {what} per request, {where}"


def free_memory() -> None:
    """Collect garbage and empty torch's CUDA / MPS caches (never raises)."""
    gc.collect()
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        if torch is not None and hasattr(torch, "mps") and torch.backends.mps.is_available():
            torch.mps.empty_cache()
    except Exception:  # noqa: BLE001  freeing memory must never fail a reply
        log.exception("freeing memory failed")
