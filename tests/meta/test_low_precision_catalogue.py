"""The low-precision catalogue: each mutant of tests/cells/low_precision_mutants.py is caught in every
dtype it is wrong in, by the claims its `must_fail` names, and the violation names the claim and the
dtype; in float32 (where it is correct) the same checks pass.

Kept fast (< 60 s on 2 cores): L0's forward and backward checks only, in-process, at most 20
examples, on moderate problems (weights 2^-4 .. 2^-1, cell states up to 2^3: pre-activations of
order 1, where the bfloat16 bound on a gate's derivative is about 5%, so that a 10% error in it
cannot hide; claims/tolerances.py), except the float16 overflow, which needs |c_t| > 11 and runs
L0's own strategy.
"""
from __future__ import annotations

import pytest
import torch

from lstm_claims.claims.record import dtype_name
from lstm_claims.inprocess import first_violation
from lstm_claims.strategies import step_problems
from tests.cells.low_precision_mutants import KERNEL_WIDTH_LOW_PRECISION_MUTANTS, LOW_PRECISION_MUTANTS

CHECKS = ("forward", "backward")


def _moderate(dtype):
    exact_in = dtype if dtype in (torch.bfloat16, torch.float16) else torch.float32
    return step_problems(weight_exps=(-4, -1), cell_exps=(-2, 3), forget_shifts=(0.0, 1.0), exact_in=exact_in)


def _large_state(dtype):
    # Where a cell state rounded to bfloat16 shows in float16: c_t dominated by f c_(t-1) with |c| up to 2^6 and
    # tiny weights (the pre-activations' rounding, which the bound must allow, is then negligible): the bound on
    # c_t is about 6 u |f c| (the gates' and the products' roundings), bfloat16's rounding of c_t up to 8 u |c_t|.
    exact_in = dtype if dtype in (torch.bfloat16, torch.float16) else torch.float32
    return step_problems(weight_exps=(-6, -6), cell_exps=(3, 6), forget_shifts=(3.0, 8.0), exact_in=exact_in)


def _strategy(mutant, dtype):
    if "SinhOverCosh" in mutant.spec:
        return None  # L0's own problems reach |c_t| > 11
    return _large_state(dtype) if "StateKept" in mutant.spec else _moderate(dtype)


CASES = [(m, claim, dt) for m in LOW_PRECISION_MUTANTS for claim in m.must_fail for dt in m.dtypes]


@pytest.mark.parametrize("mutant,claim,dtype", CASES,
                         ids=[f"{m.spec.split(':')[1]}-{c}-{dtype_name(d)}" for m, c, d in CASES])
def test_low_precision_mutant_fails_naming_claim_and_dtype(mutant, claim, dtype):
    exc = first_violation(mutant.spec, claim, dtypes=(dtype,), max_examples=20, strategy=_strategy(mutant, dtype),
                          checks=CHECKS)
    assert exc is not None, f"{mutant.name}: no check of {claim} failed in {dtype_name(dtype)}"
    message = str(exc)
    assert f"[{claim}]" in message and dtype_name(dtype) in message, message


@pytest.mark.parametrize("mutant", LOW_PRECISION_MUTANTS, ids=[m.spec.split(":")[1] for m in LOW_PRECISION_MUTANTS])
def test_low_precision_mutant_is_correct_in_float32(mutant):
    """Wrong only in low precision: the same checks, on the same kind of problems, pass in float32."""
    for claim in mutant.must_fail:
        exc = first_violation(mutant.spec, claim, dtypes=(torch.float32,), max_examples=10,
                              strategy=_strategy(mutant, torch.float32), checks=CHECKS)
        assert exc is None, str(exc)


@pytest.mark.parametrize("mutant,dtype", [(m, d) for m in KERNEL_WIDTH_LOW_PRECISION_MUTANTS for d in m.dtypes],
                         ids=[f"{m.spec.split(':')[1]}-{dtype_name(d)}" for m in KERNEL_WIDTH_LOW_PRECISION_MUTANTS
                              for d in m.dtypes])
def test_half_precision_accumulator_is_caught_at_kernel_widths_only(mutant, dtype):
    """An accumulator in the dtype's own precision: L0's small forward and backward and the random-sign kernel
    examples allow it (0.09-0.20 of the allowance, measured); the same-sign example (K ~ 900) does not, naming
    the example; in float32 every check passes."""
    assert first_violation(mutant.spec, "L0", dtypes=(dtype,), max_examples=20, checks=CHECKS) is None
    exc = first_violation(mutant.spec, "L0", dtypes=(dtype,), max_examples=5, checks=("forward-kernel-sizes",))
    assert exc is not None, f"{mutant.name}: forward-kernel-sizes passed in {dtype_name(dtype)}"
    message = str(exc)
    assert "[L0]" in message and dtype_name(dtype) in message and "same-sign accumulation" in message, message
    assert first_violation(mutant.spec, "L0", dtypes=(torch.float32,), max_examples=5,
                           checks=("forward-kernel-sizes",)) is None
