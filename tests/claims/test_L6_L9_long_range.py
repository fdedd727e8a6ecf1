"""L6-L9 through the cell under test and against the float64 closed forms, plus their SymPy proofs.

Where the note overstates, the measurement passes and the counterexample is recorded with
claim_log.refute (the claim's verdict becomes `refuted`); a theorem that fails raises a
ClaimViolation (the check fails).
"""
import math

import pytest
from hypothesis import example, given, target
from hypothesis import strategies as st

from lstm_claims.claims import l6_chain_rule_product as L6
from lstm_claims.claims import l7_product_near_diag as L7
from lstm_claims.claims import l8_log_space_memory as L8
from lstm_claims.claims import l9_forget_bias as L9
from lstm_claims.strategies.long_range_sequences import forget_gate_sequence, forget_gate_sequences, sequence_problems

pytestmark = pytest.mark.claims



def reproduce(test, device=None, dtype=None, cut=None) -> str:
    """The command that replays a test case exactly as `pytest -m claims` ran it.

    The ci profile is derandomized, but Hypothesis also draws constants from the project
    modules that are imported (hypothesis.internal.constants_ast): selecting one node id
    imports fewer modules than the full run and draws other examples. Selecting with -k
    after collecting the whole suite replays the same ones.
    """
    keys = " and ".join([test.__name__] + [x for x in (device, str(dtype).replace("torch.", "") if dtype else None)
                                             if x])
    return f"python -m pytest tests -m claims -k '{keys}'" + (f" --lstm-impl={cut.spec}" if cut else "") \
        + " --hypothesis-profile=ci"


def numbers(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


# --- L6 ------------------------------------------------------------------------------------

@pytest.mark.claim("L6")
@given(problem=sequence_problems(max_steps=10, max_hidden=4, max_batch=2))
def test_L6_unrolled_jacobian_vs_product(cell_under_test, claim_log, device, dtype, problem):
    figures = L6.check(cell_under_test, problem, device, dtype)
    target(figures["max_relative_gap"], label="||true - product|| / ||true||")
    if "counterexample" in figures:
        claim_log.refute("L6", {**figures["counterexample"], "problem": problem.as_json()},
                         reproduce=reproduce(test_L6_unrolled_jacobian_vs_product, device, dtype, cell_under_test))
    claim_log.example("L6", **numbers(figures))


@pytest.mark.claim("L6")
def test_L6_symbolic(claim_log):
    proofs = L6.proofs()
    claim_log.example("L6", symbolic_witness_gap_T3=proofs[-1]["witness_difference"])
    claim_log.figures("L6", symbolic=[p["identity"] for p in proofs])


# --- L7 ------------------------------------------------------------------------------------

def plot_bound_vs_observed(claim_log, figures, label):
    """Every example's (log10 bound, log10 ||Π J - Π D||): the theorem puts every point under the diagonal."""
    per = figures["per_example"]
    kw = dict(title="L7: ||Π J_t - Π diag(f_t)|| against its bound Π(1 + ε_t) - 1",
              xlabel="log10 bound", ylabel="log10 observed",
              note="Each point is one example; the theorem puts every point on or below the diagonal.")
    claim_log.points("L7", "plot_bound_vs_observed", label, [o["log10_bound"] for o in per],
                     [o["log10_error"] for o in per], **kw)
    lo = min((o["log10_bound"] for o in per if math.isfinite(o["log10_bound"])), default=0.0)
    claim_log.points("L7", "plot_bound_vs_observed", "observed = bound", [lo, 1.0], [lo, 1.0], style="-", **kw)


@pytest.mark.claim("L7")
@given(problem=sequence_problems(max_steps=16, max_hidden=5, max_batch=2))
@example(problem=L7.premise_example(16, w_exp=-3))  # small indirect terms, Π f ~ 1e-20: relative error >> 1
def test_L7_bound_on_the_cells_factors(cell_under_test, claim_log, device, dtype, problem):
    figures = L7.check_through_cell(cell_under_test, problem, device, dtype)
    target(figures["max_tightness"], label="observed / bound")
    plot_bound_vs_observed(claim_log, figures, f"through the cell, T <= 16 ({device} {str(dtype)[6:]})")
    if figures["counterexample"]:
        claim_log.refute("L7", figures["counterexample"],
                         reproduce=reproduce(test_L7_bound_on_the_cells_factors, device, dtype, cell_under_test))
    claim_log.example("L7", max_tightness_cell=figures["max_tightness"],
                      max_relative_error_cell=figures["max_relative_error"],
                      max_relative_error_small_indirect_cell=figures["max_relative_error_small_indirect"])


@pytest.mark.claim("L7")
@given(problem=sequence_problems(max_steps=200, max_hidden=6, max_batch=3))
@example(problem=L7.premise_example(60))  # every ε_t < 0.02, Π f ~ 1e-73: relative error ~ 13
def test_L7_bound_on_long_closed_forms(claim_log, problem):
    figures = L7.check_closed_form(problem)
    target(figures["max_tightness"], label="observed / bound")
    plot_bound_vs_observed(claim_log, figures, "closed form, T <= 200")
    target(min(figures["max_relative_error_small_indirect"], 1e300), label="relative error, ε_t <= 0.1")
    if figures["counterexample"]:
        claim_log.refute("L7", figures["counterexample"], reproduce=reproduce(test_L7_bound_on_long_closed_forms))
    claim_log.example("L7", max_tightness_long=figures["max_tightness"], max_steps=problem.steps,
                      max_relative_error_long=min(figures["max_relative_error"], 1e300),
                      max_relative_error_small_indirect_long=min(figures["max_relative_error_small_indirect"], 1e300))


@pytest.mark.claim("L7")
def test_L7_symbolic(claim_log):
    claim_log.figures("L7", symbolic=[p["identity"] for p in L7.proofs()])
    claim_log.example("L7")


# --- L8 ------------------------------------------------------------------------------------

@pytest.mark.claim("L8")
@given(seq=forget_gate_sequences(max_log10_steps=5))
# Always reach T = 10^5: Π f = σ(-3 ± ..)^T ~ e^(-3 10^5) (underflows ~1000 times over) and σ(20 ± ..)^T ≈ 1.
@example(seq=forget_gate_sequence(10 ** 5, 2, 2, 1, -1, -3.0, 7))
@example(seq=forget_gate_sequence(10 ** 5, 2, 2, 1, -1, 20.0, 8))
def test_L8_log_space_products(cell_under_test, claim_log, device, dtype, seq):
    claim_log.example("L8", **L8.check(cell_under_test, seq, device, dtype))


@pytest.mark.claim("L8")
def test_L8_symbolic(claim_log):
    claim_log.figures("L8", symbolic=[p["identity"] for p in L8.proofs()])
    claim_log.example("L8")


# --- L9 ------------------------------------------------------------------------------------

@pytest.mark.claim("L9")
@given(problem=sequence_problems(max_steps=8, recurrent=False, output_recurrence="zero"),
       delta_exp=st.integers(-4, 2))
def test_L9_monotone_in_b_f_without_feedback(cell_under_test, claim_log, device, dtype, problem, delta_exp):
    claim_log.example("L9", **L9.check_without_feedback(cell_under_test, problem, 2.0 ** delta_exp, device, dtype))


@pytest.mark.claim("L9")
@given(problem=sequence_problems(max_steps=8, weight_exps=(-2, 3)), delta_exp=st.integers(-4, 2))
@example(problem=L9.feedback_construction(), delta_exp=0)
def test_L9_monotonicity_with_feedback_checked(cell_under_test, claim_log, device, dtype, problem, delta_exp):
    figures = L9.check_with_feedback(cell_under_test, problem, 2.0 ** delta_exp, device, dtype)
    target(figures["max_gate_drop"], label="largest drop of a forget gate when b_f grows")
    if "decrease" in figures:
        # Not a claim of the note (CLAIMS.md: "checked rather than assumed"): a finding, kept as a figure.
        claim_log.figures("L9", monotonicity_with_feedback={**figures["decrease"], "reproduce": reproduce(
            test_L9_monotonicity_with_feedback_checked, device, dtype, cell_under_test)})
    claim_log.example("L9", **numbers(figures))


@pytest.mark.claim("L9")
def test_L9_forget_bias_table(cell_under_test, claim_log, device, dtype):
    table = L9.forget_bias_table()
    claim_log.figures("L9", table=table, plot_norm_vs_T=L9.central_picture(table),
                      **L9.check_table_cell(cell_under_test, device, dtype))
    cx = L9.b_f_one_counterexample(table)
    if cx:
        claim_log.refute("L9", cx, reproduce=reproduce(test_L9_forget_bias_table, device, dtype, cell_under_test))
    claim_log.example("L9", b_f_1_flows_up_to_T=table["rows"]["b_f=1"]["flows_up_to_T"] or 0)


@pytest.mark.claim("L9")
def test_L9_symbolic(claim_log):
    claim_log.figures("L9", symbolic=[p["identity"] for p in L9.proofs()])
    claim_log.example("L9")

