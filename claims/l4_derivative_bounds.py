"""L4 — derivative bounds: sup σ' = 1/4 (at 0) and sup tanh' = 1 (at 0).

Note: "The indirect term involves products of sigmoid and tanh derivatives, all bounded
by 1/4 and 1 respectively." Proved in SymPy; checked pointwise on torch's σ and tanh
(autograd, on the device and dtype under test); and through the cell: its bias
gradients are those derivatives times bounded factors, |∂c_t/∂b_f| = |c_{t-1}| σ'(a^f)
<= |c_{t-1}|/4, |∂c_t/∂b_i| = |g| σ'(a^i) <= 1/4, |∂c_t/∂b_g| = i tanh'(a^g) <= 1.
"""
from __future__ import annotations

import dataclasses

import torch

from lstm_claims.claims import through_cell
from lstm_claims.claims.low_precision import ALL_DTYPES, on_impl_exact
from lstm_claims.strategies.exact import per_dtype
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check, drawn_from
from hypothesis import strategies as st
from lstm_claims.strategies import step_problems
from lstm_claims.claims.tolerances import unit_roundoff, vjp_tolerance
from lstm_claims.claims.violation import ClaimViolation, assert_bound, where
from lstm_claims.reference import symbolic

CLAIM = register(Claim(
    id="L4",
    title="σ' <= 1/4 and tanh' <= 1",
    statement="Products of sigmoid and tanh derivatives, all bounded by 1/4 and 1 respectively.",
    condition="always",
    quantity="SymPy proofs of sup σ' = 1/4 and sup tanh' = 1 (both at 0); torch's derivatives pointwise; "
             "the cell's bias gradients against |c|/4, 1/4 and 1",
    unconditional=True,  # an identity or theorem: its verdict reads `holds`
))


def check_pointwise(z: torch.Tensor, device, dtype) -> dict:
    """σ'(z) <= 1/4 and tanh'(z) <= 1 by autograd of torch.sigmoid / torch.tanh.

    σ'(z) is computed as σ(1 - σ) in `dtype`: its value at the maximiser, 1/4, is exact,
    and three roundings allow at most 1/4 (1 + 3u) elsewhere; tanh' = 1 - tanh² <= 1 + u.
    """
    __tracebackhide__ = True
    u = unit_roundoff(dtype)
    z = z.to(device=device, dtype=dtype).requires_grad_(True)
    (ds,) = torch.autograd.grad(torch.sigmoid(z).sum(), z)
    (dt,) = torch.autograd.grad(torch.tanh(z).sum(), z)
    ctx = where(device, dtype)
    r1 = assert_bound("L4", "max σ'(z)", ds.max().item(), 0.25 * (1 + 3 * u), context=ctx, why="sup σ' = 1/4")
    r2 = assert_bound("L4", "max tanh'(z)", dt.max().item(), 1 + u, context=ctx, why="sup tanh' = 1")
    if (ds < 0).any() or (dt < 0).any():
        raise ClaimViolation("L4", f"{ctx}: a derivative of σ or tanh is negative")
    return {"max_dsigmoid_over_quarter": r1, "max_dtanh": r2}


def check_cell_bias_gradients(cut, problem, device, dtype) -> dict:
    """Through the cell: with v_c = 1 (one example), v_h = 0, ∂c/∂b for the gates f, i, g is bounded."""
    __tracebackhide__ = True
    p = dataclasses.replace(problem, v_h=torch.zeros_like(problem.h), v_c=torch.ones_like(problem.c))
    n = p.hidden_size
    ctx = f"{where(device, dtype)}, B={p.batch} n={n}"
    tol = vjp_tolerance(p.params, p.x, p.h, p.c, p.v_h, p.v_c, dtype)["bias_hh"]
    grads = through_cell.vjps(cut, p, device, dtype)
    worst = 0.0
    for name in ("bias_ih", "bias_hh"):
        g = grads[name]
        # Σ over the batch of per-example bounds (the VJP sums over rows).
        bounds = {"i": torch.full((n,), 0.25 * p.batch, dtype=torch.float64),
                  "f": p.c.abs().sum(0) / 4,
                  "g": torch.full((n,), 1.0 * p.batch, dtype=torch.float64)}
        for k, gate in enumerate("ifg"):
            block = slice(k * n, (k + 1) * n)
            for j in range(n):
                worst = max(worst, assert_bound(
                    "L4", f"|∂c/∂{name}[{gate}, unit {j}]| summed over the batch", g[block][j].abs().item(),
                    bounds[gate][j].item() + tol[block][j].item(), context=ctx,
                    why={"i": "|g| σ'(a^i) <= 1/4", "f": "|c| σ'(a^f) <= |c|/4", "g": "i tanh'(a^g) <= 1"}[gate]
                    + " per example, plus the VJP rounding bound"))
    return {"worst_bias_gradient_over_bound": worst}


def proofs() -> list[dict]:
    return [symbolic.prove_sigmoid_derivative(), symbolic.prove_sup_sigmoid_prime(), symbolic.prove_sup_tanh_prime()]


# --- the record's checks ----------------------------------------------------------------------

def _proofs(ctx):
    proofs()


def _pointwise(ctx, z):
    return check_pointwise(torch.tensor(z + [0.0], dtype=torch.float64), ctx.device, ctx.dtype)


CLAIM.define_checks(
    Check("symbolic-suprema", _proofs, dtypes=(), devices=()),
    # float32-exact points across the saturating range, plus 0 where both suprema are attained.
    Check("pointwise", _pointwise, drawn_from(st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=64))),
    Check("cell-bias-gradients", on_impl_exact(check_cell_bias_gradients), per_dtype(step_problems),
          dtypes=ALL_DTYPES, through_impl=True),
)
