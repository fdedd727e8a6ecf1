"""R1 — the I + F form: residual blocks, and the cell-state step without a forget gate.

Note: "The cell-state recurrence has the same additive structure as a residual block
h_t = h_(t-1) + F(h_(t-1)). In both cases the Jacobian has the form I + something."
Precisely (CLAIMS.md R1): the Jacobian of x + F(x) is I + J_F exactly; and with the forget
gate fixed to 1 (the 1997 LSTM had none) the cell-state step c_t = c_(t-1) + i_t ⊙ g_t has
dc_t/dc_(t-1) = I + K'_t M_(t-1), K'_t being L2's K_t without its forget-gate term.

Checked with torch.func (jacrev under vmap, batched over examples) on the device and dtype
under test: the residual block's Jacobian against I + the branch's Jacobian (one rounding
apart), the branch's against its closed form W2 diag(tanh'(W1 x + b1)) W1; and the
forget-free step's autograd Jacobian through h = o ⊙ tanh(c) against I + K'M. SymPy proves
both identities (for arbitrary F, n = 2, 3; for the step, n = 1, 2).
"""
from __future__ import annotations

import dataclasses

import torch
from torch.func import jacrev, vmap

from lstm_claims.claims.l2_decomposition import jacobian_tolerance
from lstm_claims.claims.residual_tolerances import branch_jacobian_error
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check, drawn_from
from lstm_claims.strategies import step_problems
from lstm_claims.strategies.residual_stacks import residual_stacks
from lstm_claims.claims.tolerances import smallest_subnormal, unit_roundoff
from lstm_claims.claims.violation import assert_within, where
from lstm_claims.reference import symbolic_long_range
from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.reference.residual import block_branch, branch_jacobian, forget_free_jacobian, forget_free_step, residual_block

CLAIM = register(Claim(
    id="R1",
    title="the Jacobian of a residual step is I + J_F",
    statement="A residual block h_t = h_(t-1) + F(h_(t-1)) has Jacobian of the form I + something, like the "
              "cell-state recurrence (additive structure).",
    condition="always (for x + F(x); for the cell state with the forget gate fixed to 1)",
    quantity="torch.func Jacobians of x + F(x) vs I + J_F (one rounding) and J_F vs its closed form; the forget-free "
             "cell step's Jacobian through h = o ⊙ tanh(c) vs I + K'M (L2's derived bound); SymPy proofs",
    unconditional=True,  # an identity or theorem: its verdict reads `holds`
))

# A forget gate pinned to 1 in both dtypes: σ(40) = 1 - 4e-18 rounds to 1 in float32 and float64.
PINNED_FORGET_BIAS = 40.0


def block_jacobians(p, x, device, dtype):
    """(J of x + F(x), J_F) by jacrev, vmapped over the rows of x; float64 on the CPU, (B, n, n) each."""
    pd = p.to(dtype=dtype, device=device)
    xd = x.to(device=device, dtype=dtype)
    J_res = vmap(jacrev(lambda v: residual_block(pd, v)))(xd)
    J_F = vmap(jacrev(lambda v: block_branch(pd, v)))(xd)
    return J_res.detach().to("cpu", torch.float64), J_F.detach().to("cpu", torch.float64)


def check_block(block, x, device, dtype) -> dict:
    """One residual block at the rows of x (B, n)."""
    __tracebackhide__ = True
    n = x.shape[1]
    ctx = f"{where(device, dtype)}, residual block n={n} k={block.w1.shape[0]}, B={x.shape[0]}"
    J_res, J_F = block_jacobians(block, x, device, dtype)
    eye = torch.eye(n, dtype=torch.float64)
    # Reverse mode adds the identity path's cotangent to the branch's once: one rounding of I + J_F.
    u, eta = unit_roundoff(dtype), smallest_subnormal(dtype)
    w1 = assert_within("R1", "d(x + F(x))/dx vs I + J_F", J_res, eye + J_F, u * (eye + J_F).abs() + eta, context=ctx,
                       why="one rounding of the sum of the identity path and the branch in the backward")
    tol = branch_jacobian_error(block, x, dtype) + branch_jacobian_error(block, x, torch.float64)
    w2 = assert_within("R1", "J_F by autograd vs W2 diag(tanh'(W1 x + b1)) W1", J_F, branch_jacobian(block, x), tol,
                       context=ctx, why="rounding bound of the branch's backward (claims/residual_tolerances.py)")
    return {"worst_error_over_allowed": max(w1, w2)}


def pinned_forget_problem(problem):
    """The StepProblem with the forget gate pinned to 1: W_if = W_hf = 0, bias_ih[f] = 40, bias_hh[f] = 0.

    Then the standard step computes f ⊙ c + i ⊙ g = c + i ⊙ g with exactly the same roundings as the
    forget-free step (f = 1 multiplies exactly; σ'(40) evaluates to exactly 0), so L2's derived
    tolerance for the standard cell bounds the forget-free step's Jacobian too.
    """
    p = problem.params
    n = p.hidden_size
    w_ih, w_hh, b_ih, b_hh = p.weight_ih.clone(), p.weight_hh.clone(), p.bias_ih.clone(), p.bias_hh.clone()
    w_ih[n:2 * n] = 0
    w_hh[n:2 * n] = 0
    b_ih[n:2 * n] = PINNED_FORGET_BIAS
    b_hh[n:2 * n] = 0
    return dataclasses.replace(problem, params=LSTMParams(w_ih, w_hh, b_ih, b_hh))


def check_forget_free_step(problem, device, dtype) -> dict:
    """dc_t/dc_(t-1) of c + i ⊙ g through h = o ⊙ tanh(c), by jacrev under vmap, vs I + K'M."""
    __tracebackhide__ = True
    q = pinned_forget_problem(problem)
    p = q.params.to(dtype=dtype, device=device)
    x, c, o = (t.to(device=device, dtype=dtype) for t in (q.x, q.c, q.o_prev))

    def step(x1, c1, o1):
        h1 = o1 * torch.tanh(c1)
        return forget_free_step(p, x1.unsqueeze(0), h1.unsqueeze(0), c1.unsqueeze(0)).squeeze(0)

    J = vmap(jacrev(step, argnums=1))(x, c, o).detach().to("cpu", torch.float64)
    J_ref, _, _ = forget_free_jacobian(q.params, q.x, q.c, q.o_prev)
    ctx = f"{where(device, dtype)}, forget-free step, B={q.batch} m={q.input_size} n={q.hidden_size}"
    worst = assert_within("R1", "dc_t/dc_(t-1) of c + i ⊙ g vs I + K'M", J, J_ref, jacobian_tolerance(q, dtype),
                          context=ctx, why="L2's derived bound for the standard step with f pinned to 1 "
                                           "(the same arithmetic)")
    return {"worst_error_over_allowed": worst}


def proofs() -> list[dict]:
    return [symbolic_long_range.prove_residual_jacobian(2), symbolic_long_range.prove_residual_jacobian(3),
            symbolic_long_range.prove_forget_free_step(1), symbolic_long_range.prove_forget_free_step(2)]


# --- the record's checks ----------------------------------------------------------------------

def _block(ctx, stack):
    return check_block(stack.blocks[0], stack.x0, ctx.device, ctx.dtype)


def _forget_free(ctx, problem):
    return check_forget_free_step(problem, ctx.device, ctx.dtype)


def _symbolic(ctx):
    ctx.figures(symbolic=[p["identity"] for p in proofs()])


CLAIM.define_checks(
    Check("residual-block-jacobian", _block, drawn_from(residual_stacks(max_depth=1, max_batch=3))),
    Check("forget-free-cell-step", _forget_free, drawn_from(step_problems(max_hidden=5))),
    Check("symbolic", _symbolic, dtypes=(), devices=()),
)
