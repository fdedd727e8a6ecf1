"""L6 — the chain-rule product ∂c_T/∂c_0 = Π_t ∂c_t/∂c_{t-1}.

Note: "The gradient propagated through T time steps, ∂c_T/∂c_0 = Π_{t=1}^T ∂c_t/∂c_{t-1}".
The factors are L2's J_t = diag(f_t) + K_t M_{t-1} (J_1 = diag(f_1): h_0 is held fixed).
The product is the total derivative of the unrolled network exactly when c_t is a function
of c_{t-1} alone, i.e. when o_t does not read h_{t-1} (W_ho = 0). In general the state is
(h, c) and h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}) depends on c_{t-2} also through o_{t-1}'s input
h_{t-2}, a path the product leaves out. T <= 2 is always exact (the path needs two steps
before the one that reads it); SymPy proves both facts for n = 1 (and T = 2 for n = 2).

Checked through the cell under test: its autograd dc_T/dc_0 of T unrolled steps (the
true Jacobian) against the closed form of the true total derivative along the cell's own
trajectory (always: a failure means the cell or the kit is wrong), and against the note's
product (when W_ho = 0: a failure is a ClaimViolation). For general W_ho the gap between
the true Jacobian and the product is measured, and where it exceeds every rounding bound
the example is a reproducible counterexample to the note's equation.
"""
from __future__ import annotations

from functools import partial

import torch

from lstm_claims.claims.long_range_tolerances import lstm_backward_bound, note_product_bound
from lstm_claims.claims.sequence_tolerances import sequence_forward_bound
from lstm_claims.claims.tolerances import frobenius
from lstm_claims.claims.low_precision import ALL_DTYPES
from lstm_claims.strategies.exact import per_dtype
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check, numbers
from hypothesis import target
from lstm_claims.strategies.long_range_sequences import sequence_problems
from lstm_claims.claims.unrolled_cell import unrolled_c_jacobian
from lstm_claims.claims.violation import assert_within, where
from lstm_claims.reference import symbolic_long_range
from lstm_claims.reference.cell_state_jacobians import spectral_norm
from lstm_claims.reference.long_range import note_backward, state_jacobians_along, step_inputs, true_backward

CLAIM = register(Claim(
    id="L6",
    title="∂c_T/∂c_0 is the product of the one-step Jacobians",
    statement="∂c_T/∂c_0 = Π_{t=1}^T ∂c_t/∂c_{t-1}, the factors being the cell-state Jacobians "
              "diag(f_t) + K_t M_{t-1}.",
    condition="W_ho = 0 (o_t does not read h_{t-1}), or T <= 2; h_0 and the inputs held fixed. For a general "
              "LSTM (W_ho != 0, T >= 3) the state is (h, c) and the product is not the total derivative",
    quantity="the cell's autograd dc_T/dc_0 through T unrolled steps against the closed-form total derivative "
             "(always) and against the note's product (W_ho = 0), within derived bounds; the gap "
             "||true - product|| / ||true|| for general W_ho; SymPy: exact for W_ho = 0, T = 3, and for T = 2",
    unconditional=False,  # the condition is part of the statement: `holds-under-condition`
))

WHY_TRUE = ("rounding bound of the cell's backward through T steps: per step claims.tolerances.vjp_tolerance, "
            "accumulated through |S_t|ᵀ (claims/long_range_tolerances.py)")
WHY_NOTE = WHY_TRUE + ", plus the float64 rounding of the note's product"


def check(cut, problem, device, dtype) -> dict:
    """The cell's true dc_T/dc_0 against the closed forms; the gap to the note's product, measured."""
    __tracebackhide__ = True
    p = problem
    n, B, T = p.hidden_size, p.batch, p.steps
    ctx = f"{where(device, dtype)}, T={T} B={B} m={p.input_size} n={n}, W_ho {'= 0' if p.output_recurrence_is_zero else '!= 0'}"
    run = unrolled_c_jacobian(cut, p, device, dtype)
    inp = step_inputs(p.params, run.xs, run.hs, run.cs)
    S = state_jacobians_along(p.params, inp)
    true = true_backward(p.params, inp, run.seeds)
    note = note_backward(p.params, inp, run.seeds)
    # A sequence module's states between the ends are reconstructed: its own are within E_t of them.
    c_error = (sequence_forward_bound(p.params, run.xs, run.hs[0], run.cs[0], run.hs[1:], dtype).c_allowed
               if cut.runs_sequences else None)
    tol_true = lstm_backward_bound(p.params, inp, S, true.v_h, true.v_c, dtype, c_error=c_error)
    true_rows, note_rows = true.rows.view(B, n, n), note.rows.view(B, n, n)
    worst = assert_within("L6", "the cell's dc_T/dc_0 vs the closed-form total derivative", run.J, true_rows,
                          tol_true.view(B, n, n), context=ctx, why=WHY_TRUE)
    # Rounding of the two float64 closed forms themselves: the bound of the true chain in
    # float64 (it covers the float64 reference) plus the note product's own bound.
    tol_note = note_product_bound(p.params, inp, S, note).view(B, n, n)
    tol_gap = lstm_backward_bound(p.params, inp, S, true.v_h, true.v_c, torch.float64).view(B, n, n) + tol_note
    gap = true_rows - note_rows
    true_norm = spectral_norm(true_rows)
    rel_gap = (spectral_norm(gap) / true_norm.clamp_min(torch.finfo(torch.float64).tiny))
    figures = {"worst_error_over_allowed": worst, "max_relative_gap": rel_gap.max().item(), "steps": T}
    if p.output_recurrence_is_zero or T <= 2:
        figures["worst_error_over_allowed_exact_case"] = assert_within(
            "L6", "the cell's dc_T/dc_0 vs the note's product Π J_t (exact here)", run.J, note_rows,
            tol_true.view(B, n, n) + tol_note, context=ctx, why=WHY_NOTE)
        figures["max_relative_gap_exact_case"] = rel_gap.max().item()
        return figures
    beyond = (gap.abs() > tol_gap)
    if beyond.any():
        b = int(beyond.flatten(1).any(1).nonzero()[0])
        # The cell's own Jacobian also differs from the product beyond both bounds?
        cell_gap = (run.J[b] - note_rows[b]).abs() > (tol_true.view(B, n, n)[b] + tol_note[b])
        figures["counterexample"] = {
            "example": b, "T": T, "relative_gap": rel_gap[b].item(),
            "gap_norm": spectral_norm(gap[b]).item(), "true_norm": true_norm[b].item(),
            "gap_over_rounding_bound": (gap[b].abs() / tol_gap[b].clamp_min(1e-300)).max().item(),
            "rounding_bound_fro": frobenius(tol_gap[b]).item(),
            "cell_differs_too": bool(cell_gap.any()),
            "true_minus_product": gap[b].tolist(), "true_dcT_dc0": true_rows[b].tolist(),
            "cell_dcT_dc0": run.J[b].tolist(), "note_product": note_rows[b].tolist(),
            "reading": f"W_ho != 0, T = {T}: the true dc_T/dc_0 differs from Π J_t by {rel_gap[b].item():.3g} of its "
                       f"norm, {(gap[b].abs() / tol_gap[b].clamp_min(1e-300)).max().item():.3g} times the rounding "
                       "bound: the note's equation is not the total derivative",
        }
    return figures


def proofs() -> list[dict]:
    return [symbolic_long_range.prove_chain_product_two_steps(n=1), symbolic_long_range.prove_chain_product_two_steps(n=2),
            symbolic_long_range.prove_chain_product_three_steps()]


# --- the record's checks ----------------------------------------------------------------------

def _unrolled_vs_product(ctx, problem):
    figures = check(ctx.cut, problem, ctx.device, ctx.dtype)
    target(figures["max_relative_gap"], label="||true - product|| / ||true||")
    if "counterexample" in figures:
        ctx.refute({**figures["counterexample"], "problem": problem.as_json()})
    return numbers(figures)


def _symbolic(ctx):
    found = proofs()
    ctx.figures(symbolic=[p["identity"] for p in found])
    return {"symbolic_witness_gap_T3": found[-1]["witness_difference"]}


CLAIM.define_checks(
    Check("unrolled-vs-product", _unrolled_vs_product,
          per_dtype(partial(sequence_problems, max_steps=10, max_hidden=4, max_batch=2)), dtypes=ALL_DTYPES,
          through_impl=True),
    Check("symbolic", _symbolic, dtypes=(), devices=()),
)
