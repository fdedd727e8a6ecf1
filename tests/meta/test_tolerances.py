"""The derived tolerances are sound (correct cells pass: tests/meta/test_cell_catalogue.py) and
not vacuous: on moderate problems they would catch a relative error of 1e-4 in float32 and
1e-11 in float64, far below what any mutant in the catalogue produces."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_claims.claims.tolerances import forward_tolerance, gamma, unit_roundoff, vjp_tolerance
from lstm_claims.reference.lstm_step import lstm_step, lstm_step_vjp
from lstm_claims.strategies import step_problems

MODERATE = step_problems(weight_exps=(-3, 0), cell_exps=(-2, 2))
# A few hundred u for float32 (K <= 14 terms, a few activations), 1e-11 ≈ 2^42 u... for float64 the
# same count of u is ~1e-13; both limits leave a factor of >= 10 above the derived bound's typical size.
LIMIT = {torch.float32: 1e-4, torch.float64: 1e-11}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(p=MODERATE)
def test_tolerances_are_tight_enough_to_catch_small_errors(dtype, p):
    h, c = lstm_step(p.params, p.x, p.h, p.c)
    tol = forward_tolerance(p.params, p.x, p.h, p.c, dtype)
    assert (tol["c_next"] <= LIMIT[dtype] * (1 + c.abs())).all()
    assert (tol["h_next"] <= LIMIT[dtype] * (1 + h.abs())).all()
    grads = lstm_step_vjp(p.params, p.x, p.h, p.c, p.v_h, p.v_c).as_dict()
    vtol = vjp_tolerance(p.params, p.x, p.h, p.c, p.v_h, p.v_c, dtype)
    for name, g in grads.items():
        scale = 1 + g.abs().max()
        assert (vtol[name] <= LIMIT[dtype] * 10 * scale).all(), name


def test_gamma_and_roundoff():
    assert unit_roundoff(torch.float32) == 2.0 ** -24 and unit_roundoff(torch.float64) == 2.0 ** -53
    assert gamma(10, torch.float32) == pytest.approx(10 * 2.0 ** -24, rel=1e-6)
    with pytest.raises(TypeError, match="no tolerance is derived for dtype torch.float16"):
        unit_roundoff(torch.float16)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(1e-7, 1.0), min_size=1, max_size=40))  # products >= 1e-280: no underflow
def test_exp_of_sum_error_bounds_a_product_taken_in_log_space(xs):
    """R2's Π ε_l is exp(Σ log ε_l) in float64; exp_of_sum_error bounds its relative error against
    the exact product (found by the thorough profile: 21 factors of ~1e-4, exponent -190, were
    off by more than the γ_(2L+2) once assumed)."""
    from fractions import Fraction

    from lstm_claims.claims.tolerances import exp_of_sum_error
    logs = torch.log(torch.tensor(xs, dtype=torch.float64))
    computed = math.exp(logs.sum().item())
    exact = math.prod((Fraction(x) for x in xs), start=Fraction(1))
    assert abs(Fraction(computed) - exact) <= Fraction(exp_of_sum_error(logs)) * exact
