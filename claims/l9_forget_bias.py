"""L9 — forget-bias initialisation.

Note: "This is what initialization tricks like b_f = 1 are for: they bias the gates toward the
identity-like regime so that gradients flow at the start of training." Three parts (CLAIMS.md L9):

1. A theorem: with h_{t-1} and x_t fixed, f_t = σ(a^f + b_f) increases strictly with b_f
   (σ' > 0; and d/db log Π σ(a_t + b) = Σ σ(-(a_t + b)) > 0, both proved in SymPy). Along a
   whole sequence it stays a theorem when W_hh = 0 (no h feedback): then dc_T/dc_0 =
   diag(Π_t f_t) exactly and its norm grows with b_f. Checked through the cell under test.
2. In general (W_hh != 0) the h feedback can break monotonicity: a larger b_f changes c, h
   and through W_hf the later forget pre-activations. Checked, not assumed: the float64
   reference is unrolled at b_f and b_f + Δ and a decrease of some f_t,k beyond the derived
   rounding bounds of both runs (forward drift included) is recorded as a finding.
3. What b_f = 1 buys at torch's default initialisation: a table of ||dc_T/dc_0|| (the true
   total derivative) for b_f in {0, 1, 2, 3, 5} and the chrono initialisation, T in
   {10, 50, 200, 1000}, over seeds. Where b_f = 1 leaves ||dc_T/dc_0|| below float32's unit
   roundoff 2^-24 (an O(1) gradient summed with it in float32 loses it entirely) for a span
   in the table, the note's "gradients flow" is refuted for that span.

This module's one job is the claim: its record and its checks. The table is computed by
claims/forget_bias_study.py and drawn by claims/forget_bias_plot.py; the construction that
breaks monotonicity is reference/forget_bias_construction.py; the rounding bounds along an
unroll (drift_bound, gate_error_along) are claims/long_range_tolerances.py.
"""
from __future__ import annotations

import torch

# The study, the plot and the construction have their own homes; L9's callers reach them as
# attributes of this module (L9.forget_bias_table(), L9.central_picture(t), L9.feedback_construction()).
from lstm_claims.claims.forget_bias_plot import central_picture, central_picture_by_dtype, central_rows
from lstm_claims.claims.forget_bias_study import (
    FLOWS, TABLE_SIZES, VANISHED, central_curves, forget_bias_table, table_inputs, table_problem,
    vanilla_rnn_beside_table,
)
from lstm_claims.claims.long_range_tolerances import gate_error_along, lstm_backward_bound
from lstm_claims.claims.sequence_tolerances import sequence_forward_bound
from lstm_claims.claims import low_precision as LP
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check, minimum, numbers
from hypothesis import strategies as st, target
from lstm_claims.strategies.long_range_sequences import sequence_problems
from lstm_claims.claims.tolerances import direct_term_error, frobenius, gamma
from lstm_claims.claims.unrolled_cell import forget_gates, run as run_cell, unrolled_c_jacobian
from lstm_claims.claims.violation import ClaimViolation, assert_within, where
from lstm_claims.reference import symbolic_long_range
from lstm_claims.reference.cell_state_jacobians import spectral_norm
from lstm_claims.reference.forget_bias_construction import feedback_construction
from lstm_claims.reference.jacobian_chain import full_state_jacobian, unroll
from lstm_claims.reference.long_range import state_jacobians_along, step_inputs, true_backward
from lstm_claims.reference.lstm_step import LSTMParams, preactivations
from lstm_claims.reference.unrolled_backward import LSTMSequence
from lstm_claims.strategies.exact import exact_for, per_dtype, round_to

CLAIM = register(Claim(
    id="L9",
    title="forget-bias initialisation (b_f = 1) lets gradients flow",
    statement="Initialization tricks like b_f = 1 bias the gates toward the identity-like regime so that "
              "gradients flow at the start of training.",
    condition="monotonicity in b_f: a theorem with h fixed, and along a sequence when W_hh = 0; 'flow' at torch's "
              "default initialisation only for spans where ||dc_T/dc_0|| stays away from 0 (see the table)",
    quantity="the cell's f_t and ||dc_T/dc_0|| at b_f and b_f + Δ (W_hh = 0); decreases of f_t,k in general "
             "(float64, beyond derived bounds); the table of ||dc_T/dc_0|| for b_f in {0,1,2,3,5} and chrono, "
             "T in {10, 50, 200, 1000}",
    unconditional=False,  # the condition is part of the statement: `holds-under-condition`
))

def shifted(params: LSTMParams, delta: float, exact_in: torch.dtype = torch.float32) -> LSTMParams:
    """The forget bias (bias_ih's f block) raised by delta > 0, rounded to exact_in (still an exact input: float32
    for the float64 and float32 cases, the case's dtype for bfloat16 and float16, strategies/exact.exact_for).

    Every bias moves up. Rounding b + delta to nearest keeps it >= b, but equal to b where delta is under half an
    ulp of b (in bfloat16 a shift of 2^-4 on a bias of 20 rounds away), and a check comparing the cell with itself
    would pass trivially there; such a bias takes the next exact_in number above b instead (20 -> 20.125 in
    bfloat16), the smallest shift the dtype can express. Measured before the change: bfloat16's
    min_norm_ratio_when_b_f_grows read exactly 1 on such examples.
    """
    n = params.hidden_size
    b = params.bias_ih.clone()
    old = b[n:2 * n]
    new = round_to(old + delta, exact_in)
    up = torch.nextafter(old.to(exact_in), torch.full_like(old, float("inf"), dtype=exact_in)).to(torch.float64)
    b[n:2 * n] = torch.where(new > old, new, up)
    return LSTMParams(params.weight_ih, params.weight_hh, b, params.bias_hh)


# --- 1. the theorem (W_hh = 0), through the cell ---------------------------------------------

def check_without_feedback(cut, problem, delta: float, device, dtype) -> dict:
    """W_hh = 0: the cell's f_t and ||dc_T/dc_0|| do not decrease when b_f grows (beyond rounding)."""
    __tracebackhide__ = True
    p = problem
    if (p.params.weight_hh != 0).any():
        raise ValueError("check_without_feedback needs W_hh = 0 (sequence_problems(recurrent=False))")
    T, B, n = p.steps, p.batch, p.hidden_size
    ctx = f"{where(device, dtype)}, T={T} B={B} n={n}, W_hh = 0, b_f -> b_f + {delta:g}"
    x = p.xs.flatten(0, 1)
    h = torch.zeros(T * B, n, dtype=torch.float64)  # irrelevant: W_hh = 0
    p1 = shifted(p.params, delta, exact_for(dtype))
    f0, f1 = (forget_gates(cut, q, x, h, device, dtype) for q in (p.params, p1))
    tol0, tol1 = (direct_term_error(q, x, h, dtype) for q in (p.params, p1))
    drop = f0 - f1
    if (drop > tol0 + tol1).any():
        i = divmod(int((drop - tol0 - tol1).argmax()), n)
        raise ClaimViolation("L9", f"{ctx}: the cell's forget gate decreased when b_f grew: f = {f0[i].item():.10g} "
                                   f"-> {f1[i].item():.10g} (allowed drop from rounding {(tol0 + tol1)[i].item():.3g}); "
                                   f"σ is strictly increasing")
    norms, tols = [], []
    for q in (p.params, p1):
        run = unrolled_c_jacobian(cut, p.with_params(q), device, dtype)
        inp = step_inputs(q, run.xs, run.hs, run.cs)
        S = state_jacobians_along(q, inp)
        ref = true_backward(q, inp, run.seeds)
        tol = lstm_backward_bound(q, inp, S, ref.v_h, ref.v_c, dtype).view(B, n, n)
        assert_within("L9", "the cell's dc_T/dc_0 (W_hh = 0) vs the closed form", run.J, ref.rows.view(B, n, n), tol,
                      context=ctx, why="rounding bound of the cell's backward through T steps (as L6)")
        norms.append(spectral_norm(run.J))
        tols.append(frobenius(tol))
    # ||A|| is 1-Lipschitz in A and ||ΔA||_2 <= ||ΔA||_F: the cell's norms are within tols of the exact ones.
    if (norms[0] - norms[1] > tols[0] + tols[1]).any():
        b = int((norms[0] - norms[1] - tols[0] - tols[1]).argmax())
        raise ClaimViolation("L9", f"{ctx}, example {b}: ||dc_T/dc_0|| decreased from {norms[0][b].item():.10g} to "
                                   f"{norms[1][b].item():.10g} when b_f grew (W_hh = 0: it is max_k Π_t σ(a_t,k + b_f))")
    ratio = (norms[1] / norms[0].clamp_min(1e-300)).min().item()
    return {"min_norm_ratio_when_b_f_grows": ratio, "min_gate_increase": (f1 - f0).min().item()}


# --- 2. with feedback: checked, not assumed ------------------------------------------------

def check_with_feedback(cut, problem, delta: float, device, dtype) -> dict:
    """General W_hh: with h fixed every f_t rises with b_f (checked through the cell, a theorem); along the
    sequence, look for forget gates that *decrease* when b_f grows, beyond every rounding bound (a finding)."""
    __tracebackhide__ = True
    p = problem
    T, B, n = p.steps, p.batch, p.hidden_size
    ctx = f"{where(device, dtype)}, T={T} B={B} n={n}, b_f -> b_f + {delta:g}"
    p1 = shifted(p.params, delta, exact_for(dtype))
    # The cell's gates along its own trajectories are σ(a^f) there (within their rounding bound).
    cell_f, states = [], []
    for q in (p.params, p1):
        hs, _ = run_cell(cut, p.with_params(q), device, dtype).states()
        x, h = p.xs.flatten(0, 1), hs[:-1].flatten(0, 1)
        f_cell = forget_gates(cut, q, x, h, device, dtype)
        assert_within("L9", "the cell's forget gates along its trajectory vs σ(a^f)", f_cell,
                      torch.sigmoid(preactivations(q, x, h).a_f), direct_term_error(q, x, h, dtype), context=ctx,
                      why="rounding bound of the f gate in the cell's dtype and in float64")
        cell_f.append(f_cell.view(T, B, n))
        states.append((x, h))
    # The theorem part: with h held fixed (at the states of the b_f run) every gate rises with b_f.
    x, h = states[0]
    f_fixed = forget_gates(cut, p1, x, h, device, dtype)
    allowed = direct_term_error(p.params, x, h, dtype) + direct_term_error(p1, x, h, dtype)
    if (cell_f[0].flatten(0, 1) - f_fixed > allowed).any():
        r, k = divmod(int((cell_f[0].flatten(0, 1) - f_fixed - allowed).argmax()), n)
        raise ClaimViolation("L9", f"{ctx}: with h_(t-1) and x_t held fixed the cell's forget gate fell from "
                                   f"{cell_f[0].flatten(0, 1)[r, k].item():.10g} to {f_fixed[r, k].item():.10g} when b_f "
                                   f"grew (allowed by rounding {allowed[r, k].item():.3g}); σ is strictly increasing")
    # The network itself (float64 unroll with its derived error bounds).
    runs = [unroll(q, p.xs, p.h0, p.c0) for q in (p.params, p1)]
    f0, f1 = (torch.sigmoid(r.a_f) for r in runs)
    e0, e1 = (gate_error_along(q, p.xs, r) for q, r in zip((p.params, p1), runs))
    excess = (f0 - f1) - (e0 + e1)
    # |log f - log f̃| <= e / (f - e); the float64 logs and sums: γ_T Σ |log f| each (U64 per log folded in).
    tiny = torch.finfo(torch.float64).tiny
    log_err = sum((e / (f - e).clamp_min(tiny)).sum(0) + gamma(T + 1, torch.float64) * (-torch.log(f)).sum(0)
                  for f, e in ((f0, e0), (f1, e1)))
    log_drop = (torch.log(f0).sum(0) - torch.log(f1).sum(0)) - log_err
    figures = {"max_gate_drop": (f0 - f1).max().item(), "max_log_product_drop": log_drop.max().item(),
               "min_gate_increase_h_fixed": (f_fixed - cell_f[0].flatten(0, 1)).min().item(),
               "cell_max_gate_drop": (cell_f[0] - cell_f[1]).max().item()}
    if (excess > 0).any():
        t, b, k = (int(i) for i in (excess == excess.max()).nonzero()[0])
        figures["decrease"] = {
            "step": t + 1, "example": b, "unit": k, "delta_b_f": delta, "f_before": f0[t, b, k].item(),
            "f_after": f1[t, b, k].item(), "rounding_bound": (e0 + e1)[t, b, k].item(),
            "log_prod_f_drops": bool((log_drop[b] > 0).any()),
            "cell_shows_it": bool(cell_f[0][t, b, k] > cell_f[1][t, b, k]),
            "norm_dcT_dc0_before_after": [spectral_norm(full_state_jacobian(q, p.xs, p.h0, p.c0))[b].item()
                                          for q in (p.params, p1)],
            "problem": {**p.as_json(), "h0": p.h0[b].tolist(), "c0": p.c0[b].tolist()}}
    return figures


# --- 3. the table at torch's default initialisation (claims/forget_bias_study.py) -----------

def b_f_one_counterexample(table: dict) -> dict | None:
    """The shortest span in the table at which b_f = 1 leaves ||dc_T/dc_0|| below 2^-24 (median over seeds)."""
    row = table["rows"]["b_f=1"]
    T = row["vanished_from_T"]
    if T is None:
        return None
    cell = row["per_T"][str(T)]
    chrono = table["rows"]["chrono"]["per_T"][str(T)]["median"]
    return {"reading": f"b_f = 1 at torch's default init: median ||dc_T/dc_0|| = {cell['median']:.3g} at T = {T} "
                       f"(< 2^-24); >= {FLOWS} only up to T = {row['flows_up_to_T']}; chrono keeps {chrono:.3g} there",
            "b_f": 1.0, "T": T, "median_norm_dcT_dc0": cell["median"], "min_over_seeds": cell["min"],
            "max_over_seeds": cell["max"], "threshold": VANISHED, "flows_up_to_T": row["flows_up_to_T"],
            "setup": table["meta"], "comparison": {cfg: table["rows"][cfg]["per_T"][str(T)]["median"]
                                                   for cfg in table["rows"]}}


def check_table_cell(cut, device, dtype, *, config: str = "b_f=1", seed: int = 0, steps: int = 10) -> dict:
    """One table entry through the cell under test: its unrolled autograd dc_T/dc_0 against the closed form."""
    __tracebackhide__ = True
    exact = exact_for(dtype)  # float32 for float64 and float32, the dtype itself for bfloat16 and float16
    p = table_problem(config, seed)
    p = p.map(lambda t: round_to(t, exact))  # exact inputs for the cell (the entry changes by ~u relatively)
    xs = round_to(table_inputs(seed, steps), exact)
    n = p.hidden_size
    zeros = torch.zeros(1, n, dtype=torch.float64)
    run = unrolled_c_jacobian(cut, LSTMSequence(p, xs, zeros, zeros), device, dtype)
    inp = step_inputs(p, run.xs, run.hs, run.cs)
    S = state_jacobians_along(p, inp)
    ref = true_backward(p, inp, run.seeds)
    # A sequence module's states between the ends are reconstructed: its own are within E_t of them.
    c_error = (sequence_forward_bound(p, run.xs, run.hs[0], run.cs[0], run.hs[1:], dtype).c_allowed
               if cut.runs_sequences else None)
    tol = lstm_backward_bound(p, inp, S, ref.v_h, ref.v_c, dtype, c_error=c_error).view(1, n, n)
    assert_within("L9", f"the cell's dc_T/dc_0 at the table's {config}, seed {seed}, T={steps}", run.J,
                  ref.rows.view(1, n, n), tol, context=f"{where(device, dtype)}, n = m = {n}",
                  why="rounding bound of the cell's backward through T steps (as L6)")
    return {"cell_norm_at_table_entry": spectral_norm(run.J)[0].item()}


def proofs() -> list[dict]:
    return [symbolic_long_range.prove_forget_bias_monotone(3)]


# --- the record's checks ----------------------------------------------------------------------

# The bias step Δ = 2^k of the monotonicity checks, k drawn here (a choice: 1/16 to 4 spans gentle to large steps).
_DELTA_EXPONENTS = st.integers(-4, 2)
LP_DTYPES = (torch.bfloat16, torch.float16)


def _table(ctx):
    table = forget_bias_table()
    if ctx.dtype not in LP_DTYPES:
        # The table and the central curves are float64 and the same in every case: the float64 and float32 cases
        # record them; a bfloat16 or float16 case adds its cell entry and the refutation (1.1 s of plots saved
        # per low-precision case, measured, for the ci budget).
        ctx.figures(table=table, plot_norm_vs_T=central_picture(table))
        curves = central_curves()  # the report's first screen: every t = 1..1000, per dtype (reference, no cell)
        ctx.figures(plot_central_norm_vs_t=central_picture_by_dtype(curves),
                    central_medians_log10=central_rows(curves),
                    central_power_iteration_gap_log10=curves["max_power_iteration_gap_log10"])
    figures = check_table_cell(ctx.cut, ctx.device, ctx.dtype)
    cx = b_f_one_counterexample(table)
    if cx:
        ctx.refute(cx)
    return {**figures, "b_f_1_flows_up_to_T": table["rows"]["b_f=1"]["flows_up_to_T"] or 0}


def _without_feedback(ctx, drawn):
    problem, delta_exp = drawn
    return check_without_feedback(ctx.cut, problem, 2.0 ** delta_exp, ctx.device, ctx.dtype)


def _with_feedback(ctx, drawn):
    problem, delta_exp = drawn
    problem = LP.exact_problem(problem, ctx.dtype)  # the float32-exact construction, rounded to bfloat16 / float16
    figures = check_with_feedback(ctx.cut, problem, 2.0 ** delta_exp, ctx.device, ctx.dtype)
    target(figures["max_gate_drop"], label="largest drop of a forget gate when b_f grows")
    if "decrease" in figures:
        # Not a claim of the note (CLAIMS.md: "checked rather than assumed"): a finding, kept as a figure.
        ctx.figures(monotonicity_with_feedback={**figures["decrease"], "reproduce": ctx.reproduce})
    return numbers(figures)


def _symbolic(ctx):
    ctx.figures(symbolic=[p["identity"] for p in proofs()])


CLAIM.define_checks(
    # First: one fixed example, which catches most buggy cells at once (the catalogue runs checks in this order).
    # The four dtypes: the table and its b_f = 1 refutation are float64 (norms below 2^-24, float32's u; an O(1)
    # gradient summed in bfloat16 or float16 loses anything below their u, 2^-8 or 2^-11, so the refutation holds
    # there a fortiori); the cell's part is one entry's dc_T/dc_0, its inputs rounded to the case's dtype and its
    # bound lstm_backward_bound in that dtype (plus a sequence module's reconstructed states: c_error).
    Check("forget-bias-table", _table, through_impl=True, dtypes=LP.ALL_DTYPES),
    # The four dtypes: values drawn exact in the case's dtype, b_f + Δ rounded to it (`shifted`), the construction
    # rounded to it (LP.exact_problem). The bounds' ingredients are one-step bounds in the dtype (direct_term_error,
    # vjp_tolerance: float32 accumulation, claims/tolerances.py) carried through |S_t| (lstm_backward_bound: no
    # γ_T of the dtype); with W_hh = 0, dc_T/dc_0 = diag(Π f_t) does not depend on the states, so a sequence
    # module's reconstructed states cost nothing there; the network part of the feedback check is float64.
    Check("monotone-without-feedback", _without_feedback,
          per_dtype(lambda exact_in: st.tuples(sequence_problems(max_steps=8, recurrent=False, output_recurrence="zero",
                                                                 exact_in=exact_in), _DELTA_EXPONENTS)),
          dtypes=LP.ALL_DTYPES, through_impl=True,
          aggregate=minimum("min_norm_ratio_when_b_f_grows", "min_gate_increase")),
    Check("monotonicity-with-feedback-checked", _with_feedback,
          per_dtype(lambda exact_in: st.tuples(sequence_problems(max_steps=8, weight_exps=(-2, 3), exact_in=exact_in),
                                               _DELTA_EXPONENTS)),
          examples=((feedback_construction(), 0),), dtypes=LP.ALL_DTYPES, through_impl=True,
          aggregate=minimum("min_gate_increase_h_fixed")),
    Check("symbolic", _symbolic, dtypes=(), devices=()),
)


# The claim's checks, and the parts with other homes that L9's callers reach through this module.
__all__ = ["CLAIM", "shifted", "check_without_feedback", "check_with_feedback", "b_f_one_counterexample",
           "check_table_cell", "proofs", "feedback_construction", "forget_bias_table", "central_picture",
           "vanilla_rnn_beside_table", "table_problem", "table_inputs", "TABLE_SIZES", "VANISHED", "FLOWS"]
