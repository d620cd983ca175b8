"""benchmarks/bench_model.py's GEMM ceiling (issue 9): what it records and replays, counted from the layer shapes;
which CPUs it times bf16 on; bench_revisions.py's A/B of two revisions."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gridconv_core.gridconv import GridConv

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import gridconv_core.amp  # noqa: E402
from bench_model import gemms_alone, times_bf16  # noqa: E402


class _One(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = GridConv(16, 32, 3, (5, 5), ("circular", "replicate"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _fused_gflop(conv: GridConv, batch: int) -> float:
    """Eq. 8's fused FLOPs: the terms per pose (285 for a 5x5 grid, c + r) times ``C_in x C_out``, times 2."""
    return 2 * batch * conv.term_count * conv.in_channels * conv.out_channels / 1e9


@pytest.mark.parametrize("training", [False, True])
def test_records_the_layer_flops_of_eq_8(training: bool) -> None:
    model = _One().train(training)
    x = torch.randn(40, 16, 5, 5, requires_grad=training)  # 1000 cells: the fused path
    assert model.conv.path(40) == "fused"

    def call() -> None:
        if training:
            model(x).square().sum().backward()
        else:
            with torch.no_grad():
                model(x)

    replay, gflop = gemms_alone(call)
    # forward only in eval; forward, input gradient and kernel gradient in training. The fused kernels are sums and
    # picks of the branch weights: no GEMM.
    assert gflop == pytest.approx((3 if training else 1) * _fused_gflop(model.conv, 40), rel=1e-9)
    replay()  # the recorded calls run again on their own


def test_counts_a_linear_with_bias_from_its_operands() -> None:
    a, w, bias = torch.randn(8, 5), torch.randn(3, 5), torch.randn(3)
    replay, gflop = gemms_alone(lambda: torch.nn.functional.linear(a, w, bias))  # addmm
    assert gflop == pytest.approx(2 * 8 * 5 * 3 / 1e9)
    replay()


@pytest.mark.parametrize(("flags", "native"), [({"avx2", "fma"}, False), ({"avx2", "avx512_bf16"}, True),
                                               ({"amx_bf16", "amx_tile"}, True)])
def test_bf16_is_timed_by_default_only_where_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch, flags: set[str],
                                                            native: bool) -> None:
    """Emulated bf16 (an AVX2 EPYC: 90x slower than fp32) would keep the benchmark busy for an hour."""
    monkeypatch.setattr(gridconv_core.amp, "cpu_flags", lambda: frozenset(flags))
    cpu = torch.device("cpu")
    assert times_bf16("auto", cpu) is native
    assert times_bf16("on", cpu) and not times_bf16("off", cpu)


def test_revisions_are_exported_and_compared_in_their_own_processes(tmp_path: Path) -> None:
    """bench_revisions: HEAD's package from git beside the working tree's, a child each, one JSON with the ratios."""
    if subprocess.run(["git", "-C", str(BENCH.parent), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout: bench_revisions exports revisions with git")
    out = tmp_path / "ab.json"
    run = subprocess.run([sys.executable, str(BENCH / "bench_revisions.py"), "HEAD", "--children", "1", "--steps", "1",
                          "--train-batch", "4", "--batches", "2", "--json", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert set(result["ms"]["A"]) == set(result["speedup_b_over_a"]) == {"train_b4", "infer_b2"}
    assert all(v > 0 for v in result["speedup_b_over_a"].values())
    assert "/A/HEAD/gridconv_core" in run.stdout  # revision A ran its exported package, not the installed one


def test_an_unknown_revision_is_one_clear_line() -> None:
    run = subprocess.run([sys.executable, str(BENCH / "bench_revisions.py"), "no-such-revision"],
                         capture_output=True, text=True)
    assert run.returncode != 0 and "git cannot export gridconv_core at 'no-such-revision'" in run.stderr
    assert "Traceback" not in run.stderr
