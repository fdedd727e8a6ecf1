"""G4: the gate-free recurrence c_t = a_t ⊙ c_{t-1} + b_t, sequential loop vs blocked scan.

float32, a_t drawn like forget gates, σ(2 + 2z) with z ~ N(0, 1), with 1% of them exactly 0
and 1% equal to 1e-30 (so products of a's underflow, the regime where a division-based
scan breaks); b_t ~ N(0, 1); the same inputs (seeded per size) for the loop and the scan.
batch x width flattened to one axis of 64 or 512. The scan's relative error against the
float64 loop is recorded in extra_info (accuracy goal: <= 1e-6 in float32).
"""
from __future__ import annotations

import pytest
import torch

from lstm_claims.benchmarks._support import DEVICES, measure
from lstm_claims.reference.linear_scan import linear_recurrence_loop, linear_recurrence_scan

T_VALUES = [16, 64, 256, 1024, 4096, 16384]  # 16-256: to bracket the crossover
WIDTHS = [64, 512]


def forget_like_inputs(T: int, width: int, *, seed: int):
    g = torch.Generator().manual_seed(seed)
    a = torch.sigmoid(2 + 2 * torch.randn(T, width, generator=g))
    a[torch.rand(T, width, generator=g) < 0.01] = 0.0
    a[torch.rand(T, width, generator=g) < 0.01] = 1e-30
    return a, torch.randn(T, width, generator=g), torch.randn(width, generator=g)


@pytest.mark.parametrize("bench_device", DEVICES)
@pytest.mark.parametrize("width", WIDTHS, ids=lambda w: f"W{w}")
@pytest.mark.parametrize("T", T_VALUES, ids=lambda t: f"T{t}")
@pytest.mark.parametrize("impl", ["loop", "scan"])
def test_linear_recurrence(benchmark, impl, T, width, bench_device):
    a, b, c0 = forget_like_inputs(T, width, seed=1000 * T + width)
    info = {"T": T, "width": width, "dtype": "float32", "impl": impl}
    if impl == "scan":
        exact = linear_recurrence_loop(a.double(), b.double(), c0.double())
        got = linear_recurrence_scan(a.to(bench_device), b.to(bench_device), c0.to(bench_device)).cpu()
        info["rel_error_vs_float64"] = float((got.double() - exact).norm() / exact.norm())
        assert torch.isfinite(got).all()
    a, b, c0 = a.to(bench_device), b.to(bench_device), c0.to(bench_device)
    fn = {"loop": linear_recurrence_loop, "scan": linear_recurrence_scan}[impl]
    measure(benchmark, lambda: fn(a, b, c0), key=f"scan/{impl}/T{T}/W{width}/{bench_device}",
            group=f"linear recurrence T={T} W={width} {bench_device}", device=bench_device,
            budget_s=1.0 if impl == "loop" else 0.5, **info)
