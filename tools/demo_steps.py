"""The demo's steps, in order (``tools/demo.py`` runs them). Each reads and extends the :class:`Demo` state."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from dposer_blender.blender.actions import read_smpl_motion, write_smpl_motion
from dposer_blender.blender.fcurves import generated_key_type, key_types
from dposer_blender.blender.rig import SMPLRig, apply_smpl_pose, rig_trans_to_motion
from dposer_core.constants import WEIGHTS_NAME
from tools import demo_kinematics as kin
from tools.demo_ops import LOG, add_character, have_op, key_values, op, plausibility_keys, set_active

REPO = Path(__file__).resolve().parent.parent
BVH = REPO / "tests" / "data" / "cmu_daz_07_01_walk.bvh"
PKG = "bl_ext.user_default.dposer_blender"

SEED = 4                 # sampling seed (the sampler is deterministic for a seed)
NOISE_MM = 60.0          # noise added to the joint positions, per coordinate
N_SAMPLES = 8
INBETWEEN_FRAMES = 24    # key A at frame 1, key B at frame 25
N_HYPOTHESES = 6
LEG_JOINTS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
              "left_foot", "right_foot")
OPERATORS = ("backend_start", "add_smpl_armature", "import_motion", "denoise", "sample", "apply_candidate",
             "inbetween", "plausibility", "complete", "backend_stop")


@dataclass
class Demo:
    """What the steps share: the options, the installed extension's runtime, and what each step made."""

    zpath: Path
    out: Path
    python: str
    device: str
    weights: str
    seed: int
    runtime: Any = None                  # the installed extension's runtime (its backend client)
    outputs: list[Path] = field(default_factory=list)
    walker: Any = None                   # step 2, 3: the walk, its frames and clean SMPL motion
    frames: Any = None
    motion: tuple = ()
    joints: Any = None                   # (T,22,3) FK of the clean walk
    walk_range: tuple[int, int] = (1, 1)
    plot_data: dict = field(default_factory=dict)
    poser: Any = None                    # step 4, 5: the samples, their scores, the two keys
    samples: Any = None
    scores: Any = None
    keys: tuple[int, int] = (0, 1)
    key_frames: tuple[int, int] = (1, 1 + INBETWEEN_FRAMES)
    completer: Any = None                # step 6: the reference frame and the hypotheses
    src_frame: int = 0
    hypotheses: Any = None
    hyp_scores: Any = None


def install(d: Demo) -> None:
    """1. Install the zip, enable it, set the preferences, start the backend, add the armature."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = bpy.ops.extensions.package_install_files(filepath=str(d.zpath), repo="user_default",
                                                   enable_on_install=False)
    if res != {'FINISHED'}:
        raise SystemExit(f"[demo] installing {d.zpath} failed: {res}")
    res = bpy.ops.preferences.addon_enable(module=PKG)
    if res != {'FINISHED'} or PKG not in bpy.context.preferences.addons:
        raise SystemExit(f"[demo] enabling {PKG} failed: {res}")
    import bl_ext.user_default.dposer_blender as ext  # noqa: PLC0415  (exists once the zip is installed: PKG)
    from bl_ext.user_default.dposer_blender import runtime

    d.runtime = runtime
    LOG.note(f"installed {d.zpath.name} -> {Path(ext.__file__).parent} (module {PKG})")
    prefs = bpy.context.preferences.addons[PKG].preferences
    prefs.backend_python = d.python
    prefs.device = d.device
    if d.weights:
        prefs.weights_path = str(Path(d.weights).resolve())
    LOG.note(f"preferences: backend Python {d.python}; device {d.device}; weights "
             f"{prefs.weights_path or 'shipped (' + d.runtime.shipped_weights_path() + ')'}")
    missing = [n for n in OPERATORS if not have_op(n)]
    if missing:
        raise SystemExit(f"[demo] the extension lacks operators: {', '.join('dposer.' + m for m in missing)}")
    op("backend_start")
    try:  # load the weights now (a no-op when the backend started with them) so a missing file fails early
        loaded = d.runtime.call("load", path=prefs.weights_path or None, device=d.device)
    except Exception as ex:  # noqa: BLE001
        raise SystemExit(f"[demo] {d.runtime.describe_error(ex)}\n[demo] Pass --weights PATH (or set "
                         f"DPOSER_WEIGHTS), or put the checkpoint at weights/{WEIGHTS_NAME} before "
                         "building the zip.") from None
    LOG.note(f"backend: {d.runtime.status()[1]}; weights {loaded.weights_path} "
             f"(sha256 {str(loaded.weights_sha256)[:12]}…)")
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    d.walker = add_character("Walker", 0.0)
    LOG.note(f"'{d.walker.name}': {len(d.walker.data.bones)} bones, body "
             f"'{[c.name for c in d.walker.children][0]}' ({len(d.walker.children[0].data.vertices)} vertices)")


def import_walk(d: Demo) -> None:
    """2. Import the shipped CMU walk through the backend's BVH retargeting."""
    scene = bpy.context.scene
    set_active(d.walker)
    op("import_motion", filepath=str(BVH))
    clean_act = d.walker.animation_data.action
    clean_act.use_fake_user = True
    m = read_smpl_motion(d.walker, clean_act)
    d.frames = frames = m["frames"]
    LOG.note(f"action '{clean_act.name}': {len(frames)} frames ({frames[0]:g}-{frames[-1]:g}) at "
             f"{scene.render.fps} fps; credit: tests/data/CREDIT.md (CMU mocap, subject 07 trial 01)")
    d.motion = (m["body_pose"], m["root_orient"], m["trans"])
    d.joints = kin.fk(*d.motion)
    jump = np.linalg.norm(d.joints[1] - d.joints[0], axis=-1).mean()
    if jump > 0.05:  # the DAZ conversion starts with a T-pose frame: leave it out of the scene range
        scene.frame_start = int(frames[1])
        LOG.note(f"frame {frames[0]:g} is the T-pose of the BVH conversion (joints jump {1000 * jump:.0f} mm "
                 f"to the next frame): scene range {scene.frame_start}-{scene.frame_end}")
    d.walk_range = (scene.frame_start, scene.frame_end)


def noise_and_denoise(d: Demo) -> None:
    """3. Noise on the joint positions (a noisy action), then ``dposer.denoise`` with the scene range."""
    scene = bpy.context.scene
    walker, frames, (body, root, trans), J_clean = d.walker, d.frames, d.motion, d.joints
    clean_name = walker.animation_data.action.name
    rng = np.random.default_rng(SEED)  # the noise stays the same whatever --seed
    targets = J_clean + rng.normal(0.0, NOISE_MM / 1000.0, J_clean.shape)
    body_noisy = kin.reach(body, root, trans, targets)
    noisy_act = write_smpl_motion(walker, body_noisy, root, trans, frames=frames, name=f"{clean_name}_noisy")
    J_noisy = kin.fk(body_noisy, root, trans)
    sel = (frames >= scene.frame_start) & (frames <= scene.frame_end)
    err_noisy = 1000 * np.linalg.norm(J_noisy - J_clean, axis=-1)[sel]
    LOG.note(f"'{noisy_act.name}': N(0, {NOISE_MM:g} mm) per coordinate on the joint positions, turned into "
             f"rotations that reach them (root kept): joints {err_noisy.mean():.1f} mm from the original "
             f"on average")
    set_active(walker)
    op("denoise", noise="MM", noise_mm=NOISE_MM, use_frame_range=True)
    den_act = walker.animation_data.action
    tracks = [(t.name, t.mute) for t in walker.animation_data.nla_tracks]
    md = read_smpl_motion(walker, den_act)
    if not np.array_equal(md["frames"], frames[sel]):
        raise SystemExit(f"[demo] the denoised action has frames {md['frames'][[0, -1]]}, expected the scene range")
    J_den = kin.fk(md["body_pose"], md["root_orient"], md["trans"])
    err_den = 1000 * np.linalg.norm(J_den - J_clean[sel], axis=-1)
    LOG.note(f"active action '{den_act.name}' ({len(md['frames'])} frames); NLA tracks (name, muted) {tracks}; "
             f"original '{clean_name}' kept")
    LOG.note(f"mean joint distance to the original: noisy {err_noisy.mean():.1f} mm -> denoised "
             f"{err_den.mean():.1f} mm")
    floor_trans = rig_trans_to_motion(trans, walker)[sel]  # feet-on-the-floor SMPL translation
    lift = floor_trans - trans[sel]
    d.plot_data = dict(frames=frames[sel], names=np.array(kin.body_joint_names()), noise_mm=NOISE_MM,
                       clean=kin.body_local(J_clean[sel], root[sel]), noisy=kin.body_local(J_noisy[sel], root[sel]),
                       denoised=kin.body_local(J_den, md["root_orient"]),
                       height_clean=(J_clean[sel] + lift[:, None])[..., 1],
                       height_noisy=(J_noisy[sel] + lift[:, None])[..., 1],
                       height_denoised=(J_den + lift[:, None])[..., 1],
                       err_noisy=err_noisy.mean(1), err_denoised=err_den.mean(1))


def sample(d: Demo) -> None:
    """4. ``dposer.sample`` on a second character; the candidates' scores from the backend."""
    bpy.context.scene.frame_set(1)
    d.poser = add_character("Poser", -2.5)
    op("sample", n=N_SAMPLES, seed=d.seed)
    ghosts = sorted([o for o in bpy.data.objects if o.get("dposer_ghost_of") == d.poser.name],
                    key=lambda o: int(o["dposer_ghost_index"]))
    d.samples = np.array([np.asarray(g["dposer_pose"], dtype=np.float64) for g in ghosts])
    d.scores = np.asarray(d.runtime.call("score", poses=d.samples.astype(np.float32), seed=0).pose, dtype=np.float64)
    LOG.note(f"{len(ghosts)} candidate ghosts beside '{d.poser.name}'; scores (lower = more plausible, "
             f"by the extension's backend client): " + ", ".join(f"{s:.2f}" for s in d.scores))


def inbetween(d: Demo) -> None:
    """5. Two samples keyed at frames 1 and 25, ``dposer.inbetween`` between them, then ``dposer.plausibility``."""
    scene, poser, samples, scores = bpy.context.scene, d.poser, d.samples, d.scores
    # keys: the two most different standing samples (pelvis well above the feet) among the more
    # plausible half by the prior's score, as an animator would pick them from the sheet
    J_s = kin.fk(samples, np.zeros((len(samples), 3)), np.zeros((len(samples), 3)))
    plausible = np.argsort(scores)[:max(2, len(scores) // 2 + 1)]
    standing = [i for i in plausible if J_s[i, 0, 1] - J_s[i, :, 1].min() > 0.75]
    top = standing if len(standing) >= 2 else list(np.argsort(scores))
    pairs = [(a, b) for a in top for b in top if a < b]
    a, b = max(pairs, key=lambda p: np.linalg.norm(J_s[p[0]] - J_s[p[1]], axis=-1).mean())
    fa, fb = d.key_frames  # keys at 1 and 25, 23 generated frames in between
    d.keys = (a, b)
    set_active(poser)
    scene.frame_set(fa)
    op("apply_candidate", index=int(a), key=True)
    LOG.note(f"key A = sample {a + 1} at frame {fa} (Apply & Key removes the candidates)")
    scene.frame_set(fb)
    op("sample", n=N_SAMPLES, seed=d.seed)
    op("apply_candidate", index=int(b), key=True)
    LOG.note(f"key B = sample {b + 1} at frame {fb} (sampled again with the same seed)")
    scene.frame_set((fa + fb) // 2)
    keys_before = key_values(poser, (fa, fb))
    op("inbetween", frame_a=fa, frame_b=fb, ease="ease_in_out")
    ib_act = poser.animation_data.action
    ib_act.name = "Poser in-between"
    n_gen = sum(t == "GENERATED" for v in key_types(ib_act, poser).values() for t in v)
    same = key_values(poser, (fa, fb)) == keys_before
    LOG.note(f"action '{ib_act.name}': {n_gen} generated keys (keyframe type {generated_key_type()}); "
             f"the {len(keys_before)} key values at frames {fa} and {fb} are "
             + ("bit-exact as before" if same else "CHANGED"))
    op("plausibility")
    v = plausibility_keys(ib_act, poser)
    LOG.note(f"plausibility per frame: keys {v[0]:.2f} / {v[-1]:.2f}, in-betweens mean "
             f"{v[1:-1].mean():.2f}, worst {v[1:-1].max():.2f}")


def complete(d: Demo) -> None:
    """6. The upper body of a mid-stride walk frame selected (kept), ``dposer.complete`` fills the legs."""
    comp = d.completer = add_character("Completer", 2.5)
    body, J_clean = d.motion[0], d.joints
    # The upper body of a mid-stride frame of the walk (facing the camera); the legs are left to DPoser.
    stride = np.abs(J_clean[:, 7, :] - J_clean[:, 8, :]).max(-1)
    d.src_frame = src_frame = int(np.argmax(stride))
    rig = SMPLRig.from_armature(comp)
    apply_smpl_pose(comp, body[src_frame], None, None, rig)
    keep = [n for n in rig.bone_names[1:22] if n not in LEG_JOINTS]
    for pb in comp.pose.bones:
        sel = pb.name in keep
        for target in (pb, pb.bone):  # PoseBone.select on 5.x, Bone.select on 4.x
            if hasattr(target, "select"):
                target.select = sel
    LOG.note(f"upper body of walk frame {d.frames[src_frame]:g}; {len(keep)} bones selected (kept), "
             f"the {len(LEG_JOINTS)} leg bones free")
    set_active(comp)
    op("complete", hypotheses=N_HYPOTHESES, steps=200, seed=0)
    h = comp["dposer_complete"]
    d.hypotheses = hyp = np.asarray(h["poses"], dtype=np.float64).reshape(-1, 63)
    d.hyp_scores = np.asarray(h["scores"], dtype=np.float64)
    kept_idx = [rig.bone_names.index(n) - 1 for n in keep]
    drift = np.abs(hyp.reshape(-1, 21, 3)[:, kept_idx] - body[src_frame].reshape(21, 3)[kept_idx]).max()
    LOG.note("scores (best first): " + ", ".join(f"{s:.2f}" for s in d.hyp_scores)
             + f"; kept bones changed by at most {drift:.1e} rad")
    op("complete_flip", direction=1)
    op("complete_flip", direction=-1)
    LOG.note("the hypotheses stay on 'Completer' (flip them with the panel's arrows in the saved file)")


def save(d: Demo) -> None:
    """7. Save ``dposer_demo.blend`` with the walk's range as the scene range."""
    scene = bpy.context.scene
    set_active(d.walker)
    scene.frame_start, scene.frame_end = d.walk_range
    scene.frame_set(d.walk_range[0])
    blend = d.out / "dposer_demo.blend"
    bpy.context.preferences.filepaths.save_version = 0  # no .blend1 backups
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), check_existing=False, compress=True)
    d.outputs.append(blend)
    LOG.note(f"{blend} ({blend.stat().st_size / 1e6:.1f} MB): 'Walker' (original, noisy in a muted NLA "
             f"track, denoised active), 'Poser' (the in-between), 'Completer' (the hypotheses)")

