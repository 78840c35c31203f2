"""backend.bench helpers: floor model, call counting, table, extra-bench hook (no timing assertions)."""

from __future__ import annotations

import numpy as np
import pytest

from backend import bench, tasks
from backend.engine.prior import PosePrior
from tests.backend.evaluation.tiny_checkpoint import make_tiny_checkpoint


@pytest.fixture(scope="module")
def prior(tmp_path_factory: pytest.TempPathFactory) -> PosePrior:
    return PosePrior.load(make_tiny_checkpoint(tmp_path_factory.mktemp("b") / "tiny.pt"))


def test_call_counter_and_floor(prior: PosePrior) -> None:
    with bench._CallCounter(prior) as cc:
        tasks.sample(prior, 3, sampler="ddim", steps=4, seed=0)
    assert cc.rows == [3, 3, 3, 3]
    assert prior.fast_eps.call_log is None
    macs, wbytes = bench.network_cost(prior)
    assert wbytes == 4 * macs > 0
    f1 = bench.floor_seconds([1] * 10, prior, gflops=10.0, gbs=10.0)
    f2 = bench.floor_seconds([1] * 20, prior, gflops=10.0, gbs=10.0)
    assert f2 == pytest.approx(2 * f1)


def test_table_and_extra_hook(prior: PosePrior, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = bench.BenchContext(prior=prior, device="cpu", repeats=1, matmul_gflops=1.0, bandwidth_gbs=1.0)

    def extra(c: bench.BenchContext) -> list[dict]:
        return [{"op": "server round trip", "median_s": 0.01, "target_s": 0.05}]
    monkeypatch.setattr(bench, "EXTRA_BENCHES", [extra])
    rows = [r for fn in bench.EXTRA_BENCHES for r in fn(ctx)]
    rows.append({"op": "x", "median_s": 1.0, "calls": 3, "floor_s": 0.5, "ratio": 2.0, "target_s": 0.6})
    txt = bench.format_table(rows, {"device": "cpu", "matmul_gflops": 1.0, "bandwidth_gbs": 1.0, "threads": 1})
    assert "server round trip" in txt and "NO" in txt and "yes" in txt
    med, ts = bench.time_op(lambda: np.zeros(3), "cpu", repeats=3)
    assert len(ts) == 3 and med >= 0
