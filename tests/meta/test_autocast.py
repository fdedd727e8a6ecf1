"""L0 under autocast (claims/l0_autocast.py): the float32 module run under torch.autocast to bfloat16 and to
float16, against the float64 reference within that dtype's bounds. Correct cells pass both; a cell wrong only
on its autocast path fails both, naming L0 and the autocast dtype. On the CPU here; the same checks run on
CUDA when a GPU is present (float16 is CUDA autocast's default)."""
import pytest
import torch
from hypothesis import Phase, settings

from lstm_claims.claims.cell_under_test import CellUnderTest
from lstm_claims.claims.record import CheckCase
from lstm_claims.claims.registry import all_claims
from lstm_claims.claims.violation import ClaimViolation
from lstm_claims.results import ClaimLog
from lstm_claims.runner import run_case

CHECKS = ("autocast-bfloat16", "autocast-float16")


def run_autocast_check(spec, name, *, derandomize=True, max_examples=10):
    (claim,) = all_claims(["L0"])
    (check,) = [c for c in claim.checks if c.name == name]
    log = ClaimLog()
    run_case(CheckCase("L0", check, "cpu", torch.float32), CellUnderTest.load(spec), log,
             settings_=settings(max_examples=max_examples, derandomize=derandomize, database=None, deadline=None,
                                phases=[Phase.explicit, Phase.generate]))
    return log["L0"]


@pytest.mark.parametrize("name", CHECKS)
@pytest.mark.parametrize("spec", ["torch.nn:LSTMCell", "lstm_claims.reference.reference_cell:ReferenceLSTMCell"])
def test_correct_cells_pass_under_autocast_with_fresh_seeds(spec, name):
    result = run_autocast_check(spec, name, derandomize=False)
    assert result.examples > 0 and result.figures["autocast_worst_error_over_allowed"] <= 1


@pytest.mark.parametrize("name,low", [("autocast-bfloat16", "bfloat16"), ("autocast-float16", "float16")])
def test_a_cell_wrong_only_under_autocast_fails_naming_the_autocast_dtype(name, low):
    spec = "tests.cells.low_precision_mutants:AutocastSkipsHiddenBias"
    with pytest.raises(ClaimViolation, match=rf"under torch.autocast\(cpu, {low}\)") as info:
        run_autocast_check(spec, name)
    assert info.value.claim_id == "L0"
    # ... and passes L0's plain float32 forward check (the bug is on the autocast path only)
    (claim,) = all_claims(["L0"])
    (forward,) = [c for c in claim.checks if c.name == "forward"]
    run_case(CheckCase("L0", forward, "cpu", torch.float32), CellUnderTest.load(spec), ClaimLog(),
             settings_=settings(max_examples=10, derandomize=True, database=None, deadline=None,
                                phases=[Phase.explicit, Phase.generate]))
