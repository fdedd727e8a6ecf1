"""G2 (clipping) and G3 (Adam's first step) in bfloat16 and float16: the findings their records state, kept
true by measuring them, and the power the low-precision cases add (a mutant only float16's G2 catches).

- G2's check_clip in float16: a gradient below float16's normal range is checked within derived bounds
  (the float32-accumulated norm, η/2 per norm rounded below 2^-14); a norm below about 1.4e-5 is not
  clipped at all (1/(N + 1e-6) overflows float16), which check_clip reports as the "coefficient overflow"
  counterexample.
- G1's exploding gradient: torch's total norm overflows at T = 23 in float16 (largest element still
  finite; from T = 24 the gradient itself is inf) and at T = 97 in float32 and bfloat16.
- G3: torch's Adam with eps = 1e-8 in float16 (why the check leaves float16 out).
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import Phase, settings

from lstm_claims.claims import g2_clipping as G2
from lstm_claims.claims import low_precision as LP
from lstm_claims.claims.cell_under_test import CellUnderTest
from lstm_claims.claims.record import CheckCase
from lstm_claims.claims.registry import all_claims
from lstm_claims.claims.unrolled_cell import parameter_gradient
from lstm_claims.claims.violation import ClaimViolation
from lstm_claims.inprocess import first_violation
from lstm_claims.reference.exploding_construction import fixed_point_example
from lstm_claims.results import ClaimLog
from lstm_claims.runner import run_case
from tests.cells.low_precision_mutants import G2_G3_MUTANTS

REFERENCE = "lstm_claims.reference.reference_cell:ReferenceLSTMCell"


def _params(values, dtype):
    return G2.parameters_with_grads([torch.tensor(values, dtype=torch.float64)], "cpu", dtype)


def _check(claim_id, name):
    (claim,) = all_claims([claim_id])
    return next(c for c in claim.checks if c.name == name)


def _run(claim_id, name, dtype, spec=REFERENCE, examples=3) -> ClaimLog:
    check = _check(claim_id, name)
    log = ClaimLog()
    run_case(CheckCase(claim_id, check, "cpu", dtype), CellUnderTest.load(spec) if check.through_impl else None, log,
             settings_=settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                                phases=[Phase.explicit, Phase.generate]))
    return log


# --- G2: check_clip's float16 range -------------------------------------------------------------------

@pytest.mark.parametrize("g", [2.0 ** -20, 2.0 ** -24, 3 * 2.0 ** -16])
def test_float16_gradient_below_the_normal_range_is_checked_within_derived_bounds(g):
    """Was left out: on such a gradient with max_norm 0.5 the clipped norm's bound came out negative. Its norm
    and c·g are subnormal in float16 (η/2 = 2^-25 absolute), and the norm is far below max_norm (c = 1)."""
    figures = G2.check_clip(_params([g], torch.float16), 0.5, "cpu", torch.float16)
    assert 0 < figures["norm_after_over_max_norm"] <= 1 and figures["worst_error_over_allowed"] <= 1


def test_float16_norm_below_1_4e_5_is_not_clipped():
    """1/(N + 1e-6) = 9.1e4 for N = 1e-5 overflows float16 (65504): the coefficient is min(1, inf) = 1."""
    params = _params([1e-5], torch.float16)
    with pytest.raises(ClaimViolation, match=r"^\[G2\].*overflows float16") as exc:
        G2.check_clip(params, 2.0 ** -20, "cpu", torch.float16)
    assert exc.value.figures["case"] == "coefficient overflow"
    assert exc.value.figures["norm_after_over_max_norm"] > 10  # left at 1e-5, ten times max_norm
    assert float(params[0].grad) == float(torch.tensor(1e-5, dtype=torch.float16))  # untouched by torch


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=str)
def test_the_same_small_gradient_is_clipped_where_the_reciprocal_fits(dtype):
    figures = G2.check_clip(_params([1e-5], dtype), 2.0 ** -20, "cpu", dtype)
    assert figures["norm_after_over_max_norm"] <= 1 and figures["worst_error_over_allowed"] <= 1


def test_float16_clipping_check_refutes_with_its_explicit_example():
    log = _run("G2", "clipping-bounds-finite-gradients", torch.float16, examples=1)
    counter = log.results["G2"].counterexample
    assert counter is not None and counter["case"] == "coefficient overflow", counter


def test_a_wrong_coefficient_fails_in_float16(monkeypatch):
    """Power: a clipped gradient off by 1% (float16's allowance for c·g is a few 2^-11) is a violation."""
    params = _params([3.0, 4.0], torch.float16)
    real = torch.nn.utils.clip_grad_norm_

    def off_by_one_percent(ps, max_norm, *a, **k):
        total = real(ps, max_norm, *a, **k)
        for p in ps:
            p.grad.mul_(1.01)
        return total
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", off_by_one_percent)
    with pytest.raises(ClaimViolation, match=r"^\[G2\] cpu float16"):
        G2.check_clip(params, 1.0, "cpu", torch.float16)


# --- G2: the overflow threshold of G1's exploding gradient, per dtype -----------------------------------

def test_norm_overflow_thresholds():
    assert G2.norm_overflow_threshold(torch.float16) == 65520.0  # 65504 + half an ulp (16)
    assert G2.norm_overflow_threshold(torch.bfloat16) == 2.0 ** 64  # float32 accumulation of the squares
    assert G2.norm_overflow_threshold(torch.float32) == 2.0 ** 64
    assert G2.norm_overflow_threshold(torch.float64) == 2.0 ** 512
    total = torch.linalg.vector_norm(torch.tensor([46336.0, 46336.0], dtype=torch.float16))  # exact 65529.0
    assert math.isinf(float(total))
    total = torch.linalg.vector_norm(torch.tensor([46304.0, 46304.0], dtype=torch.float16))  # exact 65483.7
    assert float(total) <= 65504


@pytest.mark.parametrize("dtype, threshold", [(torch.float16, 23), (torch.bfloat16, 97), (torch.float32, 97)],
                         ids=["float16", "bfloat16", "float32"])
def test_G1_gradient_norm_overflow_threshold_per_dtype(dtype, threshold):
    """Measured on the reference cell (and torch.nn.LSTMCell: the same T): the check records the first T whose
    total norm is inf, and refutes the note there (clip_grad_norm_ zeroes the finite gradient)."""
    log = _run("G2", "clip-G1-gradient-overflowing", dtype, examples=1)
    result = log.results["G2"]
    name = str(dtype)[6:]
    assert result.figures[f"overflow_threshold_T_{name}"] == threshold
    assert result.figures[f"exact_norm_at_threshold_{name}"] >= G2.norm_overflow_threshold(dtype)
    assert result.figures[f"exact_norm_before_threshold_{name}"] < G2.norm_overflow_threshold(dtype)
    assert result.counterexample["case"] == "norm overflow" and result.counterexample["total_norm"] == math.inf
    # What clip_grad_norm_ does there: every nonzero element of the finite gradient becomes 0.
    assert result.figures[f"norm_after_clipping_at_threshold_{name}"] == 0.0
    assert result.figures[f"fraction_zeroed_at_threshold_{name}"] == 1.0
    # float16's window is one step wide: its gradient overflows at the next T (float32/bfloat16: far beyond).
    assert result.figures.get(f"gradient_overflow_T_{name}") == (24.0 if dtype == torch.float16 else None)


def test_float16_window_is_one_step_wide():
    """T = 23: every element finite (largest ~4.4e4); T = 24: the float16 gradient itself holds inf (the reason
    clip-G1-gradient-T64 leaves float16 out)."""
    cut = CellUnderTest.load(REFERENCE)

    def grads(T):
        cell = parameter_gradient(cut, LP.exact_problem(fixed_point_example(T), torch.float16), "cpu", torch.float16)
        return [p.grad for p in cell.parameters()]
    assert all(bool(torch.isfinite(g).all()) for g in grads(23))
    assert not all(bool(torch.isfinite(g).all()) for g in grads(24))


# --- the mutant only float16's G2 catches -------------------------------------------------------------

@pytest.mark.parametrize("mutant", G2_G3_MUTANTS, ids=[m.spec.split(":")[1] for m in G2_G3_MUTANTS])
def test_mutant_fails_naming_claim_and_dtype(mutant):
    for dtype in mutant.dtypes:
        for claim in mutant.must_fail:
            exc = first_violation(mutant.spec, claim, dtypes=(dtype,), max_examples=5)
            assert exc is not None, f"{mutant.name}: no check of {claim} failed in {dtype}"
            assert f"[{claim}]" in str(exc) and str(dtype)[6:] in str(exc), str(exc)


@pytest.mark.parametrize("mutant", G2_G3_MUTANTS, ids=[m.spec.split(":")[1] for m in G2_G3_MUTANTS])
def test_mutant_is_correct_where_its_dtype_is_not(mutant):
    """Correct in float64, float32 and bfloat16 (G2 passes there), and float16's L0 backward (20 examples, its
    cotangents of order 1) does not see it: only the low-precision G2 case does."""
    for claim in mutant.must_fail:
        others = tuple(d for d in (torch.float64, torch.float32, torch.bfloat16) if d not in mutant.dtypes)
        assert first_violation(mutant.spec, claim, dtypes=others, max_examples=5) is None
    assert first_violation(mutant.spec, "L0", dtypes=(torch.float16,), max_examples=20, checks=("backward",)) is None


# --- G3: Adam's first step --------------------------------------------------------------------------

def _adam_step(g, dtype):
    p = torch.nn.Parameter(torch.zeros(len(g), dtype=dtype))
    p.grad = torch.tensor(g, dtype=dtype)
    torch.optim.Adam([p], lr=1e-3, eps=1e-8).step()
    return p.detach().double()


def test_float16_adam_with_default_eps_is_nan_or_inf():
    """Why G3's Adam check leaves float16 out: eps = 1e-8 rounds to 0 in float16, (1 - β2) g² underflows for
    |g| < 5.5e-3, so the denominator is 0: 0/0 at a zero gradient, ±inf at a small one."""
    assert float(torch.tensor(1e-8, dtype=torch.float16)) == 0.0
    step = _adam_step([0.0, 1e-3, 1.0], torch.float16)
    assert math.isnan(step[0]) and math.isinf(step[1]) and abs(float(step[2]) + 1e-3) < 1e-5
    step = _adam_step([0.0, 1e-3, 1.0], torch.bfloat16)  # bfloat16 holds eps and g²: finite, -lr sign(g)
    assert bool(torch.isfinite(step).all()) and float(step[0]) == 0.0


def test_G3_adam_check_runs_in_bfloat16_with_its_updates_resolved():
    log = _run("G3", "adam-first-step-invariant-sgd-not", torch.bfloat16, spec="torch.nn:LSTMCell", examples=5)
    figures = log.results["G3"].figures
    assert log.results["G3"].examples == 5
    # Most updates are larger than their allowance (the rest sit on parameters with |p| > 0.26, where the
    # rounding of p + Δ in bfloat16 exceeds lr): the check is not vacuous there.
    assert figures["adam_updates_resolved_fraction_bfloat16"] >= 0.5
