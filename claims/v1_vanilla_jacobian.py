"""V1 — the vanilla RNN Jacobian.

Note: "the vanilla recurrent network, where the analogous Jacobian is diag(tanh'(z_t)) W_hh".
For h_t = tanh(W_hh h_{t-1} + W_xh x_t + b): ∂h_t/∂h_{t-1} = diag(tanh'(z_t)) W_hh, exactly.

Checked on torch.nn.RNN (tanh) on the device and dtype under test: its autograd one-step
Jacobian at every step of its own trajectory against the closed form of
reference.vanilla_rnn, within a derived rounding bound; SymPy proves the identity for
n = 1, 2, 3 and the chain ∂h_T/∂h_0 = J_T ⋯ J_1 (the state is h alone) for small n, T.
"""
from __future__ import annotations

import torch

from lstm_claims.claims import through_rnn
from lstm_claims.claims.rnn_tolerances import rnn_step_vjp_error
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check, drawn_from
from lstm_claims.strategies.vanilla_rnn_problems import rnn_problems
from lstm_claims.claims.violation import assert_within, where
from lstm_claims.reference import symbolic_long_range
from lstm_claims.reference.vanilla_rnn import preactivation, step_jacobians

CLAIM = register(Claim(
    id="V1",
    title="the vanilla Jacobian diag(tanh'(z_t)) W_hh",
    statement="The vanilla recurrent network's analogous Jacobian is diag(tanh'(z_t)) W_hh.",
    condition="always (h_t = tanh(W_hh h_(t-1) + W_xh x_t + b), torch.nn.RNN with nonlinearity='tanh')",
    quantity="torch.nn.RNN's autograd ∂h_t/∂h_(t-1) at every step of its trajectory against diag(tanh'(z_t)) W_hh "
             "(float64), elementwise within derived bounds; SymPy for n = 1, 2, 3 and the T-step chain",
    unconditional=True,  # an identity or theorem: its verdict reads `holds`
))

WHY = ("rounding bound of one tanh-RNN backward step (z: γ_(m+n+2), tanh and 1 - y², the product with W_hh: "
       "γ_(n+1)), in the dtype under test plus float64")


def check(problem, device, dtype) -> dict:
    __tracebackhide__ = True
    p = problem
    n = p.hidden_size
    traj = through_rnn.trajectory(p.params, p.xs, p.h0, device, dtype)
    x, h_prev = p.xs.flatten(0, 1), traj[:-1].flatten(0, 1)
    J_rnn = through_rnn.step_jacobians(p.params, x, h_prev, device, dtype)
    J_ref = step_jacobians(p.params, preactivation(p.params, x, h_prev))
    x_r, h_r = x.repeat_interleave(n, 0), h_prev.repeat_interleave(n, 0)
    seeds = through_rnn.rows_of(x.shape[0], n)
    tol = (rnn_step_vjp_error(p.params, x_r, h_r, seeds, dtype)
           + rnn_step_vjp_error(p.params, x_r, h_r, seeds, torch.float64)).view(-1, n, n)
    ctx = f"{where(device, dtype)}, torch.nn.RNN, T={p.steps} B={p.batch} m={p.input_size} n={n}"
    worst = assert_within("V1", "∂h_t/∂h_(t-1) vs diag(tanh'(z_t)) W_hh", J_rnn, J_ref, tol, context=ctx, why=WHY)
    return {"worst_error_over_allowed": worst}


def proofs() -> list[dict]:
    return [*(symbolic_long_range.prove_vanilla_jacobian(n) for n in (1, 2, 3)),
            symbolic_long_range.prove_vanilla_chain(1, 3), symbolic_long_range.prove_vanilla_chain(2, 2)]


# --- the record's checks ----------------------------------------------------------------------

def _step_jacobian(ctx, problem):
    return check(problem, ctx.device, ctx.dtype)


def _symbolic(ctx):
    ctx.figures(symbolic=[p["identity"] for p in proofs()])


CLAIM.define_checks(
    Check("rnn-step-jacobian", _step_jacobian, drawn_from(rnn_problems(max_steps=12))),
    Check("symbolic", _symbolic, dtypes=(), devices=()),
)
