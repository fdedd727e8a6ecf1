"""Power of the kit: every mutant in the catalogue is caught by the claims it must break (and by
L6, whose unrolled Jacobian differentiates every part of the cell over several steps), and every
correct cell passes L0-L6 under random seeds."""
import pytest
import torch

from strategies import step_problems
from tests.cells.correct import CORRECT_CELLS
from tests.cells.mutants import MUTANTS
from tests.meta.claim_runner import CHECKS, first_violation


@pytest.mark.parametrize("mutant,claim_id", [pytest.param(m, c, id=f"{m.name}-{c}") for m in MUTANTS
                                             for c in m.must_fail])
def test_mutant_is_caught(mutant, claim_id):
    exc = first_violation(mutant.spec, claim_id, max_examples=100)
    assert exc is not None, f"{mutant.name} ({mutant.shows}) passed every {claim_id} check: the kit missed the bug"
    assert exc.claim_id == claim_id and str(exc).startswith(f"[{claim_id}]"), str(exc)


@pytest.mark.parametrize("claim_id", sorted(CHECKS))
@pytest.mark.parametrize("spec", [pytest.param(s, id=n) for n, s in CORRECT_CELLS.items()])
def test_correct_cell_passes_under_random_seeds(spec, claim_id):
    # derandomize=False: a fresh seed every run, printed by Hypothesis if a correct cell ever fails.
    exc = first_violation(spec, claim_id, max_examples=15, derandomize=False)
    assert exc is None, f"a correct cell ({spec}) was rejected: {exc}"


def test_batch_only_bug_is_invisible_at_batch_1():
    """The transposed-layout mutant passes L0 when the batch is 1: catching it needs batch > 1."""
    spec = next(m.spec for m in MUTANTS if m.name == "transposed state layout")
    assert first_violation(spec, "L0", max_examples=40, strategy=step_problems(max_batch=1)) is None


def test_large_state_bug_is_invisible_for_small_states():
    """The clipping mutant passes L0 when |c| <= 4: catching it needs large cell states."""
    spec = next(m.spec for m in MUTANTS if m.name == "cell state clipped to ±8")
    assert first_violation(spec, "L0", max_examples=40, strategy=step_problems(cell_exps=(-4, 2))) is None


def test_float32_internals_pass_in_float32():
    """The float32-internals mutant is a float64 precision bug only: float32 checks pass."""
    spec = next(m.spec for m in MUTANTS if m.name == "float32 internals")
    assert first_violation(spec, "L0", dtypes=(torch.float32,), max_examples=40) is None
