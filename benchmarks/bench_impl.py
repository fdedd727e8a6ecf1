"""Your implementation against torch's LSTMs: `lstm-claims bench --lstm-impl=MODULE:ATTR`.

Collected only when --lstm-impl is given (benchmarks/conftest.py ignores this file otherwise,
so a plain `lstm-claims bench` runs what it always ran). Four ways over the same sequence,
with the same weights (the implementation's own initialisation, copied into torch's modules):

  impl           the implementation under test, loaded through the claim suite's contract
                 (claims/cell_under_test.py: CellUnderTest.load(spec).module(m, n, device, dtype)),
                 run by `impl_sequence_forward`, the one place that knows how to run it
  lstmcell_loop  a Python loop of torch.nn.LSTMCell
  fused          torch.nn.LSTM over the whole sequence (oneDNN on CPU, cuDNN on CUDA)
  gemm_floor     the GEMMs no LSTM can skip, nothing else: forward, one input GEMM [T·B, m] x
                 [m, 4n] and T recurrent GEMMs [B, n] x [n, 4n]; forward+backward adds the
                 backward's GEMMs (T recurrent [B, 4n] x [4n, n] for dh, and one each for dx,
                 dW_ih and dW_hh over all steps): 3x the forward's arithmetic

"fwd" runs under torch.no_grad() and returns h_T; "fwdbwd" is h_T.sum().backward() with
gradients for the parameters (set to None before each call). T = 100, B in {1, 64},
n = m in {128, 512}, h_0 = c_0 = 0, x_t ~ N(0, 1) (seed 0); float32, and bfloat16 where the
implementation supports it: a bfloat16 case whose first call raises is skipped with the
reason "unsupported [KEY]: <the exception>", which bench.json's table shows.

bfloat16 on CPU runs at B = 1 only: CPUs without bf16 matrix instructions (AVX512-BF16, AMX)
multiply bf16 at a fraction of float32's speed (0.2 GFLOP/s measured for a [64, 512] x
[512, 2048] product on the development machine, against 26 in float32), so a B = 64 case
would take minutes per call; those cases skip with that reason. On CUDA every size runs.

`--bench-impl-sizes=smoke` (what `lstm-claims bench --smoke --lstm-impl=...` passes) times the
same cases at tiny sizes (T = 5, B in {1, 4}, n in {8, 16}) in a few seconds: enough to show
that the implementation runs here and that bench.json gets its ratios, not to compare speed.
"""
from __future__ import annotations

import pytest
import torch

from lstm_claims.benchmarks._support import DEVICES, measure, timed_call
from lstm_claims.claims.cell_under_test import CellUnderTest, is_sequence_module

SIZES = {"full": {"T": 100, "B": (1, 64), "n": (128, 512)},
         "smoke": {"T": 5, "B": (1, 4), "n": (8, 16)}}
WAYS = ("impl", "lstmcell_loop", "fused", "gemm_floor")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def impl_key(way: str, mode: str, B: int, n: int, dtype: str, device: str) -> str:
    """The key lstm_claims.bench reads this file's results by."""
    return f"impl/{way}/{mode}/B{B}/n{n}/{dtype}/{device}"


def pytest_generate_tests(metafunc):
    if metafunc.function.__name__ != "test_impl":
        return
    sizes = SIZES[metafunc.config.getoption("bench_impl_sizes")]
    metafunc.parametrize("bench_device", DEVICES)
    metafunc.parametrize("dtype", list(DTYPES))
    metafunc.parametrize("n", sizes["n"], ids=lambda n: f"n{n}")
    metafunc.parametrize("B", sizes["B"], ids=lambda b: f"B{b}")
    metafunc.parametrize("mode", ["fwd", "fwdbwd"])
    metafunc.parametrize("way", WAYS)


@pytest.fixture(scope="module")
def cut(request):
    spec = request.config.getoption("lstm_impl", default=None)
    if not spec:
        raise pytest.UsageError("bench_impl.py times an implementation: pass --lstm-impl=MODULE:ATTR")
    return CellUnderTest.load(spec)


def impl_sequence_forward(cut: CellUnderTest, cell: torch.nn.Module, xs, h0, c0):
    """Run the implementation over xs (T, B, m) from (h0, c0); return (h_T, c_T).

    The one function that knows how the implementation is driven: a cell (torch.nn.LSTMCell's
    contract, a step adapter) is looped in Python, cell(x_t, (h, c)) (the call itself, without
    CellUnderTest.step's per-step output check, which the case runs once before timing); a
    sequence module (torch.nn.LSTM's contract, a sequence adapter) is called once on the whole
    sequence, through its own forward (time-first), as the claim suite calls it.
    """
    if is_sequence_module(cell):
        return cell.forward_sequence(xs, (h0, c0))[1]
    return cell_loop(cell, xs, h0, c0)


def cell_loop(cell, xs, h0, c0):
    """A Python loop of a one-step cell, cell(x_t, (h, c)) -> (h, c), over xs (T, B, m)."""
    h, c = h0, c0
    for t in range(xs.shape[0]):
        h, c = cell(xs[t], (h, c))
    return h, c


def _torch_modules(cell, n, device, dtype):
    """torch.nn.LSTMCell and torch.nn.LSTM with the implementation's weights."""
    loop_cell = torch.nn.LSTMCell(n, n).to(device=device, dtype=dtype)
    fused = torch.nn.LSTM(n, n).to(device=device, dtype=dtype)
    with torch.no_grad():
        for name in PARAM_NAMES:
            value = getattr(cell, name)
            getattr(loop_cell, name).copy_(value)
            getattr(fused, f"{name}_l0").copy_(value)
    return loop_cell, fused


def _gemm_floor(n, B, T, xs, h0, mode):
    """The GEMMs of an LSTM over T steps, nothing else (see the module docstring)."""
    device, dtype = xs.device, xs.dtype
    g = torch.Generator().manual_seed(0)
    # Stored as nn.LSTM stores them, (4n, n), used transposed as its kernels do (for B = 1 a GEMV
    # over contiguous rows, the fast layout).
    w_ih_t, w_hh_t = (torch.randn(4 * n, n, generator=g).to(device=device, dtype=dtype).t() for _ in range(2))
    bias = torch.randn(4 * n, generator=g).to(device=device, dtype=dtype)
    x2 = xs.reshape(T * B, n)
    out = torch.empty(B, 4 * n, device=device, dtype=dtype)
    dh = torch.empty(B, n, device=device, dtype=dtype)
    dA = torch.randn(T * B, 4 * n, generator=g).to(device=device, dtype=dtype)
    H = torch.randn(T * B, n, generator=g).to(device=device, dtype=dtype)

    def forward():
        a = torch.addmm(bias, x2, w_ih_t)  # the input GEMM, all steps at once
        for _ in range(T):
            torch.mm(h0, w_hh_t, out=out)  # one recurrent GEMM per step
        return a, out

    def forward_backward():
        forward()
        for t in range(T):
            torch.mm(dA[t * B:(t + 1) * B], w_hh_t.t(), out=dh)  # dh_{t-1} = dA_t W_hh, per step
        return dA @ w_ih_t.t(), H.t() @ dA, x2.t() @ dA  # dx, dW_hh, dW_ih over all steps

    return forward if mode == "fwd" else forward_backward


def _runner(way, mode, cut, cell, loop_cell, fused, xs, h0, c0):
    """The timed call: forward (no grad) or forward+backward, for one way."""
    if way == "gemm_floor":
        T, B, n = xs.shape
        return _gemm_floor(n, B, T, xs, h0, mode)
    if way == "fused":
        forward, module = (lambda: fused(xs, (h0.unsqueeze(0), c0.unsqueeze(0)))[1][0][0]), fused
    elif way == "lstmcell_loop":
        forward, module = (lambda: cell_loop(loop_cell, xs, h0, c0)[0]), loop_cell
    else:
        forward, module = (lambda: impl_sequence_forward(cut, cell, xs, h0, c0)[0]), cell
    return timed_call(forward, module, mode)


def test_impl(benchmark, request, cut, way, mode, B, n, dtype, bench_device):
    sizes = SIZES[request.config.getoption("bench_impl_sizes")]
    T = sizes["T"]
    key = impl_key(way, mode, B, n, dtype, bench_device)
    torch_dtype = DTYPES[dtype]
    if dtype == "bfloat16" and torch.device(bench_device).type == "cpu" and B > 1 and SIZES["full"] is sizes:
        pytest.skip(f"not run [{key}]: bfloat16 on CPU at B = 1 only (bf16 GEMMs without bf16 matrix "
                    f"instructions take minutes per call at B = {B}; see the module docstring)")
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(T, B, n, generator=g).to(device=bench_device, dtype=torch_dtype)
    h0 = torch.zeros(B, n, device=bench_device, dtype=torch_dtype)
    c0 = torch.zeros(B, n, device=bench_device, dtype=torch_dtype)
    try:
        # The implementation's module, and one step through the contract's checked call: a float32
        # failure is a broken contract (the test fails); a bfloat16 one is recorded as unsupported.
        torch.manual_seed(0)
        cell = cut.module(n, n, bench_device, torch_dtype)
        if way == "impl":  # torch's ways need only its weights, and still run when it refuses a dtype
            with torch.no_grad():
                cut.step(cell, xs[0], h0, c0)
        loop_cell, fused = _torch_modules(cell, n, bench_device, torch_dtype)
        fn = _runner(way, mode, cut, cell, loop_cell, fused, xs, h0, c0)
        fn()  # the first call raises here if this way cannot run this dtype (e.g. a backward)
    except Exception as exc:
        if dtype == "float32":
            raise
        pytest.skip(f"unsupported [{key}]: {type(exc).__name__}: {exc}")
    full = request.config.getoption("bench_impl_sizes") == "full"
    # Smoke sizes: one timed round, since they only show that the file runs and bench.json gets its ratios.
    measure(benchmark, fn, key=key, group=f"impl {mode} B={B} n={n} {dtype} {bench_device}",
            device=bench_device, budget_s=0.6 if full else 0.0, min_rounds=3 if full else 1,
            max_rounds=50 if full else 1, impl=cut.spec if way == "impl" else way, way=way, mode=mode,
            B=B, n=n, T=T, dtype=dtype)
