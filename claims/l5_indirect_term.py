"""L5 — the indirect term is bounded, and small when the gates saturate.

Note: "The indirect term flows through three sigmoid gates and the candidate's tanh, all
of which are saturating activations — these contributions are small whenever the gates
are near their saturation values." Precisely (CLAIMS.md L5), with E_t = K_t M_{t-1}:

    ||E_t|| <= B1 = (||c ⊙ σ'(a^f)||_∞ ||W_hf|| + ||g ⊙ σ'(a^i)||_∞ ||W_hi|| + ||i ⊙ tanh'(a^g)||_∞ ||W_hg||)
                    · ||o_{t-1} ⊙ tanh'(c_{t-1})||_∞
            <= B2 = ||c||_∞ ||W_hf||/4 + ||W_hi||/4 + ||W_hg||

on every sample; and E_t -> 0 as the pre-activations are scaled up (a -> s a): with
α = min |a| over the i, f, g gates, σ'(s a) <= e^{-s α} and tanh'(s a) <= 4 e^{-2 s α}, so

    ||E_t(s)|| <= B_sat(s) = (||c||_∞ ||W_hf|| + ||W_hi||) s e^{-s α} + 4 s ||W_hg|| e^{-2 s α}   (|| M ||_∞ <= 1)

which goes to 0. E_t is measured on the cell: its Jacobian through h = o ⊙ tanh(c) minus
its direct term at the same point.
"""
from __future__ import annotations

from functools import partial

import dataclasses
import math

import torch

from lstm_claims.claims import through_cell
from lstm_claims.claims.l2_decomposition import jacobian_tolerance
from lstm_claims.claims.low_precision import ALL_DTYPES, exact_problem
from lstm_claims.strategies.kernel_problems import JACOBIAN_KERNEL_EXAMPLES
from lstm_claims.strategies.exact import per_dtype
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check
from hypothesis import assume, target
from lstm_claims.claims.l1_gates_blind_to_c import JACOBIAN_PROBLEMS
from lstm_claims.strategies import step_problems
from lstm_claims.claims.tolerances import gamma
from lstm_claims.claims.violation import assert_bound, where
from lstm_claims.reference.cell_state_jacobians import cell_state_jacobian, indirect_term_bounds, spectral_norm

CLAIM = register(Claim(
    id="L5",
    title="the indirect term is bounded and vanishes under saturation",
    statement="The indirect term flows through three sigmoid gates and the candidate's tanh, all saturating: "
              "these contributions are small whenever the gates are near their saturation values.",
    condition="the bound B1 <= B2 always; 'small' when pre-activations are pushed into saturation "
              "(min |a| over i, f, g bounded away from 0)",
    quantity="||E_t|| = ||J_t - diag(f_t)|| measured on the cell, against B1, B2 and B_sat(s) under scaling a -> s a",
    unconditional=False,  # the condition is part of the statement: `holds-under-condition`
))


# B1 <= B2 in exact arithmetic; reference.cell_state_jacobians.indirect_term_bounds evaluates both
# in float64 from the *same* computed norms ||W_hk|| (so the SVD's error is common to both sides,
# not a difference between them) and the same c. In B1, with σ, tanh and o in [0, 1] as computed:
# σ' = s(1 - s) <= 1/4 (1 + u)^2 (1 - s and the product round), times c or g (<= 1) rounds once
# more, times ||W_hk|| once more: each term <= its B2 counterpart (1 + u)^4 (the g term's factor
# i tanh'(a^g) = i (1 - t²) <= 1 as computed, one rounding with its norm); the two additions
# (1 + u)^2; sup M = sup o (1 - t²) <= 1 as computed, and the product with it rounds once:
# B1 <= B2_exact (1 + u)^7. B2's product, two additions (the divisions by 4 are exact) and the
# comparison's own product b2 (1 + γ) round down by at most (1 - u)^4. So B1 <= b2 (1 + γ_11)
# (Higham Lemma 3.1: (1 + u)^7 / (1 - u)^4 <= 1 + γ_11); 1 + γ_11 rounds to 1 + 12u in float64.
B1_OVER_B2_ROUNDING = gamma(11, torch.float64)


def measured_indirect_term(cut, problem, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(||E_t|| per example, an upper bound on its rounding error) from the cell's autograd."""
    J, h_used = through_cell.c_jacobian(cut, problem, device, dtype, through_h=True)
    D = through_cell.c_jacobian(cut, dataclasses.replace(problem, h=h_used), device, dtype, through_h=False)
    # ||ΔE||_2 <= ||ΔE||_F; ΔJ bounded by L2's elementwise tolerance, ΔD by the same (its diagonal is a part of J's).
    err = 2 * torch.linalg.matrix_norm(jacobian_tolerance(problem, dtype), ord="fro")
    return spectral_norm(J - D), err


def scaled(problem, s: float):
    """The same problem with every weight and bias times s (a power of two: exact), so a -> s a."""
    return dataclasses.replace(problem, params=problem.params.map(lambda t: t * s))


def check_bound(cut, problem, device, dtype) -> dict:
    __tracebackhide__ = True
    p = problem
    ctx = f"{where(device, dtype)}, B={p.batch} m={p.input_size} n={p.hidden_size}"
    E, err = measured_indirect_term(cut, p, device, dtype)
    b1, b2 = indirect_term_bounds(p.params, cell_state_jacobian(p.params, p.x, p.c, p.o_prev), p.c)
    tight = 0.0
    for b in range(p.batch):
        tight = max(tight, assert_bound("L5", f"||K_t M_(t-1)|| (example {b})", E[b].item(), b1[b].item() + err[b].item(),
                                        context=ctx, why="B1 of CLAIMS.md L5, plus the rounding of the cell's Jacobian"))
        # B1 <= B2 holds in exact arithmetic; both are float64 evaluations (B1_OVER_B2_ROUNDING).
        assert_bound("L5", f"B1 (example {b})", b1[b].item(), b2[b].item() * (1 + B1_OVER_B2_ROUNDING), context=ctx,
                     why="B2 = ||c||_∞ ||W_hf||/4 + ||W_hi||/4 + ||W_hg||")
    return {"max_E_over_B1": tight, "max_E": E.max().item()}


def saturation_floor(problem) -> float:
    """α = min |a| over the i, f, g pre-activations (the o gate does not enter E_t)."""
    h = problem.o_prev * torch.tanh(problem.c)
    a = problem.x @ problem.params.weight_ih.T + problem.params.bias_ih + h @ problem.params.weight_hh.T \
        + problem.params.bias_hh
    return a[:, :3 * problem.hidden_size].abs().min().item()


def saturation_bound(problem, s: float, alpha: float) -> float:
    W = {k: spectral_norm(problem.params.hh_block(k)).item() for k in "fig"}
    c_inf = problem.c.abs().max().item()
    return (c_inf * W["f"] + W["i"]) * s * math.exp(-s * alpha) + 4 * s * W["g"] * math.exp(-2 * s * alpha)


def scaled_magnitude(problem) -> float:
    """The largest magnitude scaling multiplies: a parameter, or a pre-activation's partial sums
    |W_ih||x| + |b_ih| + |W_hh||h| + |b_hh| (h = o ⊙ tanh c, as the check forms it)."""
    p = problem.params
    h = (problem.o_prev * torch.tanh(problem.c)).abs()
    sums = problem.x.abs() @ p.weight_ih.abs().T + p.bias_ih.abs() + h @ p.weight_hh.abs().T + p.bias_hh.abs()
    return max(sums.max().item(), *(t.abs().max().item() for t in p.as_dict().values()))


def check_saturation(cut, problem, device, dtype, *, target_exponent: float = 40.0) -> dict:
    """Scale a -> s a for s = 1, 2, 4, ... until s α >= target_exponent; ||E(s)|| <= min(B1, B_sat) + rounding.

    In a dtype whose range ends first (float16: 65504) the scaling stops where the next doubling would take a
    parameter or a pre-activation's partial sums past a quarter of the largest finite value (the margin of
    strategies/exact.fit_exps): every scale tried is checked, and `stopped_by_dtype_range` says the target
    was not reached. (Found by the thorough profile: float16 biases scaled by 2560 overflowed to inf.)"""
    __tracebackhide__ = True
    alpha = saturation_floor(problem)
    ctx = f"{where(device, dtype)}, B={problem.batch} n={problem.hidden_size}, α = min|a| = {alpha:.3g}"
    limit = torch.finfo(dtype).max / 4
    magnitude = scaled_magnitude(problem)
    s, history, stopped = 1.0, [], 0.0
    while True:
        q = scaled(problem, s)
        E, err = measured_indirect_term(cut, q, device, dtype)
        b_sat = saturation_bound(problem, s, alpha)
        assert_bound("L5", f"||E(s)|| at s = {s:g}", E.max().item(), b_sat + err.max().item(), context=ctx,
                     why="B_sat(s) = (||c|| ||W_hf|| + ||W_hi||) s e^(-s α) + 4 s ||W_hg|| e^(-2 s α), plus rounding")
        history.append(E.max().item())
        if s * alpha >= target_exponent:
            break
        if 2 * s * magnitude > limit:
            stopped = 1.0
            break
        s *= 2
    return {"E_at_s1": history[0], "E_saturated": history[-1], "scales_tried": len(history),
            "stopped_by_dtype_range": stopped}


# --- the record's checks ----------------------------------------------------------------------

def _bound(ctx, problem):
    figures = check_bound(ctx.cut, exact_problem(problem, ctx.dtype), ctx.device, ctx.dtype)
    target(figures["max_E_over_B1"], label="||E|| / B1")  # push toward the tightest cases
    return figures


def _saturation(ctx, problem):
    # Saturation needs every i, f, g pre-activation away from 0 (α > 0); the bound is vacuous at α = 0.
    assume(saturation_floor(problem) >= 2.0 ** -6)
    return check_saturation(ctx.cut, problem, ctx.device, ctx.dtype)


CLAIM.define_checks(
    Check("bound", _bound, per_dtype(JACOBIAN_PROBLEMS), dtypes=ALL_DTYPES, through_impl=True,
          examples=JACOBIAN_KERNEL_EXAMPLES),
    Check("vanishes-under-saturation", _saturation, per_dtype(partial(step_problems, max_hidden=4, weight_exps=(-3, 1))),
          dtypes=ALL_DTYPES, through_impl=True),
)
