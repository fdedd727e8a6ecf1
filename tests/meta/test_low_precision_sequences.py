"""L0's sequence checks in bfloat16 and float16 (issue 12): the correct cells pass them, and each sequence
mutant of tests/cells/low_precision_mutants.py (LOW_PRECISION_SEQUENCE_MUTANTS), wrong only in low precision,
fails them in every dtype it is wrong in, naming L0 and the dtype, and passes them in float32.

Also the two derivations the carried bounds gained for low precision (claims/long_range_tolerances.py):
`compounded` (T roundings of a sum, defined for every T) and `trajectory_mismatch` (a sequence module's own
cell states within E of the reconstruction), each checked against what it bounds.

What each mutant needs, measured (in-process, derandomized):
- HalfChunkStateDropped: T > 64; L0's explicit T = 1000 example catches it in both dtypes (step 65).
- HalfChunkGradientCut: T > 64 in the backward's bands; float16 at the explicit T = 131 example,
  bfloat16 at a drawn T = 159 (the 7th example): the backward's carried allowance in bfloat16 is wide.
- Float16CarriedStateInBfloat16: the carried bound E_t grows by one-step bounds (about 6 u |c| when the
  weights are small), and one rounding of c to bfloat16 is at most 8 u |c| (float16's u), so it shows
  where the state is large and the weights small (the regime of the one-step catalogue's
  Float16StateKeptInBfloat16); there it is caught at T = 1, and at T = 40 where bfloat16's sum stagnates
  (c stuck at 16, true 18.5). L0's default sequence problems (weights up to 2^2) did not reach it in 10
  examples: the forward check does not catch a per-step rounding that small in general.
"""
from __future__ import annotations

import math

import pytest
import torch

from lstm_claims.claims.long_range_tolerances import compounded, trajectory_mismatch
from lstm_claims.claims.record import dtype_name
from lstm_claims.claims.tolerances import gamma, unit_roundoff
from lstm_claims.inprocess import first_violation
from lstm_claims.reference.lstm_step import LSTMParams, lstm_step_vjp, preactivations
from lstm_claims.strategies.sequence_checks import sequence_checks
from tests.cells.low_precision_mutants import LOW_PRECISION_SEQUENCE_MUTANTS

HALF = (torch.bfloat16, torch.float16)
SEQUENCE_CHECKS = ("sequence-forward", "sequence-backward")


def _check_of(mutant) -> str:
    return mutant.shows.split(",")[0]


def _strategy(mutant, dtype):
    if "CarriedStateInBfloat16" not in mutant.spec:
        return None  # L0's own sequence problems and explicit examples
    exact_in = dtype if dtype in HALF else torch.float32
    # Small weights, large cell states, forget gates near 1: the pre-activations' rounding is negligible and the
    # bound on c_t is about 6 u |c|, below bfloat16's rounding of c (up to 8 u |c|, u of float16).
    return sequence_checks(bands=((1, 3), (13, 60)), exact_in=exact_in, weight_exps=(-6, -6), cell_exps=(3, 6),
                           forget_shifts=(3.0, 8.0))


CASES = [(m, dt) for m in LOW_PRECISION_SEQUENCE_MUTANTS for dt in m.dtypes]


@pytest.mark.parametrize("mutant,dtype", CASES, ids=[f"{m.spec.split(':')[1]}-{dtype_name(d)}" for m, d in CASES])
def test_sequence_mutant_fails_in_its_dtype_naming_L0(mutant, dtype):
    exc = first_violation(mutant.spec, "L0", dtypes=(dtype,), checks=(_check_of(mutant),), max_examples=10,
                          strategy=_strategy(mutant, dtype))
    assert exc is not None, f"{mutant.name}: L0's {_check_of(mutant)} passed in {dtype_name(dtype)}"
    message = str(exc)
    assert "[L0]" in message and dtype_name(dtype) in message and "sequence:" in message, message


@pytest.mark.parametrize("mutant", LOW_PRECISION_SEQUENCE_MUTANTS,
                         ids=[m.spec.split(":")[1] for m in LOW_PRECISION_SEQUENCE_MUTANTS])
def test_sequence_mutant_is_correct_in_float32(mutant):
    exc = first_violation(mutant.spec, "L0", dtypes=(torch.float32,), checks=(_check_of(mutant),), max_examples=10,
                          strategy=_strategy(mutant, torch.float32))
    assert exc is None, str(exc)


@pytest.mark.parametrize("spec", ["torch.nn:LSTM", "torch.nn:LSTMCell"])
def test_correct_modules_pass_the_sequence_checks_in_low_precision(spec):
    exc = first_violation(spec, "L0", dtypes=HALF, checks=SEQUENCE_CHECKS, max_examples=4)
    assert exc is None, str(exc)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_compounded_is_the_worst_case_of_k_roundings_for_every_k(dtype):
    u = unit_roundoff(dtype)
    for k in (1, 3, 131, 255):
        if k * u < 1:
            assert compounded(k, dtype) <= gamma(k, dtype)
        assert compounded(k, dtype) == pytest.approx((1 + u) ** k - 1, rel=1e-12)
    assert math.isfinite(compounded(1000, dtype))


def test_compounded_covers_a_stagnating_bfloat16_sum():
    """1000 ones added one at a time in bfloat16 stagnate at 256: a relative error of 74% of Σ|terms|, within
    compounded(999) (where γ_999 is undefined in bfloat16)."""
    s = torch.tensor(0.0, dtype=torch.bfloat16)
    for _ in range(1000):
        s = s + torch.tensor(1.0, dtype=torch.bfloat16)
    assert float(s) == 256.0
    with pytest.raises(ValueError):
        gamma(999, torch.bfloat16)
    assert abs(float(s) - 1000) <= compounded(999, torch.bfloat16) * 1000


def test_trajectory_mismatch_bounds_the_vjp_moved_by_the_states():
    """Moving c_(t-1) by δ (|δ| <= E) moves c_t by f δ: the step's VJP moves by at most the mismatch term with
    E_prev = E, E_next = f E; and with E = 0 the term is 0."""
    gen = torch.Generator().manual_seed(5)
    B, m, n = 7, 3, 4
    r = lambda *s: (torch.rand(*s, generator=gen, dtype=torch.float64) * 2 - 1)  # noqa: E731
    p = LSTMParams(weight_ih=r(4 * n, m), weight_hh=r(4 * n, n), bias_ih=r(4 * n), bias_hh=r(4 * n))
    x, h, c, v_h, v_c = r(B, m), r(B, n) / 2, 4 * r(B, n), r(B, n), r(B, n)
    f = preactivations(p, x, h).f
    zero = torch.zeros(B, n, dtype=torch.float64)
    assert all(bool((t == 0).all()) for t in trajectory_mismatch(p, x, h, c, v_h.abs(), v_c.abs(), zero, zero).values())
    for E in (1e-3, 0.1, 1.0):
        bound = trajectory_mismatch(p, x, h, c, v_h.abs(), v_c.abs(), torch.full_like(c, E), f * E)
        base = lstm_step_vjp(p, x, h, c, v_h, v_c).as_dict()
        for _ in range(20):
            delta = E * r(B, n)
            moved = lstm_step_vjp(p, x, h, c + delta, v_h, v_c).as_dict()
            for k in bound:
                assert bool(((moved[k] - base[k]).abs() <= bound[k] * (1 + 1e-12) + 1e-15).all()), (k, E)
