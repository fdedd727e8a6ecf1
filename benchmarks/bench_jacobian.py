"""The long-range cell-state Jacobian dc_T/dc_0 over T = 100 steps at n = m = 64, batch 1, float64.

Five ways to the same matrix:
  closed_form        reference.jacobian_chain.cell_state_product: one unrolled forward pass,
                     then the factors J_t = D_t + K_t M_{t-1} built 32 steps at a time into a
                     reused buffer, each block multiplied out by a pairwise tree of batched
                     matmuls, the block products chained in time order
  closed_form_all_factors  cell_state_factors (all T factors at once, as the claims use them)
                     + ordered_product (pairwise tree over all T)
  jacrev / jacfwd    torch.func over the unrolled cell-state path c_0 -> c_T (vmapped over the
                     n basis vectors of the cotangent / tangent)
  autograd_rows      one backward pass per row of the Jacobian (n passes, retain_graph)

and the parts of the work (given factors, not ways to the Jacobian; lstm_claims.bench.jacobian_floor
combines them):
  forward_only       reference.jacobian_chain.unroll: the closed form's forward pass (T steps of
                     small kernels), which must run before any factor exists
  product_tree       ordered_product_tree over T given n x n factors: log2 T rounds of one
                     batched matmul each, the best product written here
  product_chain      the chain P <- J_t P of T - 1 dependent small matmuls. The note called this
                     the floor; it is not one: the tree does the same arithmetic in fewer, larger
                     kernels
  matmul_throughput  one large float64 matmul (1024 x 1024 x 1024), for the machine's GFLOP/s in
                     this run: 2 (T-1) n^3 flops at that rate is the arithmetic floor of the product

W_ho is zeroed so that the note's product *is* the total derivative (CLAIMS.md L6) and all
methods compute the same matrix; this is checked once before timing. torch's default
initialisation otherwise (uniform ±1/√n, seed 0), h_0 = 0, c_0 ~ N(0, 1), x_t ~ N(0, 1).
The differentiated paths use reference.lstm_step.preactivations without lstm_step's
per-step input check (the closed form validates its inputs once).
"""
from __future__ import annotations

import pytest
import torch
from torch.func import jacfwd, jacrev

from lstm_claims.benchmarks._support import measure
from lstm_claims.reference.jacobian_chain import (cell_state_factors, cell_state_product, ordered_product,
                                                  ordered_product_chain, ordered_product_tree, unroll)
from lstm_claims.reference.lstm_step import LSTMParams, preactivations

T, N, B = 100, 64, 1
DTYPE = torch.float64


@pytest.fixture(scope="module")
def problem():
    g = torch.Generator().manual_seed(0)
    k = N ** -0.5
    shapes = [(4 * N, N), (4 * N, N), (4 * N,), (4 * N,)]
    weight_ih, weight_hh, bias_ih, bias_hh = (
        (2 * torch.rand(s, generator=g, dtype=DTYPE) - 1) * k for s in shapes)
    weight_hh[3 * N:] = 0  # W_ho = 0: the note's product is the true Jacobian
    params = LSTMParams(weight_ih, weight_hh, bias_ih, bias_hh)
    xs = torch.randn(T, B, N, generator=g, dtype=DTYPE)
    h0 = torch.zeros(B, N, dtype=DTYPE)
    c0 = torch.randn(B, N, generator=g, dtype=DTYPE)

    def c_T(c):  # the unrolled cell-state path, c_0 -> c_T, for one example (c of shape (n,))
        h, c = h0[0:1], c.unsqueeze(0)
        for t in range(T):
            gt = preactivations(params, xs[t, 0:1], h)
            c = gt.f * c + gt.i * gt.g
            h = gt.o * torch.tanh(c)
        return c[0]

    methods = {
        "closed_form": lambda: cell_state_product(params, xs, h0, c0)[0],
        "closed_form_all_factors": lambda: ordered_product(cell_state_factors(params, xs, h0, c0).J)[0],
        "jacrev": lambda: jacrev(c_T)(c0[0]),
        "jacfwd": lambda: jacfwd(c_T)(c0[0]),
        "autograd_rows": lambda: _rows(c_T, c0[0]),
    }
    # Sanity only (the exact checks are tests/meta/test_jacobian_chain.py): every method agrees
    # with the closed form to within 1e-9 of its largest entry.
    ref = methods["closed_form"]()
    for name, fn in methods.items():
        got = fn()
        assert float((got - ref).abs().max()) <= 1e-9 * float(ref.abs().max()), name
    J = torch.randn(T, N, N, generator=g, dtype=DTYPE) / N ** 0.5
    forward = (lambda: unroll(params, xs, h0, c0))
    return methods, J, forward


def _rows(f, c0):
    c = c0.clone().requires_grad_()
    out = f(c)
    return torch.stack([torch.autograd.grad(out[k], c, retain_graph=True)[0] for k in range(out.shape[0])])


@pytest.mark.parametrize("method", ["closed_form", "closed_form_all_factors", "jacrev", "jacfwd", "autograd_rows"])
def test_cell_state_jacobian(benchmark, problem, method):
    methods, _, _ = problem
    measure(benchmark, methods[method], key=f"jacobian/{method}/T{T}/n{N}",
            group=f"cell-state jacobian T={T} n={N}", budget_s=1.0, method=method, T=T, n=N, dtype="float64")


@pytest.mark.parametrize("method", ["tree", "chain"])
def test_cell_state_jacobian_product(benchmark, problem, method):
    """The product of T given n x n factors alone: the part of the closed form that is arithmetic."""
    _, J, _ = problem
    fn = {"tree": ordered_product_tree, "chain": ordered_product_chain}[method]
    measure(benchmark, lambda: fn(J), key=f"jacobian/product_{method}/T{T}/n{N}",
            group=f"cell-state jacobian T={T} n={N}", budget_s=1.0, method=f"product_{method}", T=T, n=N,
            dtype="float64")


def test_cell_state_jacobian_forward(benchmark, problem):
    """The closed form's forward pass alone: every method runs one before it has factors to multiply."""
    _, _, forward = problem
    measure(benchmark, forward, key=f"jacobian/forward_only/T{T}/n{N}",
            group=f"cell-state jacobian T={T} n={N}", budget_s=1.0, method="forward_only", T=T, n=N,
            dtype="float64")


MATMUL_SIZE = 1024  # large enough that the matmul runs at the BLAS's throughput, small enough for ~0.1 s


def test_matmul_throughput(benchmark):
    """One large float64 matmul: the machine's GFLOP/s in this run (flops recorded for bench.json)."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=g, dtype=DTYPE) for _ in range(2))
    out = torch.empty(MATMUL_SIZE, MATMUL_SIZE, dtype=DTYPE)
    measure(benchmark, lambda: torch.mm(a, b, out=out), key=f"jacobian/matmul_throughput/n{MATMUL_SIZE}",
            group="matmul throughput float64", budget_s=1.0, method="matmul_throughput", size=MATMUL_SIZE,
            flops=2 * MATMUL_SIZE ** 3, dtype="float64")
