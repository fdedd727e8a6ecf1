"""The derived tolerances are sound (correct cells pass: tests/meta/test_cell_catalogue.py) and
not vacuous: on moderate problems they would catch a relative error of 1e-4 in float32 and
1e-11 in float64, far below what any mutant in the catalogue produces."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_claims.claims.tolerances import (
    U64, forward_tolerance, gamma, largest_finite, smallest_normal, smallest_subnormal, unit_roundoff, vjp_tolerance,
)
from lstm_claims.reference.lstm_step import lstm_step, lstm_step_vjp
from lstm_claims.strategies import step_problems

MODERATE = step_problems(weight_exps=(-3, 0), cell_exps=(-2, 2))
# Chosen, not derived: the sensitivity the kit promises on moderate problems, i.e. the relative
# error (to 1 + |value|) that a wrong cell must exceed to be caught for sure. It is a promise
# about the derived bounds, so it is set above them, not tuned to them: over 300 draws of
# MODERATE the forward bound reached at most 325 u in float32 (1e-4 is 1678 u) and 650 u in
# float64 (1e-11 is 90072 u, the float64 reference's own rounding counted twice there), and
# every mutant of tests/cells/ errs by far more.
CATCHABLE_RELATIVE_ERROR = {torch.float32: 1e-4, torch.float64: 1e-11}
# Chosen: a VJP sums over 4n gate rows and the batch, so its bound is about 7 times the forward
# one (at most 2335 u in float32 and 4670 u in float64 over the same draws); the gradients are
# promised a 10 times coarser sensitivity than the values.
VJP_SENSITIVITY_FACTOR = 10


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(p=MODERATE)
def test_tolerances_are_tight_enough_to_catch_small_errors(dtype, p):
    h, c = lstm_step(p.params, p.x, p.h, p.c)
    tol = forward_tolerance(p.params, p.x, p.h, p.c, dtype)
    limit = CATCHABLE_RELATIVE_ERROR[dtype]
    assert (tol["c_next"] <= limit * (1 + c.abs())).all()
    assert (tol["h_next"] <= limit * (1 + h.abs())).all()
    grads = lstm_step_vjp(p.params, p.x, p.h, p.c, p.v_h, p.v_c).as_dict()
    vtol = vjp_tolerance(p.params, p.x, p.h, p.c, p.v_h, p.v_c, dtype)
    for name, g in grads.items():
        scale = 1 + g.abs().max()
        assert (vtol[name] <= limit * VJP_SENSITIVITY_FACTOR * scale).all(), name


def test_gamma_and_roundoff():
    assert unit_roundoff(torch.float32) == 2.0 ** -24 and unit_roundoff(torch.float64) == 2.0 ** -53
    assert U64 == 2.0 ** -53
    assert gamma(10, torch.float32) == 10 * 2.0 ** -24 / (1 - 10 * 2.0 ** -24)
    for dtype in (torch.int32, torch.int64, torch.bool, torch.complex64):
        with pytest.raises(TypeError, match=f"no tolerance is derived for dtype {dtype}: .*floating-point"):
            unit_roundoff(dtype)
        with pytest.raises(TypeError, match="no tolerance is derived"):
            smallest_subnormal(dtype)
    with pytest.raises(TypeError, match="no tolerance is derived"):
        unit_roundoff("float32")


# (u, smallest subnormal η, smallest normal, largest finite) of each IEEE-style binary format with
# p significand bits and exponents down to e_min: u = 2^-p, η = 2^(e_min + 1 - p), 2^e_min, (2 - 2^(1-p)) 2^e_max.
FORMATS = {
    torch.float64: (2.0 ** -53, 2.0 ** -1074, 2.0 ** -1022, (2 - 2.0 ** -52) * 2.0 ** 1023),
    torch.float32: (2.0 ** -24, 2.0 ** -149, 2.0 ** -126, (2 - 2.0 ** -23) * 2.0 ** 127),
    torch.bfloat16: (2.0 ** -8, 2.0 ** -133, 2.0 ** -126, (2 - 2.0 ** -7) * 2.0 ** 127),
    torch.float16: (2.0 ** -11, 2.0 ** -24, 2.0 ** -14, 65504.0),
}


@pytest.mark.parametrize("dtype", list(FORMATS), ids=str)
def test_floating_point_parameters_come_from_finfo(dtype):
    u, eta, normal, big = FORMATS[dtype]
    assert unit_roundoff(dtype) == u
    assert smallest_subnormal(dtype) == eta
    assert smallest_normal(dtype) == normal
    assert largest_finite(dtype) == big
    # And they are what the dtype does: η is representable and its half rounds to 0 (ties to even),
    # 1 + u rounds to 1 while 1 + 2u is the next number, the largest finite number doubled overflows.
    one = torch.ones((), dtype=dtype)
    assert torch.tensor(eta, dtype=dtype).item() == eta and torch.tensor(eta / 2, dtype=dtype).item() == 0
    assert (one + u).item() == 1 and (one + 2 * u).item() == 1 + 2 * u
    assert torch.isinf(torch.tensor(big, dtype=dtype) * 2)


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
