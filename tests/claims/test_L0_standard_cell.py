"""L0 through the cell under test: forward and backward equal the standard LSTM's."""
import pytest
from hypothesis import given

from lstm_claims.claims import l0_standard_cell as L0
from lstm_claims.strategies import step_problems

pytestmark = [pytest.mark.claims, pytest.mark.claim("L0")]


@given(problem=step_problems())
def test_L0_forward_matches_reference(cell_under_test, claim_log, device, dtype, problem):
    figures = L0.check_forward(cell_under_test, problem, device, dtype)
    claim_log.example("L0", **figures)


@given(problem=step_problems())
def test_L0_backward_matches_reference(cell_under_test, claim_log, device, dtype, problem):
    figures = L0.check_backward(cell_under_test, problem, device, dtype)
    claim_log.example("L0", **figures)
