"""G1-G4 through the cell under test: what gating does not do (exploding gradients, clipping,
anisotropy, sequential recurrence). Thin templates over the claim modules."""
import pytest
import torch
from hypothesis import given, target
from hypothesis import strategies as st

from lstm_claims.claims import g1_exploding as G1
from lstm_claims.claims import g2_clipping as G2
from lstm_claims.claims import g3_anisotropy as G3
from lstm_claims.claims import g4_sequential as G4
from lstm_claims.claims.violation import ClaimViolation
from lstm_claims.reference.exploding_construction import fixed_point_example
from lstm_claims.strategies import step_problems
from lstm_claims.strategies.gating_sequences import fixed_point_sequences, random_sequence, separated_forget_sequences, sequences
from lstm_claims.strategies.gradients import gradient_sets, max_norms, rescalings
from lstm_claims.strategies.lstm_problems import StepProblem

pytestmark = pytest.mark.claims


def _reproduce(request, cell_under_test) -> str:
    return f"python -m pytest '{request.node.nodeid}' --lstm-impl={cell_under_test.spec}"


# ---- G1: exploding gradients remain possible -------------------------------------------------

@pytest.mark.claim("G1")
def test_G1_stored_example_jacobian_explodes(cell_under_test, claim_log, device, dtype):
    claim_log.example("G1", **G1.check_cell_jacobian_growth(cell_under_test, fixed_point_example(64), device, dtype))


@pytest.mark.claim("G1")
def test_G1_stored_example_parameter_gradient_explodes(cell_under_test, claim_log, device, dtype):
    claim_log.example("G1", **G1.check_parameter_gradient_growth(cell_under_test, fixed_point_example(64), device, dtype))


@pytest.mark.claim("G1")
def test_G1_closed_form_long_spans_and_chaotic_example(claim_log):
    claim_log.example("G1", **G1.check_closed_form_growth(), **G1.check_chaotic_growth())


@pytest.mark.claim("G1")
@given(seq=fixed_point_sequences())
def test_G1_search_fixed_point_family(cell_under_test, claim_log, device, dtype, seq):
    figures = G1.check_search_example(cell_under_test, seq, device, dtype)
    target(figures["growth_rate"], label="growth rate of ||dc_T/dc_0|| per step")
    claim_log.example("G1", search_max_growth_rate=figures["growth_rate"],
                      search_max_growth_rate_lower_bound=figures["growth_rate_lower_bound"],
                      search_found_exploding=float(figures["growth_rate_lower_bound"] > 1))


# ---- G2: clipping bounds the gradient ---------------------------------------------------------

def _clip_or_refute(request, cell_under_test, claim_log, parameters, max_norm, device, dtype, what):
    try:
        figures = G2.check_clip(parameters, max_norm, device, dtype)
    except ClaimViolation as exc:
        if exc.figures.get("case") != "norm overflow":
            raise
        claim_log.refute("G2", {"what": what, "device": device, "dtype": str(dtype), "max_norm": max_norm,
                                "message": str(exc), **exc.figures}, reproduce=_reproduce(request, cell_under_test))
        claim_log.figures("G2", overflow_counterexamples=1.0)
    else:
        claim_log.example("G2", **figures)


@pytest.mark.claim("G2")
@given(data=st.data(), max_norm=max_norms())
def test_G2_clipping_bounds_finite_gradients(claim_log, device, dtype, data, max_norm):
    grads = data.draw(gradient_sets(dtype=dtype), label="gradients")
    claim_log.example("G2", **G2.check_clip(G2.parameters_with_grads(grads, device, dtype), max_norm, device, dtype))


@pytest.mark.claim("G2")
@given(data=st.data(), max_norm=max_norms())
def test_G2_non_finite_gradients_are_reported_not_passed(claim_log, device, dtype, data, max_norm):
    grads = data.draw(gradient_sets(dtype=dtype, regime="non-finite"), label="gradients")
    with pytest.raises(ClaimViolation, match="not finite") as info:
        G2.check_clip(G2.parameters_with_grads(grads, device, dtype), max_norm, device, dtype)
    assert info.value.figures["case"] == "non-finite gradient"
    claim_log.figures("G2", non_finite_gradients_reported=1.0,
                      torch_raises_with_error_if_nonfinite=float(info.value.figures["raises_with_error_if_nonfinite"]))


@pytest.mark.claim("G2")
@given(data=st.data(), max_norm=max_norms())
def test_G2_finite_gradients_whose_squares_overflow(request, cell_under_test, claim_log, device, dtype, data,
                                                    max_norm):
    grads = data.draw(gradient_sets(dtype=dtype, regime="overflowing"), label="gradients")
    _clip_or_refute(request, cell_under_test, claim_log, G2.parameters_with_grads(grads, device, dtype), max_norm,
                    device, dtype, what="finite gradient with an element >= 2^64 (float32) / 2^512 (float64)")


# Steps of the stored G1 example after which ||dL/dθ|| passes 2^64 (float32) / 2^512 (float64): rate ≈ 1.56.
OVERFLOW_STEPS = {torch.float32: 112, torch.float64: 840}


@pytest.mark.claim("G2")
@pytest.mark.parametrize("regime", ["T=16", "T=64", "overflowing"])
def test_G2_clipping_the_exploding_gradient_of_G1(request, cell_under_test, claim_log, device, dtype, regime):
    steps = OVERFLOW_STEPS[dtype] if regime == "overflowing" else int(regime[2:])
    cell = G1.exploding_parameter_gradient(cell_under_test, steps, device, dtype)
    grads = [p.grad for p in cell.parameters() if p.grad is not None]
    assert all(bool(torch.isfinite(g).all()) for g in grads), f"G1's gradient at T = {steps} is not finite"
    if regime == "overflowing":
        norm = G2.exact_norm([g.to("cpu", torch.float64) for g in grads])
        assert norm >= 2.0 ** (64 if dtype == torch.float32 else 512), (
            f"G1's gradient at T = {steps} has norm {norm:.3g}: the construction no longer reaches the regime")
    _clip_or_refute(request, cell_under_test, claim_log, list(cell.parameters()), 1.0, device, dtype,
                    what=f"G1's stored example, dL/dθ of L = Σ c_T at T = {steps}")


# ---- G3: anisotropy; Adam vs SGD -------------------------------------------------------------

@pytest.mark.claim("G3")
@given(seq=separated_forget_sequences())
def test_G3_condition_number_grows_where_forget_gates_differ(cell_under_test, claim_log, device, dtype, seq):
    claim_log.example("G3", **G3.check_forget_conditioning(cell_under_test, seq, device, dtype))


@pytest.mark.claim("G3")
@given(seq=separated_forget_sequences(steps=8), data=st.data())
def test_G3_adam_first_step_invariant_to_rescaling_sgd_not(cell_under_test, claim_log, device, dtype, seq, data):
    rescaling = [data.draw(rescalings(t.numel()), label=f"d for {name}") for name, t in seq.params.as_dict().items()]
    claim_log.example("G3", **G3.check_optimizer_rescaling(cell_under_test, seq, rescaling, device, dtype))


# ---- G4: the recurrence is sequential --------------------------------------------------------

@pytest.mark.claim("G4")
@given(seq=sequences())
def test_G4_h_t_depends_on_past_inputs_only(cell_under_test, claim_log, device, dtype, seq):
    claim_log.example("G4", **G4.check_causality(cell_under_test, seq, device, dtype))


@pytest.mark.claim("G4")
@given(seq=sequences(max_steps=40, hidden_feedback=False), block=st.sampled_from([2, 3, 4, 8]))
def test_G4_scan_equals_loop_when_gates_ignore_h(cell_under_test, claim_log, device, dtype, seq, block):
    claim_log.example("G4", **G4.check_scan(cell_under_test, seq, device, dtype, block=block))


@pytest.mark.claim("G4")
def test_G4_scan_equals_loop_at_ten_thousand_steps(cell_under_test, claim_log, device, dtype):
    # One fixed sequence (Hypothesis cannot draw 6·10^4 inputs): f ≈ σ(3) keeps tens of steps of memory.
    seq = random_sequence(10_000, steps=10_000, hidden_feedback=False)
    claim_log.example("G4", **G4.check_scan(cell_under_test, seq, device, dtype))


@pytest.mark.claim("G4")
@given(problem=step_problems(max_hidden=4))
def test_G4_h_dependent_step_is_not_affine_in_c(cell_under_test, claim_log, device, dtype, problem):
    claim_log.example("G4", **G4.check_not_affine(cell_under_test, problem, device, dtype))


@pytest.mark.claim("G4")
def test_G4_stored_example_is_not_affine_in_c(cell_under_test, claim_log, device, dtype):
    """The G1 example at a nonzero state: the Jacobian moves far beyond rounding when c halves."""
    seq = fixed_point_example(1)
    z = torch.zeros(1, 2, dtype=torch.float64)
    problem = StepProblem(seq.params, seq.xs[0], z, torch.tensor([[0.5, -0.25]], dtype=torch.float64),
                          torch.tensor([[0.75, 0.5]], dtype=torch.float64), z, z)
    figures = G4.check_not_affine(cell_under_test, problem, device, dtype)
    assert figures["jacobian_change_over_rounding"] > 1, figures
    claim_log.example("G4", stored_jacobian_change=figures["max_jacobian_change"])
