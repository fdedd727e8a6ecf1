"""Sequence modules (issue: torch.nn.LSTM as it is): the kind is told from the module, the claims over
sequences run through the module's own forward, every sequence mutant fails naming L0, every
correct sequence module passes, and a module that breaks the contract gets one message (exit 2).

must_fail of each mutant (L0), measured: caught by the explicit examples of L0's sequence-forward
check (T = 257 batch-first, T = 1000 time-first, T = 1 batch-first, all with non-zero initial
states), derandomized, in under 3 s each on this machine.
"""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings

from lstm_claims.claims.cell_under_test import CellContractError, CellUnderTest, check_contract
from lstm_claims.claims.registry import all_claims
from lstm_claims.claims.l0_sequences import check_sequence_forward
from lstm_claims.claims.unrolled_cell import run
from lstm_claims.claims.violation import ClaimViolation
from lstm_claims.claims.unrolled_sequence import reconstructed_cell_states
from lstm_claims.inprocess import first_violation
from lstm_claims.strategies.sequence_checks import sequence_check, sequence_checks

ROOT = Path(__file__).resolve().parents[2]
S = "tests.cells.sequences"
CORRECT_SEQUENCE_MODULES = ["torch.nn:LSTM", f"{S}:StepLoopLSTM", f"{S}:ProjectedLSTM", f"{S}:KerasLayoutAdapter"]
SEQUENCE_MUTANTS = ["ChunkStateDropped", "InitialStateIgnored", "BatchFirstReshaped", "OddFinalState",
                    "LateRingBuffer", "GridCappedInputProjection"]
SEQUENCE_CHECKS = ("sequence-forward", "sequence-backward")


@pytest.mark.parametrize("spec,kind", [("torch.nn:LSTM", "sequence"), ("torch.nn:LSTMCell", "cell"),
                                       (f"{S}:StepLoopLSTM", "sequence"), (f"{S}:KerasLayoutAdapter", "sequence adapter"),
                                       ("tests.cells.third_party:FusedGateCell", None)])
def test_the_kind_is_told_from_the_module(spec, kind):
    cut = CellUnderTest.load(spec)
    if kind is None:  # neither contract: one message pointing at adapters
        with pytest.raises(CellContractError, match="adapter"):
            cut.kind
    else:
        assert cut.kind == kind


@pytest.mark.parametrize("name", SEQUENCE_MUTANTS)
def test_sequence_mutant_fails_naming_L0(name):
    exc = first_violation(f"{S}:{name}", "L0", checks=("sequence-forward",), max_examples=20)
    assert exc is not None and exc.claim_id == "L0", f"{name} passed L0's sequence checks"
    assert "sequence:" in str(exc) and "through the module's own forward over the whole sequence" in str(exc)


# Backward-only bugs of a sequence module: the forward is right, so sequence-forward cannot see them.
SEQUENCE_BACKWARD_MUTANTS = ["FinalCellGradientIgnored"]


@pytest.mark.parametrize("name", SEQUENCE_BACKWARD_MUTANTS)
def test_backward_sequence_mutant_passes_the_forward_and_fails_the_backward_naming_L0(name):
    assert first_violation(f"{S}:{name}", "L0", checks=("sequence-forward",), max_examples=20) is None
    exc = first_violation(f"{S}:{name}", "L0", checks=("sequence-backward",), max_examples=20)
    assert exc is not None and exc.claim_id == "L0", f"{name} passed L0's sequence-backward check"
    assert ", backward" in str(exc) and "sequence:" in str(exc), str(exc)


@pytest.mark.parametrize("spec", CORRECT_SEQUENCE_MODULES)
def test_correct_sequence_module_passes_under_random_seeds(spec):
    exc = first_violation(spec, "L0", checks=SEQUENCE_CHECKS, max_examples=6, derandomize=False)
    assert exc is None, str(exc)


def test_chunk_bug_is_invisible_within_one_chunk():
    """The chunk mutant is right up to T = 64 and wrong from T = 65: what the bands of T past 64 are for."""
    cut = CellUnderTest.load(f"{S}:ChunkStateDropped")
    for layout in ("time_first", "batch_first"):
        check_sequence_forward(cut, sequence_check(64, 2, 3, 4, layout=layout, seed=7), "cpu", torch.float64)
        with pytest.raises(ClaimViolation, match=r"Worst at index \((6[4-9]|[7-9]\d), "):
            check_sequence_forward(cut, sequence_check(65, 2, 3, 4, layout=layout, seed=7), "cpu", torch.float64)


def test_grid_cap_bug_is_invisible_up_to_65535_rows():
    """The grid-capped input GEMM is right while T * B <= 65,535 and wrong past it: L0's T = 1000, B = 66
    example (66,000 rows) is what reaches it; the drawn sequences (B <= 4, T <= 400) never do."""
    cut = CellUnderTest.load(f"{S}:GridCappedInputProjection")
    check_sequence_forward(cut, sequence_check(1000, 65, 3, 4, seed=12), "cpu", torch.float64)  # 65,000 rows
    with pytest.raises(ClaimViolation, match="first differ at step 993 of 1000"):  # row 65,535 // 66 = 992
        check_sequence_forward(cut, sequence_check(1000, 66, 3, 4, seed=12), "cpu", torch.float64)


class _CountingLSTM(torch.nn.LSTM):
    lengths = []

    def forward(self, x, hx=None):
        _CountingLSTM.lengths.append(x.shape[1 if self.batch_first else 0])
        return super().forward(x, hx)


def test_claims_over_sequences_run_through_the_modules_own_forward():
    """G1 and L6 call the module once per sequence over all T steps, never step by step."""
    cut = CellUnderTest(spec="counting", factory=_CountingLSTM)
    seq = sequence_check(40, 2, 3, 4, seed=3).seq
    _CountingLSTM.lengths.clear()
    got = run(cut, seq, "cpu", torch.float64, inject={40: (torch.zeros(2, 4, dtype=torch.float64),
                                                              torch.ones(2, 4, dtype=torch.float64))})
    assert _CountingLSTM.lengths == [40]
    assert got.grads.c0.abs().sum() > 0
    _CountingLSTM.lengths.clear()
    assert first_violation("torch.nn:LSTM", "L6", max_examples=3) is None


def test_reconstructed_cell_states_are_the_loops_own_for_a_float64_cell():
    """For a cell run by the kit's loop, the reconstruction from its h's gives back its c's (float64: to rounding)."""
    cut = CellUnderTest.load("torch.nn:LSTMCell")
    seq = sequence_check(30, 2, 3, 4, seed=5).seq
    got = run(cut, seq, "cpu", torch.float64)
    rec = reconstructed_cell_states(seq.params, seq.xs, seq.h0, seq.c0, got.hs)
    torch.testing.assert_close(rec, got.cs, rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(problem=sequence_checks())
def test_sequence_strategy_reaches_every_regime(problem):
    """Meta: the drawn sequence problems are what the module docstring promises (counted in the test below)."""
    _REACHED.add(("short" if problem.seq.steps <= 12 else "past 64" if problem.seq.steps > 64 else "mid"))
    _REACHED.add(problem.layout)
    _REACHED.add("zero state" if problem.zero_initial_state else "non-zero state")
    assert problem.v_hs.shape == (problem.seq.steps, problem.seq.batch, problem.seq.hidden_size)


_REACHED: set = set()


def test_sequence_strategy_reached_every_regime():
    test_sequence_strategy_reaches_every_regime()
    assert _REACHED >= {"short", "mid", "past 64", "time_first", "batch_first", "zero state", "non-zero state"}, _REACHED


@pytest.mark.parametrize("name,message", [
    ("OutputWrongShape", "output has shape"),
    ("ReturnsOnlyOutput", "must return (output, (h_n, c_n))"),
    ("StatesWithoutLayerDim", "the layer dimension is part of torch.nn.LSTM's contract"),
    ("TwoLayerLSTM", "num_layers=2"),
    ("BidirectionalLSTM", "bidirectional=True"),
    ("ProjectedHiddenLSTM", "proj_size=1"),
])
def test_contract_breaking_sequence_module_gets_one_message(name, message):
    with pytest.raises(CellContractError) as info:
        check_contract(CellUnderTest.load(f"tests.cells.broken_sequences:{name}"), "cpu", torch.float64)
    assert message in str(info.value)


def test_contract_breaking_sequence_module_exits_2_with_one_message(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lstm_claims.cli", "run", "--lstm-impl=tests.cells.broken_sequences:TwoLayerLSTM",
                           "--claims=L0", f"--out={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "num_layers=2" in out and out.count("Traceback") == 0


CATALOGUE_CLAIMS = [c.id for c in all_claims()
                    if any(ch.in_catalogue for ch in c.checks)]


@pytest.mark.parametrize("claim_id", CATALOGUE_CLAIMS)
def test_torch_lstm_passes_every_claim_through_its_own_forward(claim_id):
    """torch.nn.LSTM as it is, under fresh seeds (few examples: the ci suite on it runs the full profile)."""
    exc = first_violation("torch.nn:LSTM", claim_id, max_examples=5, derandomize=False)
    assert exc is None, f"torch.nn.LSTM was rejected: {exc}"
