"""R1-R2: residual blocks and the forget-gate-free cell step, with torch.func, closed forms and SymPy."""
import pytest
from hypothesis import given, target

from lstm_claims.claims import r1_residual_form as R1
from lstm_claims.claims import r2_skip_path as R2
from lstm_claims.strategies import step_problems
from lstm_claims.strategies.residual_stacks import residual_stacks

pytestmark = pytest.mark.claims



@pytest.mark.claim("R1")
@given(stack=residual_stacks(max_depth=1, max_batch=3))
def test_R1_residual_block_jacobian(claim_log, device, dtype, stack):
    claim_log.example("R1", **R1.check_block(stack.blocks[0], stack.x0, device, dtype))


@pytest.mark.claim("R1")
@given(problem=step_problems(max_hidden=5))
def test_R1_forget_free_cell_step(claim_log, device, dtype, problem):
    claim_log.example("R1", **R1.check_forget_free_step(problem, device, dtype))


@pytest.mark.claim("R1")
def test_R1_symbolic(claim_log):
    claim_log.figures("R1", symbolic=[p["identity"] for p in R1.proofs()])
    claim_log.example("R1")


@pytest.mark.claim("R2")
@given(stack=residual_stacks(max_depth=32))
def test_R2_skip_path_bounds(claim_log, device, dtype, stack):
    figures = R2.check(stack, device, dtype)
    target(figures["max_distance_over_exp_bound"], label="||Π(I+A) - I|| / (exp(Σ||A||) - 1)")
    target(-figures["min_sigma_min_over_lower_bound"], label="-σ_min / Π(1 - ||A||)")
    claim_log.example("R2", **figures)


@pytest.mark.claim("R2")
def test_R2_symbolic(claim_log):
    claim_log.figures("R2", symbolic=[p["identity"] for p in R2.proofs()])
    claim_log.example("R2")
