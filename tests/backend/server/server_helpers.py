"""Helpers for the server tests (a uniquely named module: test dirs have no __init__.py, so `conftest`
is not importable by name): a tiny checkpoint, a raw server driver, synthetic BVH / AMASS files."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[3]
SHIPPED_WEIGHTS = REPO / "weights" / "dposer_cmu_bandai.pt"
STUB_TASKS = Path(__file__).resolve().parent / "stub_tasks.py"
STUB_SERVER = Path(__file__).resolve().parent / "stub_server.py"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def make_tiny_checkpoint(path: Path) -> Path:
    """A small random-weight DPoser checkpoint (fast on CPU) written with backend.engine.checkpoint."""
    import torch

    from backend.engine.checkpoint import Checkpoint, make_provenance, save_checkpoint
    from backend.engine.network import NetworkConfig, ScoreMLP

    torch.manual_seed(0)
    cfg = NetworkConfig(dim=63, hidden=64, n_blocks=1, time_embed_dim=32, dropout=0.0, groups=8)
    net = ScoreMLP(cfg)
    ckpt = Checkpoint(config=cfg, state_dict=net.state_dict(), mean=torch.zeros(63), std=torch.full((63,), 0.3),
                      provenance=make_provenance("tiny random test network", 0))
    return save_checkpoint(path, ckpt)


def tasks_available() -> bool:
    try:
        import backend.tasks  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


class RawServer:
    """``python -m backend.server`` driven line by line (no client code involved); ``stub``: on the stub
    tasks (``stub_server.py``)."""

    def __init__(self, *args: str, log: Path, env: dict[str, str] | None = None, stub: bool = False) -> None:
        e = dict(os.environ)
        e.update({"CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)})
        e.update(env or {})
        cmd = [str(STUB_SERVER)] if stub else ["-m", "backend.server"]
        self.proc = subprocess.Popen([sys.executable, *cmd, "--log", str(log), *args],
                                     cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=e, bufsize=1 << 16)
        self.lines: "queue.Queue[bytes | None]" = queue.Queue()
        self.raw: list[bytes] = []
        self.stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        self.hello = self.next(timeout=60)
        assert self.hello["type"] == "hello", self.hello

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self.raw.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in iter(self.proc.stderr.readline, b""):
            self.stderr.append(line)

    def next(self, timeout: float = 30) -> dict:
        line = self.lines.get(timeout=timeout)
        if line is None:
            raise EOFError("server closed stdout; stderr: " + b"".join(self.stderr[-20:]).decode(errors="replace"))
        return json.loads(line)

    def send(self, obj: Any) -> None:
        data = obj if isinstance(obj, bytes) else (json.dumps(obj) + "\n").encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def replies(self, rid: Any, timeout: float = 60) -> list[dict]:
        """Messages for ``rid`` up to and including its final result/error (others are kept)."""
        out: list[dict] = []
        deadline = time.monotonic() + timeout
        stash = []
        while True:
            msg = self.next(timeout=max(0.01, deadline - time.monotonic()))
            if msg.get("id") != rid:
                stash.append(msg)
                continue
            out.append(msg)
            if msg["type"] in ("result", "error"):
                for m in stash:
                    self.lines.put((json.dumps(m) + "\n").encode())
                return out

    def request(self, obj: dict, timeout: float = 60) -> dict:
        """Send and return the final reply."""
        self.send(obj)
        return self.replies(obj.get("id"), timeout)[-1]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_test_bvh(path: Path, frames: int = 6) -> Path:
    """A small synthetic BVH of the ``cmu_daz`` family (T-pose rest, cm, +Y up) with a little motion."""
    import math

    tree = [  # (name, parent, offset cm)
        ("hip", None, (0, 95, 0)), ("abdomen", "hip", (0, 10, 0)), ("chest", "abdomen", (0, 15, 0)),
        ("neck", "chest", (0, 20, 0)), ("head", "neck", (0, 8, 0)),
        ("lCollar", "chest", (3, 15, 0)), ("lShldr", "lCollar", (15, 0, 0)), ("lForeArm", "lShldr", (27, 0, 0)),
        ("lHand", "lForeArm", (25, 0, 0)), ("lMid1", "lHand", (8, 0, 0)),
        ("rCollar", "chest", (-3, 15, 0)), ("rShldr", "rCollar", (-15, 0, 0)), ("rForeArm", "rShldr", (-27, 0, 0)),
        ("rHand", "rForeArm", (-25, 0, 0)), ("rMid1", "rHand", (-8, 0, 0)),
        ("lThigh", "hip", (9, -5, 0)), ("lShin", "lThigh", (0, -42, 0)), ("lFoot", "lShin", (0, -42, 0)),
        ("rThigh", "hip", (-9, -5, 0)), ("rShin", "rThigh", (0, -42, 0)), ("rFoot", "rShin", (0, -42, 0)),
    ]
    ends = {"head": (0, 10, 0), "lMid1": (4, 0, 0), "rMid1": (-4, 0, 0), "lFoot": (0, -5, 12), "rFoot": (0, -5, 12)}
    children: dict[str | None, list] = {}
    for name, parent, off in tree:
        children.setdefault(parent, []).append((name, off))
    order: list[str] = []
    lines: list[str] = ["HIERARCHY"]

    def emit(name: str, off: tuple, depth: int, root: bool) -> None:
        ind = "  " * depth
        lines.append(f"{ind}{'ROOT' if root else 'JOINT'} {name}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}  OFFSET {off[0]} {off[1]} {off[2]}")
        if root:
            lines.append(f"{ind}  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation")
        else:
            lines.append(f"{ind}  CHANNELS 3 Zrotation Xrotation Yrotation")
        order.append(name)
        for child, coff in children.get(name, []):
            emit(child, coff, depth + 1, False)
        if name in ends:
            e = ends[name]
            lines.extend([f"{ind}  End Site", f"{ind}  {{", f"{ind}    OFFSET {e[0]} {e[1]} {e[2]}", f"{ind}  }}"])
        lines.append(f"{ind}}}")

    emit("hip", (0, 0, 0), 0, True)
    lines += ["MOTION", f"Frames: {frames}", "Frame Time: 0.0333333"]
    for f in range(frames):
        vals: list[float] = []
        for name in order:
            if name == "hip":
                vals += [0.0, 95.0, 2.0 * f, 0.0, 0.0, 0.0]
            else:
                a = 10.0 * math.sin(0.3 * f) if name in ("lShin", "rForeArm") else 0.0
                vals += [0.0, a, 0.0]
        lines.append(" ".join(f"{v:.4f}" for v in vals))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_test_amass(path: Path, frames: int = 8) -> Path:
    """A small synthetic AMASS-style ``.npz`` (SMPL+H 156-dim poses, Z-up)."""
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(path, poses=(0.1 * rng.standard_normal((frames, 156))).astype(np.float64),
             trans=np.zeros((frames, 3)), betas=np.zeros(16), gender=np.array("neutral"),
             mocap_framerate=np.array(60.0))
    return path
