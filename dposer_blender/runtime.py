"""The extension's runtime: the single :class:`BackendClient`, its status, and the timer that pumps it.

* :func:`client` returns the one client, (re)built when the settings (backend Python, weights, device)
  change. Settings come from the add-on preferences when the add-on is enabled, else from the
  environment (``DPOSER_PYTHON``, ``DPOSER_WEIGHTS``, ``DPOSER_DEVICE``, ``DPOSER_SMPL_MODEL``), which is
  how scripts and tests that register the package from a checkout configure it.
* :func:`status` is what the panel shows: ``NOT_STARTED`` / ``STARTING`` / ``READY`` / ``ERROR``.
* A persistent ``bpy.app.timers`` timer runs while the backend starts or an operation is in flight and
  redraws the DPoser UI (the modal operators poll their own futures on a window-manager timer).
* :func:`describe_error` turns any failure into one plain sentence for ``Operator.report``
  (``ui_text.error_sentence``).

Nothing here touches ``bpy`` from another thread: futures are only polled on the main thread.
"""

from __future__ import annotations

import collections
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import bpy

from . import user_dir as _extension_user_dir
from .client import CRASHED, UNAVAILABLE, BackendClient, BackendError, BackendUnavailable, backend_root
from .dposer_core.constants import DEVICES, LOG_NAME, WEIGHTS_NAME, shipped_weights
from .ui_text import device_text, error_sentence

#: The add-on's module name (``dposer_blender`` from a checkout, ``bl_ext.<repo>.dposer_blender`` installed).
ADDON_ID = __package__

NOT_STARTED, STARTING, READY, ERROR = "NOT_STARTED", "STARTING", "READY", "ERROR"


@dataclass
class Settings:
    python: str | None = None
    weights: str | None = None
    device: str = "auto"
    smpl_model: str | None = None

    def key(self) -> tuple:
        return (self.python, self.weights, self.device)


@dataclass
class Progress:
    """The operation in flight (one at a time is shown)."""

    label: str = ""
    fraction: float = 0.0
    message: str = ""
    started: float = field(default_factory=time.monotonic)
    beat: float = field(default_factory=time.monotonic)


_client: BackendClient | None = None
_client_key: tuple | None = None
_start_future: Any = None
_last_error: str = ""
_last_hello: dict | None = None
_progress: Progress | None = None
_timer_on = False
_reports: "collections.deque[tuple[str, str]]" = collections.deque(maxlen=100)


# ----------------------------------------------------------------------------------------- settings

def preferences() -> Any:
    """The add-on preferences, or None when the package is registered without being an enabled add-on."""
    try:
        addon = bpy.context.preferences.addons.get(ADDON_ID)
    except AttributeError:
        return None
    return getattr(addon, "preferences", None) if addon is not None else None


def _abs(path: str) -> str:
    return os.path.abspath(bpy.path.abspath(path)) if path else path


def settings() -> Settings:
    """Current backend settings (preferences first, then the environment)."""
    p = preferences()
    s = Settings()
    env = os.environ
    python = getattr(p, "backend_python", "") if p is not None else ""
    s.python = _abs(python) or None  # None: discovery (repo .venv, then $DPOSER_PYTHON)
    weights = getattr(p, "weights_path", "") if p is not None else ""
    s.weights = _abs(weights) or env.get("DPOSER_WEIGHTS") or None  # None: the shipped weights
    dev = getattr(p, "device", "") if p is not None else ""
    s.device = (dev or env.get("DPOSER_DEVICE") or "auto").lower()
    if s.device not in DEVICES:
        s.device = "auto"
    model = getattr(p, "smpl_model_path", "") if p is not None else ""
    s.smpl_model = _abs(model) or env.get("DPOSER_SMPL_MODEL") or None
    return s


def shipped_weights_path() -> str:
    """Where the shipped checkpoint lives (inside the extension, or the checkout's ``weights/``)."""
    try:
        return str(shipped_weights(backend_root()))
    except FileNotFoundError:
        return WEIGHTS_NAME


def user_dir() -> str:
    """Writable per-user folder for logs/caches (never the extension folder); a temp dir as last resort."""
    try:
        return _extension_user_dir(create=True)
    except Exception:  # noqa: BLE001
        path = os.path.join(tempfile.gettempdir(), "dposer_blender")
        os.makedirs(path, exist_ok=True)
        return path


def log_path() -> str:
    """The backend's log: ``<the extension's user folder>/server.log`` (Blender's place for what an extension
    writes; outside Blender the backend's own default is ``dposer_core.constants.default_log_path()``)."""
    return os.path.join(user_dir(), LOG_NAME)


# ----------------------------------------------------------------------------------------- client

def client() -> BackendClient:
    """The one backend client (created on first use; rebuilt when the settings changed)."""
    global _client, _client_key
    s = settings()
    if _client is not None and _client_key != s.key():
        close()
    if _client is None:
        _client = BackendClient(python=s.python, weights=s.weights, device=s.device, log_path=log_path())
        _client_key = s.key()
    return _client


def current_client() -> BackendClient | None:
    """The client if one exists (never creates one)."""
    return _client


def set_client(c: BackendClient | None) -> BackendClient | None:
    """Replace the client (tests: a broken backend); returns the previous one, which is not closed."""
    global _client, _client_key, _start_future
    old, _client = _client, c
    _client_key = settings().key() if c is not None else None
    _start_future = None
    return old


def close() -> None:
    """Shut the backend down (pending requests fail with 'shut down') and clear any busy state."""
    global _client, _client_key, _start_future, _last_hello
    end_progress()
    c, _client, _client_key, _start_future = _client, None, None, None
    _last_hello = None
    if c is not None:
        try:
            c.close(timeout=2.0)
        except Exception as ex:  # noqa: BLE001
            print(f"[dposer] closing the backend failed: {ex}")


def start(blocking: bool | None = None) -> None:
    """Start the backend. Blocking in background mode (waits for its hello), else non-blocking: the
    status goes STARTING -> READY / ERROR and the timer redraws the UI. Raises BackendError (blocking)."""
    global _start_future, _last_error, _last_hello
    if blocking is None:
        blocking = bool(bpy.app.background)
    _last_error = ""
    c = client()
    if c.crash_count or isinstance(c.last_error, BackendUnavailable):  # an explicit start forgets past failures
        c.restart()
    if blocking:
        try:
            _last_hello = c.start()
        except BackendError as ex:
            _last_error = describe_error(ex)
            raise
        return
    try:
        _start_future = c.submit("ping")
    except BackendError as ex:
        _last_error = describe_error(ex)
        raise
    ensure_timer()


def restart() -> None:
    """Forget crashes / a failed start and start again with the current settings."""
    global _last_error
    close()
    _last_error = ""
    start()


def call(request_type: str, /, **params: Any) -> Any:
    """Blocking request (background mode, scripts, tests). Raises BackendError."""
    global _last_error, _last_hello
    c = client()
    try:
        res = c.call(request_type, **params)
    except BackendError as ex:
        if ex.code in (CRASHED, UNAVAILABLE):
            _last_error = describe_error(ex)
        raise
    _last_hello = c.hello or _last_hello
    _last_error = ""
    return res


def submit(request_type: str, /, **params: Any) -> Any:
    """Non-blocking request: a RequestFuture (poll ``done()`` on the main thread)."""
    global _last_error
    _last_error = ""
    fut = client().submit(request_type, **params)
    ensure_timer()
    return fut


def note_error(ex: BaseException) -> None:
    """Remember a backend-level failure for the status line."""
    global _last_error
    if isinstance(ex, BackendError) and ex.code in (CRASHED, UNAVAILABLE):
        _last_error = describe_error(ex)


# ----------------------------------------------------------------------------------------- status

def status() -> tuple[str, str]:
    """(state, one line) for the panel: NOT_STARTED / STARTING / READY / ERROR."""
    global _last_hello, _last_error
    c = _client
    if _start_future is not None and _start_future.done():
        err = _start_future.exception(0)
        if err is not None and err.code != "cancelled":
            _last_error = describe_error(err)
    if c is not None and c.hello is not None:
        _last_hello = c.hello
    if c is None:
        return (ERROR, _last_error) if _last_error else (NOT_STARTED, "Backend not started")
    state = c.state
    if state == "starting":
        return STARTING, "Backend starting…"
    if state == "ready":
        return READY, "Ready on " + device_text(c.hello)
    if _last_error:
        return ERROR, _last_error
    if c.last_error is not None:
        return ERROR, describe_error(c.last_error)
    return NOT_STARTED, "Backend not started"


def last_hello() -> dict | None:
    c = _client
    if c is not None and c.hello is not None:
        return c.hello
    return _last_hello


def busy() -> bool:
    st, _ = status()
    return st == STARTING or progress() is not None


# ----------------------------------------------------------------------------------------- progress

def begin_progress(label: str) -> Progress:
    """Mark an operation as in flight; returns its token (the operator that owns it keeps it)."""
    global _progress
    _progress = Progress(label)
    ensure_timer()
    return _progress


def update_progress(fraction: float, message: str = "") -> None:
    if _progress is not None:
        _progress.fraction = max(0.0, min(1.0, float(fraction)))
        _progress.message = message


def heartbeat(token: Progress | None) -> None:
    """The owning modal operator is alive (called on each of its timer ticks)."""
    if token is not None:
        token.beat = time.monotonic()


def end_progress(token: Progress | None = None) -> None:
    """Clear the operation in flight (only ``token``'s, when given: a late cleanup never clears a newer one)."""
    global _progress
    if token is None or _progress is token:
        _progress = None
    redraw()


#: An operation whose modal operator has not ticked for this long is taken to be gone (its window closed
#: without Blender calling ``cancel``, say): a new operation is then allowed instead of "busy" for ever.
STALE_AFTER_S = 30.0


def progress() -> Progress | None:
    """The operation in flight, or None."""
    return _progress


def clear_stale_progress(max_age_s: float = STALE_AFTER_S) -> bool:
    """Drop the operation in flight when its operator has not ticked for ``max_age_s``; True if dropped.

    Only asked when a new operation starts, so a slow event loop never ends a live operation."""
    global _progress
    p = _progress
    if p is not None and time.monotonic() - p.beat > max_age_s:
        print(f"[dposer] '{p.label}' stopped responding {time.monotonic() - p.beat:.0f} s ago; clearing it")
        _progress = None
        return True
    return False


def redraw() -> None:
    """Redraw what shows DPoser's state: the 3D Viewport sidebars, the status bar and Preferences.

    Only those regions, never the viewport itself (a viewport redraw is the expensive part of a frame).
    """
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for win in wm.windows:
        for area in win.screen.areas:
            if area.type == 'VIEW_3D':
                for region in area.regions:
                    if region.type == 'UI':
                        region.tag_redraw()
            elif area.type in ('PREFERENCES', 'STATUSBAR'):
                area.tag_redraw()


_last_shown: tuple | None = None


def _tick() -> float | None:
    """Redraw the DPoser UI when what it shows changed (the backend status); never raises."""
    global _timer_on, _last_shown
    try:
        shown = status()
        if shown != _last_shown:
            _last_shown = shown
            redraw()
        if shown[0] == STARTING or _progress is not None:  # busy(), without asking status() twice
            return 0.25
    except Exception as ex:  # noqa: BLE001 - a timer must never raise
        print(f"[dposer] timer: {ex}")
    _timer_on = False
    return None


def ensure_timer() -> None:
    """Run the pump/redraw timer until nothing is in flight (persistent across file loads)."""
    global _timer_on
    if bpy.app.background:
        return
    if not bpy.app.timers.is_registered(_tick):
        bpy.app.timers.register(_tick, first_interval=0.1, persistent=True)
    _timer_on = True


def _unregister() -> None:
    global _timer_on, _progress, _last_error
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    _timer_on = False
    _progress = None
    close()
    _last_error = ""


def timer_registered() -> bool:
    return bpy.app.timers.is_registered(_tick)


# ----------------------------------------------------------------------------------------- reports

def note_report(kind: str, message: str) -> None:
    """Remember what an operator told the user (``'ERROR'``, ``'WARNING'``, ``'INFO'``)."""
    _reports.append((str(kind), str(message)))


def recent_reports() -> list[tuple[str, str]]:
    """The last 100 operator reports, oldest first."""
    return list(_reports)


def describe_error(ex: BaseException) -> str:
    """One plain sentence for any failure (``ui_text.error_sentence``, naming this session's log)."""
    return error_sentence(ex, log_path())


__all__ = ["ADDON_ID", "NOT_STARTED", "STARTING", "READY", "ERROR", "Settings", "settings", "preferences",
           "client", "current_client", "set_client", "close", "start", "restart", "call", "submit", "status",
           "begin_progress", "update_progress", "heartbeat", "end_progress", "progress", "describe_error",
           "ensure_timer", "timer_registered", "user_dir", "log_path", "shipped_weights_path", "last_hello"]

CLASSES: list[type] = []
HOOKS = [(lambda: None, _unregister)]
