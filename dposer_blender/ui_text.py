"""Text for the panel and the preferences that fits the region it is drawn in: no label is ever cut off."""

from __future__ import annotations

from typing import Any

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
