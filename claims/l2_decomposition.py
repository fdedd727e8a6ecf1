"""L2 — the decomposition of the cell-state Jacobian into a direct and an indirect path.

Note: "Decompose ∂c_t/∂c_{t-1} into a direct path and an indirect path through h_{t-1}:
∂c_t/∂c_{t-1} = diag(f_t) + (∂c_t/∂h_{t-1}) (∂h_{t-1}/∂c_{t-1})." With
h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}) and o_{t-1} given, exactly

    dc_t/dc_{t-1} = diag(f_t) + K_t M_{t-1}     (K_t, M_{t-1} as in CLAIMS.md L2).

The cell's autograd through that composition must equal the closed form of
reference.cell_state_jacobians; SymPy proves the identity for n = 1, 2, 3.
"""
from __future__ import annotations

import torch

from lstm_claims.claims import through_cell
from lstm_claims.claims.low_precision import ALL_DTYPES, on_impl_exact
from lstm_claims.strategies.kernel_problems import JACOBIAN_KERNEL_EXAMPLES
from lstm_claims.strategies.exact import per_dtype
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.l1_gates_blind_to_c import JACOBIAN_PROBLEMS
from lstm_claims.claims.record import Check, proof_of
from lstm_claims.claims.tolerances import ACTIVATION_ULPS, gamma, unit_roundoff, vjp_tolerance
from lstm_claims.claims.violation import assert_within, where
from lstm_claims.reference import symbolic
from lstm_claims.reference.cell_state_jacobians import cell_state_jacobian
from lstm_claims.reference.lstm_step import lstm_step_vjp

CLAIM = register(Claim(
    id="L2",
    title="the decomposition dc_t/dc_{t-1} = diag(f_t) + K_t M_{t-1}",
    statement="∂c_t/∂c_{t-1} = diag(f_t) [direct] + ∂c_t/∂h_{t-1} · ∂h_{t-1}/∂c_{t-1} [through gates].",
    condition="always (in the note's setting h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}), o_{t-1} given)",
    quantity="the cell's autograd Jacobian through h_{t-1} = o ⊙ tanh(c) against the closed form "
             "diag(f) + K M, elementwise within derived rounding bounds; SymPy proof for n = 1, 2, 3",
    unconditional=True,  # an identity or theorem: its verdict reads `holds`
))


def jacobian_tolerance(problem, dtype) -> torch.Tensor:
    """Allowed |J_cell - J_closed| elementwise, (B, n, n).

    Row k of J_cell is g_c + g_h ⊙ M computed in `dtype`, where (g_h, g_c) is the cell's
    VJP for v_c = e_k, v_h = 0 at h = fl(o ⊙ tanh c), and M = o ⊙ (1 - tanh² c):
      - h itself is rounded: |Δh| <= (ACTIVATION_ULPS + 1) u |h| enters the forward bound;
      - g_c, g_h carry the VJP bound; M carries (2 ACTIVATION_ULPS + 4) u (tanh, square,
        subtraction, product); the product g_h ⊙ M and the sum round once each (γ_2).
    """
    p = problem
    u = unit_roundoff(dtype)
    h = p.o_prev * torch.tanh(p.c)
    M = p.o_prev * (1 - torch.tanh(p.c) ** 2)
    err_M = (2 * ACTIVATION_ULPS + 4) * u
    h_err = (ACTIVATION_ULPS + 1) * u * h.abs()
    # The n rows at once: row k's VJP (v_c = e_k) for every batch row, stacked as n * B rows of one
    # batch (the h and c bounds of vjp_tolerance and lstm_step_vjp are per row), then unstacked.
    B, n = p.c.shape
    rep = lambda t: t.repeat(n, 1)  # noqa: E731  (row k * B + b is batch row b with v_c = e_k)
    v_c = torch.eye(n, dtype=p.c.dtype).repeat_interleave(B, dim=0)
    zeros = torch.zeros_like(v_c)
    tol = vjp_tolerance(p.params, rep(p.x), rep(h), rep(p.c), zeros, v_c, dtype, h_error=rep(h_err), batch=B)
    ref = lstm_step_vjp(p.params, rep(p.x), rep(h), rep(p.c), zeros, v_c)
    Mr = rep(M)
    gh = ref.h.abs() + tol["h"]  # bound on the cell's |g_h|
    rows = (tol["c"] + tol["h"] * (Mr + err_M) + gh * err_M
            + gamma(2, dtype) * (ref.c.abs() + tol["c"] + gh * (Mr + err_M)))
    return rows.view(n, B, n).transpose(0, 1)  # (B, n_out = k, n_in)


def check(cut, problem, device, dtype) -> dict:
    __tracebackhide__ = True
    p = problem
    J_cell, _ = through_cell.c_jacobian(cut, p, device, dtype, through_h=True)
    jac = cell_state_jacobian(p.params, p.x, p.c, p.o_prev)
    ctx = f"{where(device, dtype)}, B={p.batch} m={p.input_size} n={p.hidden_size}, h_(t-1) = o ⊙ tanh(c_(t-1))"
    worst = assert_within("L2", "dc_t/dc_(t-1) vs diag(f) + K M", J_cell, jac.J, jacobian_tolerance(p, dtype),
                          context=ctx, why="rounding bound of the cell's VJPs and of h = o ⊙ tanh(c)")
    return {"worst_error_over_allowed": worst}


def prove(n: int) -> dict:
    return symbolic.prove_decomposition(n)


# --- the record's checks ----------------------------------------------------------------------

CLAIM.define_checks(
    Check("decomposition", on_impl_exact(check), per_dtype(JACOBIAN_PROBLEMS), dtypes=ALL_DTYPES, through_impl=True,
          examples=JACOBIAN_KERNEL_EXAMPLES),
    *(Check(f"symbolic-n{n}", proof_of(prove, n), dtypes=(), devices=()) for n in (1, 2, 3)),
)
