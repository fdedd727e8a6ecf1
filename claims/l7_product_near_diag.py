"""L7 — the product of the one-step Jacobians is near diag(Π f).

Note: "∂c_T/∂c_0 = Π_t ∂c_t/∂c_{t-1} ≈ Π_t diag(f_t) = diag(Π_t f_t)." With J_t = D_t + E_t,
D_t = diag(f_t), E_t = K_t M_{t-1}, ε_t = ||E_t|| and ||D_t|| <= 1, the telescoping expansion
(proved in SymPy: reference.symbolic_long_range.prove_telescoping_expansion) gives

    || Π J_t - Π D_t || <= Π (1 + ε_t) - 1                                         (a theorem)

and in general, with d_t = max(1, ||D_t||), <= Π (d_t + ε_t) - Π d_t. The bound must hold on
every example. The suite reports how tight it is (observed / bound), and that the error is
*absolute*: relative to ||Π D_t|| = max_k Π_t f_{t,k} it can exceed 1 when Π f is tiny, and
then "≈ diag(Π f)" carries no correct digit. Such an example is a counterexample to the
note's "≈" read as an approximation of the gradient, recorded with its numbers.

Checked on the cell under test (its own one-step factors J_t, with h_{t-1} = o_{t-1} ⊙
tanh(c_{t-1}) as in L2, and its direct terms D_t, along its own trajectory, T <= 16) and on
the float64 closed forms of reference.jacobian_chain for long sequences (T up to 200).
Products are formed with a common running scale (reference.long_range.scaled_chain) and
the bound compared in log space: nothing overflows or underflows however long T is.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from lstm_claims.claims import through_cell
from lstm_claims.claims.l2_decomposition import jacobian_tolerance
from lstm_claims.claims.long_range_tolerances import product_bound
from lstm_claims.claims import low_precision as LP
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check, drawn_from
from hypothesis import target
from lstm_claims.strategies.long_range_sequences import sequence_problems
from lstm_claims.claims.tolerances import U64, exp_of_sum_error, frobenius, gamma, svd_bound
from lstm_claims.claims.unrolled_cell import run as run_cell
from lstm_claims.claims.violation import ClaimViolation, assert_within, where
from lstm_claims.reference import symbolic_long_range
from lstm_claims.reference.cell_state_jacobians import cell_state_jacobian, spectral_norm
from lstm_claims.reference.jacobian_chain import cell_state_factors
from lstm_claims.reference.long_range import scaled_chain, step_inputs
from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.reference.unrolled_backward import LSTMSequence
from lstm_claims.strategies.lstm_problems import StepProblem
from lstm_claims.strategies.long_range_sequences import float32_exact, seeded_uniform
from lstm_claims.strategies.exact import exact_for, per_dtype, round_to

CLAIM = register(Claim(
    id="L7",
    title="the product is near diag(Π f)",
    statement="∂c_T/∂c_0 = Π_t ∂c_t/∂c_{t-1} ≈ Π_t diag(f_t) = diag(Π_t f_t).",
    condition="||D_t|| <= 1 (f_t in (0, 1]): the absolute bound ||Π J_t - Π D_t|| <= Π(1 + ε_t) - 1 always holds; "
              "'≈' in the relative sense needs Π(1 + ε_t) - 1 << max_k Π_t f_t,k",
    quantity="||Π J_t - Π D_t|| against Π(1 + ε_t) - 1 on the cell's factors (T <= 16) and on the float64 closed "
             "forms (T <= 200); tightness observed / bound; relative error ||Π J - Π D|| / ||Π D||",
    unconditional=False,  # the condition is part of the statement: `holds-under-condition`
))

# "≈" is refuted when the error is as large as the quantity: an approximation whose error
# exceeds what it approximates has no correct digit.
RELATIVE_ERROR_REFUTES = 1.0
# ... and only where the note's own premise holds: "the indirect term is small". Every ε_t at
# most a tenth of ||I|| keeps each factor J_t within 10% of its direct term; a counterexample
# there cannot be blamed on large weights.
SMALL_INDIRECT = 0.1


def _log_expm1(x: float) -> float:
    """log(e^x - 1) for x > 0, without overflow for large x."""
    if x <= 0:
        return -math.inf
    return x + math.log1p(-math.exp(-x)) if x > 1 else math.log(math.expm1(x))


def bound_check(J: torch.Tensor, f: torch.Tensor, *, context: str) -> dict:
    """The theorem on factors J (T, B, n, n), D = diag(f) (T, B, n), all float64; per-example figures.

    Rounding (everything float64, u = 2^-53):
      - the products: Higham's γ_((T-1)n) of |J_T| ⋯ |J_1| and of |D_T| ⋯ |D_1| (product_bound),
        plus one rounding of their difference, in Frobenius norm (a bound on the 2-norm), plus the SVD;
      - ε_t = ||J_t - D_t|| by SVD: off by 4 n u ε_t, and the subtraction J_t - D_t by u |J_t,kk| <= u(d_t + ε_t);
        the bound is evaluated at ε_t lowered by that much (it is increasing in each ε_t), and its own
        float64 evaluation (2T + 2 operations in log space) allowed γ_(2T+2) of Π(d_t + ε_t), plus the
        error of the exponent Σ log(1 + ε_t/d_t) itself (claims.tolerances.exp_of_sum_error).
    """
    T, B, n, _ = J.shape
    E = J - torch.diag_embed(f)
    eps = spectral_norm(E)  # (T, B)
    d = torch.clamp(f.abs().amax(-1), min=1.0)  # (T, B): ||D_t|| rounded up to 1
    eps_low = torch.clamp(eps - svd_bound(eps, n) - U64 * (d + eps), min=0.0)
    chain = scaled_chain(J, f)
    out = []
    for b in range(B):
        diff = chain.P_J[b] - chain.P_D[b]
        lhs_s = spectral_norm(diff).item()
        abs_PD = chain.P_D[b].abs()
        slack_s = frobenius(product_bound(chain.P_absJ[b], T, n) + product_bound(abs_PD, T, 1)
                            + U64 * (chain.P_J[b].abs() + abs_PD)).item() + svd_bound(lhs_s, n)
        log_scale = chain.log_scale[b].item()
        log_d = torch.log(d[:, b]).sum().item()
        # log(Π(d + ε) - Π d) = Σ log d + log(Π(1 + ε/d) - 1)
        x_low = torch.log1p(eps_low[:, b] / d[:, b]).sum().item()
        logs = torch.log1p(eps[:, b] / d[:, b])
        x = logs.sum().item()
        log_rhs = log_d + _log_expm1(x_low)
        # The evaluation's own rounding: 2T + 2 operations, and the exponent's error, which grows with x.
        log_rhs_slack = math.log(gamma(2 * T + 2, torch.float64) + exp_of_sum_error(logs)) + log_d + x
        log_lhs = math.log(lhs_s) + log_scale if lhs_s > 0 else -math.inf
        log_slack = math.log(slack_s) + log_scale if slack_s > 0 else -math.inf
        allowed = torch.logsumexp(torch.tensor([log_rhs, log_rhs_slack, log_slack], dtype=torch.float64), 0).item()
        if not log_lhs <= allowed:
            raise ClaimViolation("L7", f"{context}, example {b}: ||Π J_t - Π D_t|| = e^{log_lhs:.6g} exceeds the "
                                       f"bound Π(d_t + ε_t) - Π d_t = e^{log_rhs:.6g} (+ rounding e^{log_slack:.4g}) "
                                       f"(the telescoping bound, a theorem for ||D_t|| <= d_t)",
                                 figures={"log_lhs": log_lhs, "log_bound": log_rhs})
        pd_norm = abs_PD.diagonal().max().item()  # ||Π D||_2 = max_k Π_t f_t,k (scaled)
        rel = lhs_s / pd_norm if pd_norm > 0 else math.inf
        rel_low = (lhs_s - slack_s) / (pd_norm * (1 + 2 * U64)) if pd_norm > 0 else math.inf
        out.append({"tightness": math.exp(log_lhs - log_rhs) if log_rhs > -math.inf else 0.0,
                    "relative_error": rel, "relative_error_lower": rel_low,
                    "log10_error": log_lhs / math.log(10), "log10_bound": log_rhs / math.log(10),
                    "log10_prod_f": (math.log(pd_norm) + log_scale) / math.log(10) if pd_norm > 0 else -math.inf,
                    "max_eps": eps[:, b].max().item(), "steps": T, "example": b})
    small = [o["relative_error"] for o in out if o["max_eps"] <= SMALL_INDIRECT]
    return {"per_example": out, "max_tightness": max(o["tightness"] for o in out),
            "max_relative_error": max(o["relative_error"] for o in out),
            "max_relative_error_small_indirect": max(small) if small else 0.0}


def _counterexample(problem, figs: dict, where_from: str) -> dict | None:
    """The example whose relative error provably exceeds RELATIVE_ERROR_REFUTES, if any (JSON-able)."""
    for o in figs["per_example"]:
        if o["relative_error_lower"] > RELATIVE_ERROR_REFUTES and o["max_eps"] <= SMALL_INDIRECT:
            b = o["example"]
            return {"where": where_from, "T": problem.steps, "example": b,
                    "relative_error": o["relative_error"], "relative_error_lower_bound": o["relative_error_lower"],
                    "log10_norm_prod_J_minus_prod_D": o["log10_error"],
                    "log10_norm_prod_D (max_k prod_t f)": o["log10_prod_f"],
                    "log10_bound": o["log10_bound"], "max_eps_t": o["max_eps"],
                    "reading": f"T = {problem.steps}, every indirect term ε_t <= {o['max_eps']:.3g}: ||Π J - Π D|| = "
                               f"10^{o['log10_error']:.3g} while ||Π D|| = max_k Π f = 10^{o['log10_prod_f']:.3g}: "
                               f"relative error {o['relative_error']:.3g} (the absolute bound holds; '≈ diag(Π f)' "
                               "has no correct digit)",
                    "problem": {**problem.as_json(), "h0": problem.h0[b].tolist(), "c0": problem.c0[b].tolist()}}
    return None


def premise_example(steps: int, *, w_exp: int = -4, shift: float = -3.0, n: int = 3, m: int = 2):
    """A sequence in the note's premise (small weights 2^w_exp, so every ε_t is a few 1e-2) with forgetting gates
    (forget bias shifted by -3: f ≈ 0.05, Π f tiny): the absolute bound holds, the relative error exceeds 1.

    Seeded values (strategies.long_range_sequences.seeded_uniform), exact in float32.
    """
    b = seeded_uniform((4 * n,), -2, 1)
    b[n:2 * n] += shift
    params = LSTMParams(seeded_uniform((4 * n, m), w_exp, 2), seeded_uniform((4 * n, n), w_exp, 3), float32_exact(b),
                        seeded_uniform((4 * n,), -2, 4))
    return LSTMSequence(params, seeded_uniform((steps, 1, m), 0, 5), seeded_uniform((1, n), -1, 6),
                        seeded_uniform((1, n), 0, 7), {"construction": f"L7 premise: weights 2^{w_exp}, "
                                                                       f"forget shift {shift}", "seeds": "1..7"})


def cell_factors(cut, problem, device, dtype):
    """The cell's J_t (J_1 = D_1) and the diagonal of its D_t along its own trajectory, (T, B, n, n), (T, B, n).

    For t >= 2 the cell's Jacobian through h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}) (L2's setting), with
    o_{t-1} the reference gate at the cell's trajectory rounded to exact_for(dtype) (float32 for float64
    and float32, the dtype itself for bfloat16 and float16: an exact input of the case), and D_t at the
    h that the cell computed from them; at t = 1, h_0 is held fixed. The states c_{t-1} are rounded the
    same way: a cell's own are exact already, a sequence module's are reconstructed in float64
    (claims/unrolled_sequence.py) and would otherwise be rounded by the cell, a rounding L2's tolerance
    does not cover. (The theorem holds for any factors: which exact states they are taken at is free.)
    Also checks the cell's J_t against the closed form within L2's derived tolerance (in the dtype).
    """
    __tracebackhide__ = True
    p = problem
    T, B, n = p.steps, p.batch, p.hidden_size
    hs, cs = run_cell(cut, p, device, dtype).states()
    inp = step_inputs(p.params, p.xs, hs, cs)
    flat = lambda t: t.flatten(0, 1)  # noqa: E731  (T, B, ...) -> (T B, ...)
    zeros = torch.zeros(T * B, n, dtype=torch.float64)
    exact = exact_for(dtype)
    o_prev = round_to(flat(inp.o_prev), exact)
    rows = StepProblem(p.params, flat(inp.x), flat(inp.h_prev), round_to(flat(inp.c_prev), exact), o_prev, zeros,
                       zeros)
    J = torch.empty(T * B, n, n, dtype=torch.float64)
    D = torch.empty(T * B, n, n, dtype=torch.float64)
    first = slice(0, B)
    D[first] = through_cell.c_jacobian(cut, dataclasses.replace(rows, x=rows.x[first], h=rows.h[first],
                                                                c=rows.c[first], o_prev=rows.o_prev[first],
                                                                v_h=zeros[first], v_c=zeros[first]),
                                       device, dtype, through_h=False)
    J[first] = D[first]
    if T > 1:
        later = slice(B, T * B)
        sub = dataclasses.replace(rows, x=rows.x[later], h=rows.h[later], c=rows.c[later],
                                  o_prev=rows.o_prev[later], v_h=zeros[later], v_c=zeros[later])
        J_cell, h_used = through_cell.c_jacobian(cut, sub, device, dtype, through_h=True)
        ref = cell_state_jacobian(p.params, sub.x, sub.c, sub.o_prev)
        assert_within("L7", "the cell's one-step factor J_t vs diag(f) + K M", J_cell, ref.J,
                      jacobian_tolerance(sub, dtype), context=f"{where(device, dtype)}, T={T} B={B} n={n}",
                      why="L2's derived rounding bound of the cell's Jacobian through h = o ⊙ tanh(c)")
        J[later] = J_cell
        D[later] = through_cell.c_jacobian(cut, dataclasses.replace(sub, h=h_used), device, dtype, through_h=False)
    f = torch.diagonal(D, dim1=-2, dim2=-1)
    return J.unflatten(0, (T, B)), f.unflatten(0, (T, B))


def check_through_cell(cut, problem, device, dtype) -> dict:
    __tracebackhide__ = True
    p = problem
    ctx = f"{where(device, dtype)}, cell's factors, T={p.steps} B={p.batch} n={p.hidden_size}"
    J, f = cell_factors(cut, p, device, dtype)
    figs = bound_check(J, f, context=ctx)
    figs["counterexample"] = _counterexample(p, figs, f"the cell's own factors ({where(device, dtype)})")
    return figs


def check_closed_form(problem) -> dict:
    """The theorem on the float64 closed forms (reference.jacobian_chain.cell_state_factors)."""
    __tracebackhide__ = True
    p = problem
    fac = cell_state_factors(p.params, p.xs, p.h0, p.c0)
    figs = bound_check(fac.J, fac.f, context=f"float64 closed form, T={p.steps} B={p.batch} n={p.hidden_size}")
    figs["counterexample"] = _counterexample(p, figs, "float64 closed forms (reference.jacobian_chain)")
    return figs


def proofs() -> list[dict]:
    return [symbolic_long_range.prove_telescoping_expansion(T) for T in (2, 3, 4)]


# --- the record's checks ----------------------------------------------------------------------

def _plot_bound_vs_observed(ctx, figures, label):
    """Every example's (log10 bound, log10 ||Π J - Π D||): the theorem puts every point under the diagonal."""
    per = figures["per_example"]
    kw = dict(title="L7: ||Π J_t - Π diag(f_t)|| against its bound Π(1 + ε_t) - 1",
              xlabel="log10 bound", ylabel="log10 observed",
              note="Each point is one example; the theorem puts every point on or below the diagonal.")
    ctx.points("plot_bound_vs_observed", label, [o["log10_bound"] for o in per],
               [o["log10_error"] for o in per], **kw)
    lo = min((o["log10_bound"] for o in per if math.isfinite(o["log10_bound"])), default=0.0)
    ctx.points("plot_bound_vs_observed", "observed = bound", [lo, 1.0], [lo, 1.0], style="-", **kw)


def _through_cell(ctx, problem):
    problem = LP.exact_problem(problem, ctx.dtype)  # the float32-exact premise example, rounded to bfloat16 / float16
    figures = check_through_cell(ctx.cut, problem, ctx.device, ctx.dtype)
    target(figures["max_tightness"], label="observed / bound")
    _plot_bound_vs_observed(ctx, figures, f"through the cell, T <= 16 ({ctx.where})")
    if figures["counterexample"]:
        ctx.refute(figures["counterexample"])
    return {"max_tightness_cell": figures["max_tightness"], "max_relative_error_cell": figures["max_relative_error"],
            "max_relative_error_small_indirect_cell": figures["max_relative_error_small_indirect"]}


def _long_closed_forms(ctx, problem):
    figures = check_closed_form(problem)
    target(figures["max_tightness"], label="observed / bound")
    _plot_bound_vs_observed(ctx, figures, "closed form, T <= 200")
    target(min(figures["max_relative_error_small_indirect"], 1e300), label="relative error, ε_t <= 0.1")
    if figures["counterexample"]:
        ctx.refute(figures["counterexample"])
    return {"max_tightness_long": figures["max_tightness"], "max_steps": problem.steps,
            "max_relative_error_long": min(figures["max_relative_error"], 1e300),
            "max_relative_error_small_indirect_long": min(figures["max_relative_error_small_indirect"], 1e300)}


def _symbolic(ctx):
    ctx.figures(symbolic=[p["identity"] for p in proofs()])


CLAIM.define_checks(
    # Explicit example: small indirect terms, Π f ~ 1e-20: relative error >> 1.
    # The four dtypes: the theorem holds for any factors, so the dtype enters only through the cell's factors,
    # checked within L2's tolerance in the dtype; the products and the bound are float64 (bound_check).
    Check("bound-through-cell", _through_cell,
          per_dtype(lambda exact_in: sequence_problems(max_steps=16, max_hidden=5, max_batch=2, exact_in=exact_in)),
          examples=(premise_example(16, w_exp=-3),), dtypes=LP.ALL_DTYPES, through_impl=True),
    # Explicit example: every ε_t < 0.02, Π f ~ 1e-73: relative error ~ 13. Closed forms only (float64).
    Check("bound-long-closed-forms", _long_closed_forms,
          drawn_from(sequence_problems(max_steps=200, max_hidden=6, max_batch=3)),
          examples=(premise_example(60),), dtypes=(), devices=()),
    Check("symbolic", _symbolic, dtypes=(), devices=()),
)
