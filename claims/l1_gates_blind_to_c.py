"""L1 — gates do not see c_{t-1}.

Note: "Crucially they do not depend directly on c_{t-1} in the standard LSTM formulation
(they depend only on h_{t-1})". With h_{t-1} and x_t held fixed, ∂a_t/∂c_{t-1} = 0, so
∂c_t/∂c_{t-1} |_{h fixed} = diag(f_t) exactly: off-diagonal entries are exact zeros (a
structural fact, no rounding involved) and the diagonal is f_t to rounding. A peephole
LSTM (gates read c_{t-1}) breaks it.
"""
from __future__ import annotations

from functools import partial

import torch

from lstm_claims.claims import through_cell
from lstm_claims.claims.low_precision import ALL_DTYPES, on_impl_exact
from lstm_claims.strategies.kernel_problems import JACOBIAN_KERNEL_EXAMPLES
from lstm_claims.strategies.exact import per_dtype
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check, proof_of
from lstm_claims.strategies import step_problems
from lstm_claims.claims.tolerances import vjp_tolerance
from lstm_claims.claims.violation import ClaimViolation, assert_within, where
from lstm_claims.reference import symbolic
from lstm_claims.reference.lstm_step import preactivations

CLAIM = register(Claim(
    id="L1",
    title="gates do not see c_{t-1}",
    statement="The gates f_t, i_t and the candidate c̃_t depend on h_{t-1} and x_t; they do not depend "
              "directly on c_{t-1} in the standard LSTM formulation.",
    condition="always (with h_{t-1} and x_t held fixed, which is what 'not directly' means)",
    quantity="∂c_t/∂c_{t-1} of the cell by autograd against diag(f_t): off-diagonal exactly 0, diagonal "
             "within the derived rounding bound; SymPy: ∂a/∂c = 0 for n = 1, 2, 3",
    unconditional=True,  # an identity or theorem: its verdict reads `holds`
))


def direct_term_tolerance(problem, dtype) -> torch.Tensor:
    """Allowed error of the diagonal of ∂c_t/∂c_{t-1}|_h: the VJP bound for d/dc with v_c = 1, v_h = 0."""
    p = problem
    return vjp_tolerance(p.params, p.x, p.h, p.c, torch.zeros_like(p.h), torch.ones_like(p.c), dtype)["c"]


def check(cut, problem, device, dtype) -> dict:
    __tracebackhide__ = True
    p = problem
    J = through_cell.c_jacobian(cut, p, device, dtype, through_h=False)
    ctx = f"{where(device, dtype)}, B={p.batch} m={p.input_size} n={p.hidden_size}, h_(t-1) fixed"
    off = J - torch.diag_embed(torch.diagonal(J, dim1=1, dim2=2))
    if (off != 0).any():
        b, r, col = (off != 0).nonzero()[0].tolist()
        raise ClaimViolation("L1", f"{ctx}: ∂c_t/∂c_(t-1) is not diagonal: entry [{b}, {r}, {col}] = "
                                   f"{off[b, r, col].item():.6g} (must be exactly 0: c_t[{r}] would depend on "
                                   f"c_(t-1)[{col}] other than through f_t ⊙ c_(t-1); do the gates read c?)")
    f_ref = preactivations(p.params, p.x, p.h).f
    worst = assert_within("L1", "diag(∂c_t/∂c_(t-1)) vs f_t", torch.diagonal(J, dim1=1, dim2=2), f_ref,
                          direct_term_tolerance(p, dtype), context=ctx,
                          why="rounding bound of the backward through c, see claims/tolerances.py")
    return {"worst_error_over_allowed": worst}


def prove(n: int) -> dict:
    """SymPy: the pre-activations contain no c symbol and ∂c_t/∂c_{t-1}|_h = diag(f_t)."""
    return symbolic.prove_gates_blind_to_c(n)


# --- the record's checks ----------------------------------------------------------------------

# Drawn widths up to 6 keep the suite in budget (a choice: the per-example cost of the tolerances grows
# with n); JACOBIAN_KERNEL_EXAMPLES adds a tile-tail width, n = 129, to every run.
JACOBIAN_PROBLEMS = partial(step_problems, max_hidden=6)  # a factory: per_dtype draws it exact in each dtype


CLAIM.define_checks(
    Check("direct-jacobian", on_impl_exact(check), per_dtype(JACOBIAN_PROBLEMS), dtypes=ALL_DTYPES,
          through_impl=True, examples=JACOBIAN_KERNEL_EXAMPLES),
    *(Check(f"symbolic-n{n}", proof_of(prove, n), dtypes=(), devices=()) for n in (1, 2, 3)),
)
