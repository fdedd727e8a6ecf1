"""The long-range cell-state Jacobian dc_T/dc_0 over T = 100 steps at n = m = 64, batch 1, float64.

Five ways to the same matrix, and the floor:
  closed_form        reference.jacobian_chain.cell_state_product: one unrolled forward pass,
                     then the factors J_t = D_t + K_t M_{t-1} built 32 steps at a time into a
                     reused buffer, each block multiplied out by a pairwise tree of batched
                     matmuls, the block products chained in time order
  closed_form_all_factors  cell_state_factors (all T factors at once, as the claims use them)
                     + ordered_product (pairwise tree over all T)
  jacrev / jacfwd    torch.func over the unrolled cell-state path c_0 -> c_T (vmapped over the
                     n basis vectors of the cotangent / tangent)
  autograd_rows      one backward pass per row of the Jacobian (n passes, retain_graph)
  matmul_floor       a bare chain of T n x n matmuls, P <- J_t P (the work of any product form)

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
from lstm_claims.reference.jacobian_chain import cell_state_factors, cell_state_product, ordered_product
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
    return methods, J


def _rows(f, c0):
    c = c0.clone().requires_grad_()
    out = f(c)
    return torch.stack([torch.autograd.grad(out[k], c, retain_graph=True)[0] for k in range(out.shape[0])])


@pytest.mark.parametrize("method", ["closed_form", "closed_form_all_factors", "jacrev", "jacfwd", "autograd_rows"])
def test_cell_state_jacobian(benchmark, problem, method):
    methods, _ = problem
    measure(benchmark, methods[method], key=f"jacobian/{method}/T{T}/n{N}",
            group=f"cell-state jacobian T={T} n={N}", budget_s=1.0, method=method, T=T, n=N, dtype="float64")


def test_cell_state_jacobian_matmul_floor(benchmark, problem):
    _, J = problem

    def chain():
        P = J[0]
        for t in range(1, T):
            P = J[t] @ P
        return P

    measure(benchmark, chain, key=f"jacobian/matmul_floor/T{T}/n{N}",
            group=f"cell-state jacobian T={T} n={N}", budget_s=1.0, method="matmul_floor", T=T, n=N, dtype="float64")
