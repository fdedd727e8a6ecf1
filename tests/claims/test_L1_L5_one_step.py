"""L1-L5 through the cell under test, as Hypothesis properties, plus their SymPy proofs."""
import pytest
from hypothesis import assume, given, target
from hypothesis import strategies as st

import torch
from lstm_claims.claims import l1_gates_blind_to_c as L1
from lstm_claims.claims import l2_decomposition as L2
from lstm_claims.claims import l3_direct_term as L3
from lstm_claims.claims import l4_derivative_bounds as L4
from lstm_claims.claims import l5_indirect_term as L5
from lstm_claims.strategies import step_problems

pytestmark = pytest.mark.claims

# Jacobian checks cost n backward passes each: widths up to 6 keep the suite in budget.
jacobian_problems = step_problems(max_hidden=6)


@pytest.mark.claim("L1")
@given(problem=jacobian_problems)
def test_L1_direct_jacobian_is_diag_f(cell_under_test, claim_log, device, dtype, problem):
    claim_log.example("L1", **L1.check(cell_under_test, problem, device, dtype))


@pytest.mark.claim("L1")
@pytest.mark.parametrize("n", [1, 2, 3])
def test_L1_symbolic(n, claim_log):
    L1.prove(n)
    claim_log.example("L1", symbolic_n=n)


@pytest.mark.claim("L2")
@given(problem=jacobian_problems)
def test_L2_decomposition_matches_autograd(cell_under_test, claim_log, device, dtype, problem):
    claim_log.example("L2", **L2.check(cell_under_test, problem, device, dtype))


@pytest.mark.claim("L2")
@pytest.mark.parametrize("n", [1, 2, 3])
def test_L2_symbolic(n, claim_log):
    L2.prove(n)
    claim_log.example("L2", symbolic_n=n)


@pytest.mark.claim("L3")
@given(problem=jacobian_problems)
def test_L3_direct_term_distance_from_identity(cell_under_test, claim_log, device, dtype, problem):
    claim_log.example("L3", **L3.check(cell_under_test, problem, device, dtype))


@pytest.mark.claim("L4")
def test_L4_symbolic_suprema(claim_log):
    L4.proofs()
    claim_log.example("L4")


@pytest.mark.claim("L4")
@given(z=st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=64))
def test_L4_pointwise_derivative_bounds(claim_log, device, dtype, z):
    claim_log.example("L4", **L4.check_pointwise(torch.tensor(z + [0.0], dtype=torch.float64), device, dtype))


@pytest.mark.claim("L4")
@given(problem=step_problems())
def test_L4_cell_bias_gradients_bounded(cell_under_test, claim_log, device, dtype, problem):
    claim_log.example("L4", **L4.check_cell_bias_gradients(cell_under_test, problem, device, dtype))


@pytest.mark.claim("L5")
@given(problem=jacobian_problems)
def test_L5_indirect_term_bounded(cell_under_test, claim_log, device, dtype, problem):
    figures = L5.check_bound(cell_under_test, problem, device, dtype)
    target(figures["max_E_over_B1"], label="||E|| / B1")  # push toward the tightest cases
    claim_log.example("L5", **figures)


@pytest.mark.claim("L5")
@given(problem=step_problems(max_hidden=4, weight_exps=(-3, 1)))
def test_L5_indirect_term_vanishes_under_saturation(cell_under_test, claim_log, device, dtype, problem):
    # Saturation needs every i, f, g pre-activation away from 0 (α > 0); the bound is vacuous at α = 0.
    assume(L5.saturation_floor(problem) >= 2.0 ** -6)
    claim_log.example("L5", **L5.check_saturation(cell_under_test, problem, device, dtype))
