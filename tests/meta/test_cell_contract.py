"""A module that breaks the cell contract gets one clear error naming what is wrong."""
import pytest
import torch

from lstm_claims.claims.cell_under_test import CellContractError, CellUnderTest, check_contract
from tests.cells.broken import BROKEN
from tests.cells.correct import CORRECT_CELLS


@pytest.mark.parametrize("spec,needle", [pytest.param(*v, id=k) for k, v in BROKEN.items()])
def test_broken_cell_is_reported_by_name(spec, needle):
    with pytest.raises(CellContractError, match=needle):
        check_contract(CellUnderTest.load(spec), "cpu", torch.float64)


@pytest.mark.parametrize("spec", CORRECT_CELLS.values(), ids=list(CORRECT_CELLS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_correct_cells_meet_the_contract(spec, dtype):
    check_contract(CellUnderTest.load(spec), "cpu", dtype)
