"""Training script: trains, validates, saves best/last, resumes exactly, runs under torchrun (gloo)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.data.dataset import build_dataset_from_clips, save_dataset
from backend.engine.checkpoint import load_checkpoint
from backend.engine.prior import PosePrior
from backend.evaluation.metrics import hidden_fk_joints
from backend.train import main
from backend.training.data import source_weights
from backend.training.schedule import TrainConfig, lr_at

REPO = Path(__file__).resolve().parents[3]


class _Clip:
    def __init__(self, body_pose: np.ndarray) -> None:
        self.body_pose = body_pose
        self.root_orient = np.zeros((len(body_pose), 3), np.float32)
        self.trans = np.zeros((len(body_pose), 3), np.float32)


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    clips = []
    for i in range(40):  # smooth random walks in pose space, 40 frames each
        steps = rng.normal(0, 0.05, size=(40, 63)).cumsum(0) + rng.normal(0, 0.3, size=(1, 63))
        clips.append((f"synthetic/clip{i:02d}", "synthetic", _Clip(steps.astype(np.float32))))
    ds = build_dataset_from_clips(clips, val_fraction=0.2)
    assert (ds.clip_split == "val").any() and (ds.clip_split == "train").any()
    return save_dataset(ds, tmp_path_factory.mktemp("ds") / "synthetic.npz")


def _args(dataset: Path, out: Path, *extra: str) -> list[str]:
    return ["--dataset", str(dataset), "--out", str(out), "--iters", "6", "--batch", "32", "--hidden", "64",
            "--warmup", "2", "--val-every", "3", "--ckpt-every", "3", "--val-frames", "6",
            "--val-hypotheses", "2", "--device", "cpu", "--quiet", *extra]


def test_lr_schedule_warmup_then_cosine() -> None:
    cfg = TrainConfig(iters=100, warmup=10, lr=1.0, min_lr_frac=0.0)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(55, cfg) == pytest.approx(0.5)
    assert lr_at(100, cfg) == pytest.approx(0.0, abs=1e-12)


def test_validation_measures_the_joints_the_left_leg_moves() -> None:
    # left hip/knee/ankle/foot rotations move the left knee, ankle and foot positions
    assert hidden_fk_joints((0, 3, 6, 9)) == [4, 7, 10]


def test_train_validate_save_and_exact_resume(dataset_file: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(_args(dataset_file, straight)) == 0
    for name in ("best.pt", "last.pt", "train_state.pt"):
        assert (straight / name).exists(), name
    ck = load_checkpoint(straight / "last.pt")
    assert ck.provenance["iterations"] == 6
    assert ck.provenance["validation"]["left_leg_best_mm"] > 0
    assert ck.mean.shape == (63,) and torch.all(ck.std > 0)
    PosePrior.load(straight / "best.pt")  # the best checkpoint loads as a prior

    # interrupted after 4 steps, then resumed: bit-identical to the straight run
    assert main(_args(dataset_file, split, "--stop-after", "4")) == 0
    assert load_checkpoint(split / "last.pt").provenance["iterations"] == 4
    assert main(_args(dataset_file, split, "--resume")) == 0
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(split / "last.pt")
    assert b.provenance["iterations"] == 6
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k]), k
    sa = torch.load(straight / "train_state.pt", weights_only=False)
    sb = torch.load(split / "train_state.pt", weights_only=False)
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k
    assert [h["left_leg_best_mm"] for h in sa["history"]] == [h["left_leg_best_mm"] for h in sb["history"]]


def test_torchrun_ddp_two_cpu_processes(dataset_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    with socket.socket() as sock:  # a free loopback port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={port}",
           "-m", "backend.train", *_args(dataset_file, out, "--iters", "4")]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # take the worker processes down too
        proc.communicate()
        pytest.fail("torchrun DDP run did not finish in 240 s")
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads([l for l in stdout.splitlines() if l.startswith("{")][-1])
    assert summary["steps"] == 4
    ck = load_checkpoint(out / "last.pt")
    assert ck.provenance["world_size"] == 2 and ck.provenance["iterations"] == 4


def test_lr_schedule_follows_the_time_budget() -> None:
    cfg = TrainConfig(iters=1000, warmup=10, lr=1.0, min_lr_frac=0.0, time_budget_s=100.0)
    assert lr_at(20, cfg, elapsed_s=50.0) == pytest.approx(0.5)    # half the time spent: half-way down
    assert lr_at(20, cfg, elapsed_s=100.0) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(505, cfg, elapsed_s=1.0) == pytest.approx(0.5)     # steps ahead of the clock still count
    assert lr_at(505, TrainConfig(iters=1000, warmup=10, lr=1.0, min_lr_frac=0.0), elapsed_s=99.0) \
        == pytest.approx(0.5)                                        # no budget: steps only


def test_source_weights_damp_the_big_source() -> None:
    src = np.array(["big"] * 900 + ["small"] * 100)
    w, shares = source_weights(src, 1.0)
    np.testing.assert_allclose(w, 1 / 1000)
    w, shares = source_weights(src, 0.5)
    assert shares["big"] == pytest.approx(0.75) and shares["small"] == pytest.approx(0.25)
    assert w.sum() == pytest.approx(1.0) and w[-1] == pytest.approx(0.25 / 100)
    _, shares = source_weights(src, 0.0)
    assert shares["big"] == pytest.approx(0.5)


def test_training_mirrors_and_stops_on_its_time_budget(dataset_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(_args(dataset_file, out, "--iters", "100000", "--time-budget-min", "0.001")) == 0
    st = torch.load(out / "train_state.pt", map_location="cpu", weights_only=False)
    assert 0 < st["step"] < 100000 and st["elapsed_s"] >= 0.06
    from backend.data.dataset import load_dataset
    n = len(load_dataset(path=dataset_file).train_poses())
    assert len(st["data"]["train"]) == 2 * n and st["data"]["provenance"]["mirror"] is True
    assert (out / "last.pt").exists()
