"""What the operators read from the context and the scene: SMPL polls, the target armature (a candidate
ghost resolves to its character), refusals in plain words (:class:`OpError`), and scene reads that refuse
NaN values."""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np

from ..blender import actions
from ..blender.ghosts import resolve_ghost
from ..blender.rig import SMPLRig, check_smpl_armature, read_smpl_pose


class OpError(Exception):
    """A refusal with a plain-words message (reported as an error; the operator is cancelled)."""


# ----------------------------------------------------------------------------------------- the target

def active_object(context: Any) -> Any:
    obj = getattr(context, "active_object", None)
    if obj is None:
        vl = getattr(context, "view_layer", None)
        obj = vl.objects.active if vl is not None else None
    return obj


def smpl_poll(cls: type, context: Any) -> bool:
    """Poll for operators that need an SMPL armature as the active object (says why not)."""
    ok, reason = check_smpl_armature(resolve_ghost(active_object(context)))
    if not ok:
        cls.poll_message_set(reason)
    return ok


def smpl_object(context: Any) -> Any:
    """The active SMPL armature (a candidate ghost resolves to its character); OpError otherwise."""
    obj = resolve_ghost(active_object(context))
    ok, reason = check_smpl_armature(obj)
    if not ok:
        raise OpError(reason)
    return obj


class StatePoll:
    """Mix-in poll for operators that need an SMPL armature *and* an earlier result to work on.

    Subclasses set ``missing_state`` (the poll message) and implement ``has_state(context)``.
    """

    missing_state = ""

    @classmethod
    def has_state(cls, context: Any) -> bool:
        raise NotImplementedError

    @classmethod
    def poll(cls, context: Any) -> bool:
        if not smpl_poll(cls, context):
            return False
        if not cls.has_state(context):
            cls.poll_message_set(cls.missing_state)
            return False
        return True


# ----------------------------------------------------------------------------------------- scene reads

def active_action(obj: Any) -> Any:
    ad = obj.animation_data
    if ad is None or ad.action is None:
        raise OpError(f"'{obj.name}' has no active action: key or import some animation first")
    return ad.action


def finite_or_raise(a: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(a)):
        raise OpError(f"{what} contains NaN or infinite values; fix or delete those keys first")
    return a


def current_body_pose(obj: Any, rig: SMPLRig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The armature's current body pose (21,3) and root orientation (3,); OpError on NaN rotations."""
    body, root, _ = read_smpl_pose(obj, rig)
    if not np.all(np.isfinite(body)):
        raise OpError(f"the current pose of '{obj.name}' contains NaN values")
    return body, root


def read_motion(obj: Any, action: Any, rig: SMPLRig | None = None) -> dict[str, np.ndarray]:
    """``actions.read_smpl_motion`` of ``obj``'s ``action``, with a read failure as an OpError."""
    try:
        return actions.read_smpl_motion(obj, action, rig=rig)
    except ValueError as ex:
        raise OpError(str(ex)) from None


def pose_quats_at(obj: Any, action: Any, frame: float, rig: SMPLRig) -> tuple[np.ndarray, np.ndarray | None]:
    """``actions.pose_quats_at``: the pose-bone quaternions (24,4) and pelvis location (3,) or None that
    ``action`` gives at ``frame``; OpError on NaN values."""
    q, loc = actions.pose_quats_at(obj, action, frame, rig)
    finite_or_raise(q, f"action '{action.name}' at frame {frame:g}")
    if loc is not None:
        finite_or_raise(loc, f"action '{action.name}' at frame {frame:g}")
    return q, loc


def scene_fps(scene: Any) -> float:
    return float(scene.render.fps) / float(scene.render.fps_base or 1.0)


# ----------------------------------------------------------------------------------------- after the call

def object_after_call(name: str, doing: str) -> Any:
    """The object ``name`` again once the backend has answered; OpError if it was deleted meanwhile."""
    obj = bpy.data.objects.get(name)
    if obj is None:
        raise OpError(f"'{name}' was deleted while {doing}")
    return obj


def object_and_action_after_call(job: dict, doing: str) -> tuple[Any, Any]:
    """``job["obj"]`` and ``job["action"]`` again once the backend has answered; OpError if either is gone."""
    obj = bpy.data.objects.get(job["obj"])
    action = bpy.data.actions.get(job["action"])
    if obj is None or action is None:
        raise OpError(f"the armature or its action was removed while {doing}")
    return obj, action
