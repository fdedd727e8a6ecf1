"""LSTM forward and forward+backward over T = 100 steps: loops of one-step cells vs the fused nn.LSTM.

Implementations, all with the same weights (float32, torch's default initialisation, seed 0):
  cell_loop                 a Python loop of torch.nn.LSTMCell
  reference_loop            a Python loop of reference.lstm_step.lstm_step, as the kit runs it: every
                            step calls check_step_inputs (shapes, dtypes, and isfinite over x, h, c
                            and all four parameter tensors), which costs time at every step
  reference_loop_unchecked  the same equations (reference.lstm_step.preactivations) without the
                            check, to show what the check costs
  fused                     torch.nn.LSTM over the whole sequence
and the floor of the fused LSTM: one input GEMM [T·B, m] x [m, 4n] plus T recurrent GEMMs
[B, n] x [n, 4n], nothing else (the work no LSTM implementation can skip).

"fwd" runs under torch.no_grad(); "fwdbwd" is h_T.sum().backward() with gradients for the
parameters (set to None before each call). Input size m = n; h_0 = c_0 = 0.
"""
from __future__ import annotations

import pytest
import torch

from lstm_claims.benchmarks._support import DEVICES, measure, timed_call
from lstm_claims.reference.lstm_step import LSTMParams, lstm_step, preactivations

T = 100
IMPLS = ["cell_loop", "reference_loop", "reference_loop_unchecked", "fused"]


def _step_unchecked(params, x, h, c):
    g = preactivations(params, x, h)
    c = g.f * c + g.i * g.g
    return g.o * torch.tanh(c), c


def _setup(B, n, device):
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(n, n).to(device)
    fused = torch.nn.LSTM(n, n).to(device)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(fused, f"{name}_l0").copy_(getattr(cell, name))
    xs = torch.randn(T, B, n, device=device)
    h0 = torch.zeros(B, n, device=device)
    return cell, fused, xs, h0


def _forward(impl, cell, fused, xs, h0):
    params = LSTMParams(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    if impl == "fused":
        return lambda: fused(xs, (h0.unsqueeze(0), h0.unsqueeze(0)))[0][-1]
    step = {"cell_loop": lambda x, h, c: cell(x, (h, c)),
            "reference_loop": lambda x, h, c: lstm_step(params, x, h, c),
            "reference_loop_unchecked": lambda x, h, c: _step_unchecked(params, x, h, c)}[impl]

    def run():
        h, c = h0, h0
        for t in range(xs.shape[0]):
            h, c = step(xs[t], h, c)
        return h
    return run


@pytest.mark.parametrize("bench_device", DEVICES)
@pytest.mark.parametrize("n", [128, 512], ids=lambda n: f"n{n}")
@pytest.mark.parametrize("B", [1, 64], ids=lambda b: f"B{b}")
@pytest.mark.parametrize("mode", ["fwd", "fwdbwd"])
@pytest.mark.parametrize("impl", IMPLS)
def test_lstm(benchmark, impl, mode, B, n, bench_device):
    cell, fused, xs, h0 = _setup(B, n, bench_device)
    forward = _forward(impl, cell, fused, xs, h0)
    module = fused if impl == "fused" else cell

    fn = timed_call(forward, module, mode)
    measure(benchmark, fn, key=f"lstm/{impl}/{mode}/B{B}/n{n}/{bench_device}",
            group=f"lstm {mode} B={B} n={n} {bench_device}", device=bench_device, budget_s=0.6,
            impl=impl, mode=mode, B=B, n=n, T=T, dtype="float32")


@pytest.mark.parametrize("bench_device", DEVICES)
@pytest.mark.parametrize("n", [128, 512], ids=lambda n: f"n{n}")
@pytest.mark.parametrize("B", [1, 64], ids=lambda b: f"B{b}")
def test_lstm_gemm_floor(benchmark, B, n, bench_device):
    g = torch.Generator().manual_seed(0)
    # Weights stored as nn.LSTM stores them, (4n, n), and used transposed, as its kernels do: for
    # B = 1 the product is then a GEMV over contiguous rows, the fast layout.
    w_ih_t = torch.randn(4 * n, n, generator=g).to(bench_device).t()
    w_hh_t = torch.randn(4 * n, n, generator=g).to(bench_device).t()
    bias = torch.randn(4 * n, generator=g).to(bench_device)
    xs = torch.randn(T * B, n, generator=g).to(bench_device)
    h = torch.randn(B, n, generator=g).to(bench_device)
    out = torch.empty(B, 4 * n, device=bench_device)

    def fn():
        a = torch.addmm(bias, xs, w_ih_t)  # the input GEMM, all steps at once
        for _ in range(T):
            torch.mm(h, w_hh_t, out=out)  # one recurrent GEMM per step
        return a, out

    measure(benchmark, fn, key=f"lstm/gemm_floor/fwd/B{B}/n{n}/{bench_device}",
            group=f"lstm fwd B={B} n={n} {bench_device}", device=bench_device, budget_s=0.6,
            impl="gemm_floor", mode="fwd", B=B, n=n, T=T, dtype="float32")
