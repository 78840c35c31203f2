"""Text for the panel and the preferences: labels that fit the region they are drawn in (never cut off), the
progress line, the device line, and one plain sentence for any failure."""

from __future__ import annotations

from typing import Any

from .client import CRASHED, TIMEOUT, UNAVAILABLE, BackendError

#: Blender's UI font at scale 1: about this many pixels per character (measured on the 4.3 sidebar).
CHAR_PX = 6.8


def chars_that_fit(context: Any, icon: bool) -> int:
    """How many characters fit on one label line in the current region (1000 when there is no region)."""
    region = getattr(context, "region", None)
    width = int(getattr(region, "width", 0) or 0)
    if not width:
        return 1000
    prefs = getattr(context, "preferences", None)
    scale = float(getattr(getattr(prefs, "view", None), "ui_scale", 1.0) or 1.0)
    return max(16, int((width - (52 if icon else 30)) / (CHAR_PX * scale)))


def wrap(text: str, chars: int) -> list[str]:
    """Words onto lines of at most ``chars`` characters; a longer word (a path) breaks after a '/'."""
    pieces: list[str] = []
    for word in text.split():
        while len(word) > chars:
            cut = word.rfind("/", 0, chars)
            cut = cut + 1 if cut > 0 else chars
            pieces.append(word[:cut])
            word = word[cut:]
        pieces.append(word)
    lines, line = [], ""
    for w in pieces:
        if line and len(line) + 1 + len(w) > chars:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    return lines + [line] if line or not lines else lines


def wrapped_label(layout: Any, context: Any, text: str, icon: str = 'NONE') -> None:
    """``text`` as one or more labels that fit the region's width."""
    col = layout.column(align=True)
    for i, ln in enumerate(wrap(text, chars_that_fit(context, icon != 'NONE'))):
        col.label(text=ln, icon=icon if i == 0 else ('BLANK1' if icon != 'NONE' else 'NONE'))


def progress_text(prog: Any) -> str:
    """'Denoising 42%', with the backend's message when it says more than the label (e.g. 'step 4/10')."""
    msg = (prog.message or "").strip()
    informative = bool(msg) and (any(ch.isdigit() for ch in msg) or " " in msg)
    return f"{prog.label} {prog.fraction:.0%}" + (f", {msg}" if informative else "")


def device_text(hello: dict | None) -> str:
    """'cuda (NVIDIA H100), torch 2.x' from a hello."""
    if not hello:
        return "?"
    dev = str(hello.get("device", "?"))
    name = hello.get("device_name") or ""
    torch_v = hello.get("torch_version") or "?"
    out = f"{dev}" + (f" ({name})" if name else "") + f", torch {torch_v}"
    return out


def error_sentence(ex: BaseException, log_path: str) -> str:
    """One plain sentence for any failure (backend error codes, bad input, our own checks); ``log_path``: the
    backend's log, named when the failure is unexpected."""
    if isinstance(ex, BackendError):
        code, msg = ex.code, (ex.message or str(ex)).strip()
        if code == "cancelled":
            return "Cancelled; nothing was changed."
        if code == CRASHED:
            return msg if msg.lower().startswith("the dposer backend") else f"The DPoser backend crashed: {msg}"
        if code == UNAVAILABLE:
            if "protocol version mismatch" in msg:
                return f"The DPoser backend does not match this extension ({msg})."
            return msg if msg.lower().startswith("the dposer backend") else f"The DPoser backend is not available: {msg}"
        if code == TIMEOUT:
            return f"The DPoser backend did not answer in time: {msg}"
        if code == "weights_missing":
            return f"No pose-prior weights: {msg}. Set the weights file in Preferences > Add-ons > DPoser."
        if code == "weights_invalid":
            return f"The weights file is not usable: {msg}."
        if code == "out_of_memory":
            return f"The backend ran out of memory: {msg}. Try fewer poses or the CPU device."
        if code in ("bad_input", "bad_request"):
            return f"The backend rejected the input: {msg}"
        return f"The DPoser backend failed: {msg} (details in {log_path})"
    text = str(ex).strip() or type(ex).__name__
    return text
