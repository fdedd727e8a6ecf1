"""reference.linear_scan: the blocked associative scan computes the loop's c_t (CLAIMS.md G4).

Tolerance (used by every scan-vs-loop check below). Write the exact answer as a sum of terms,
c_t = Σ_{s=0..t} (Π_{r=s+1..t} a_r) b_s with b_0 := c_0, and let S_t be the same sum of
absolute values (the recurrence run on |a|, |b|, |c0|). In floating point every term
carries a product of (1 + δ) factors, |δ| <= u (Higham, ch. 3):
  - the loop: one multiplication and one addition per step: at most 2t factors;
  - the scan: each a_r enters a term's coefficient through one multiplication (inside a
    block product or a down-sweep step), and each combination step on the term's path
    (at most one per time step) adds one multiplication and one addition: at most 3t.
So |loop_t - c_t| <= γ_{2t} S_t and |scan_t - c_t| <= γ_{3t} S_t, hence
|scan_t - loop_t| <= γ_{5t} S_t (γ_a + γ_b <= γ_{a+b}). S_t is itself computed in float64,
off by a factor (1 + γ_{2t}) at most. Underflow breaks the relative model: each rounding
that lands below the smallest normal number adds an absolute error of at most that number
(with or without flush-to-zero), carried forward by at most max(1, max|a|)^t, and c_t is
reached through fewer than 5t roundings.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from lstm_claims.claims.tolerances import U64, smallest_normal, unit_roundoff
from lstm_claims.reference.linear_scan import default_block, linear_recurrence_loop, linear_recurrence_scan

DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
DEVICES = [pytest.param("cpu"),
           pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                         reason="CUDA is not available on this machine"))]


def gamma(k: torch.Tensor | float, u: float):
    return k * u / (1 - k * u)


def scan_vs_loop_bound(a: torch.Tensor, b: torch.Tensor, c0: torch.Tensor) -> torch.Tensor:
    """Elementwise bound on |scan_t - loop_t| (module docstring), shape (T, ...)."""
    a64, b64, c64 = (t.detach().to("cpu", torch.float64) for t in (a, b, c0))
    S = linear_recurrence_loop(a64.abs(), b64.abs(), c64.abs())
    T = a.shape[0]
    t = torch.arange(1, T + 1, dtype=torch.float64).reshape((T,) + (1,) * (a.dim() - 1))
    u = unit_roundoff(a.dtype)
    rel = gamma(5 * t, u) * S * (1 + gamma(2 * t, U64))
    growth = max(1.0, float(a64.abs().max())) if a.numel() else 1.0
    underflow = 5 * t * smallest_normal(a.dtype) * growth ** t
    return rel + underflow


def assert_scan_matches_loop(a, b, c0, **scan_kwargs):
    __tracebackhide__ = True
    scan = linear_recurrence_scan(a, b, c0, **scan_kwargs)
    loop = linear_recurrence_loop(a, b, c0)
    assert scan.shape == loop.shape == a.shape
    assert torch.isfinite(scan).all(), "the scan produced NaN or inf on finite inputs"
    diff = (scan.to("cpu", torch.float64) - loop.to("cpu", torch.float64)).abs()
    bound = scan_vs_loop_bound(a, b, c0)
    excess = diff - bound
    worst = int(excess.argmax()) if excess.numel() else 0
    assert (excess <= 0).all(), (
        f"scan != loop beyond the rounding bound γ_5t·S_t: |diff| = {diff.flatten()[worst]:.3e} > "
        f"{bound.flatten()[worst]:.3e} at flat index {worst} (T={a.shape[0]}, dtype={a.dtype}, {scan_kwargs})")


# a_t like a forget gate in [-1, 1] (sign flips allowed: the recurrence is general), with exact
# zeros and tiny and subnormal values so that products underflow; b_t and c_0 of any
# moderate magnitude.
def coefficient_elements(width: int):
    tiny = float(np.finfo(np.float32 if width == 32 else np.float64).tiny)
    return st.one_of(
        st.floats(-1, 1, width=width),
        st.sampled_from([0.0, -0.0, tiny, 1e-30, -1e-30, 1.0, 1 - 2 ** -20]),
        st.floats(0, tiny * 4, width=width, allow_subnormal=True),
    )


@st.composite
def recurrences(draw, *, dtype: torch.dtype, max_T: int = 300, coefficients=None):
    """(a, b, c0) with a, b of shape (T, ...) and c0 of shape (...), exact values of `dtype`."""
    np_dtype, width = DTYPES[dtype], 32 if dtype == torch.float32 else 64
    T = draw(st.integers(1, max_T))
    trailing = draw(array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=5))
    coeffs = coefficients if coefficients is not None else coefficient_elements(width)
    a = draw(arrays(np_dtype, (T,) + trailing, elements=coeffs))
    values = st.floats(-1e3, 1e3, width=width)
    b = draw(arrays(np_dtype, (T,) + trailing, elements=values))
    c0 = draw(arrays(np_dtype, trailing, elements=values))
    return tuple(torch.from_numpy(np.array(x, copy=True)) for x in (a, b, c0))


@pytest.mark.parametrize("float_dtype", [torch.float32, torch.float64], ids=str)
@settings(deadline=None)
@given(data=st.data(), block=st.sampled_from([None, 2, 3, 5, 8, 32]))
def test_scan_matches_loop(float_dtype, data, block):
    a, b, c0 = data.draw(recurrences(dtype=float_dtype))
    assert_scan_matches_loop(a, b, c0, block=block)


# |a| in [1/2, 2] and T <= 64: an expanding recurrence (|a| > 1 allowed) whose products stay
# within [2^-64, 2^64], so the relative rounding model holds without underflow or overflow.
@pytest.mark.parametrize("float_dtype", [torch.float32, torch.float64], ids=str)
@settings(deadline=None)
@given(data=st.data(), block=st.sampled_from([None, 2, 3, 4]))
def test_scan_matches_loop_expanding(float_dtype, data, block):
    width = 32 if float_dtype == torch.float32 else 64
    coeffs = st.one_of(st.floats(0.5, 2, width=width), st.floats(-2, -0.5, width=width))
    a, b, c0 = data.draw(recurrences(dtype=float_dtype, max_T=64, coefficients=coeffs))
    assert_scan_matches_loop(a, b, c0, block=block)


def forget_like(T: int, width: int, dtype, *, seed: int, zeros: float = 0.01, tiny: float = 0.01):
    """a_t = σ(z) with z ~ N(2, 2) (typical forget gates), some exactly 0 and some 1e-30."""
    g = torch.Generator().manual_seed(seed)
    a = torch.sigmoid(2 + 2 * torch.randn(T, width, generator=g, dtype=torch.float64))
    a[torch.rand(T, width, generator=g) < zeros] = 0.0
    a[torch.rand(T, width, generator=g) < tiny] = 1e-30
    b = torch.randn(T, width, generator=g, dtype=torch.float64)
    c0 = torch.randn(width, generator=g, dtype=torch.float64)
    return a.to(dtype), b.to(dtype), c0.to(dtype)


def naive_division_scan(a, b, c0):
    """The log-depth scan that fails: c_t = P_t (c_0 + Σ_{s<=t} b_s / P_s), P_t = Π_{r<=t} a_r."""
    P = torch.cumprod(a, dim=0)
    return P * (c0 + torch.cumsum(b / P, dim=0))


@pytest.mark.parametrize("float_dtype", [torch.float32, torch.float64], ids=str)
def test_underflowing_coefficients_give_no_nan(float_dtype):
    a, b, c0 = forget_like(2048, 16, float_dtype, seed=0)
    # The inputs are in the failure regime: the division-based scan returns NaN/inf here.
    assert not torch.isfinite(naive_division_scan(a, b, c0)).all()
    assert_scan_matches_loop(a, b, c0)  # finite, and the loop's c_t within the bound


def test_all_zero_coefficients_reset_the_state():
    # a_t = 0 forgets everything: c_t = b_t exactly (0·c + b rounds to b).
    b = torch.randn(100, 7, dtype=torch.float64)
    c = linear_recurrence_scan(torch.zeros_like(b), b, torch.full((7,), 1e300, dtype=torch.float64))
    assert torch.equal(c, b)


# A goal of the brief (not a derived bound): relative error, in the 2-norm, against the
# float64 loop at the benchmark's size, at most 1e-6 in float32 and 1e-13 in float64.
@pytest.mark.parametrize("float_dtype, goal", [(torch.float32, 1e-6), (torch.float64, 1e-13)], ids=str)
def test_accuracy_goal_at_benchmark_size(float_dtype, goal):
    a, b, c0 = forget_like(16384, 64, float_dtype, seed=1)
    reference = linear_recurrence_loop(*(t.double() for t in (a, b, c0)))
    err = float((linear_recurrence_scan(a, b, c0).double() - reference).norm() / reference.norm())
    assert err <= goal, f"relative error {err:.2e} > goal {goal:.0e} ({float_dtype})"


@pytest.mark.parametrize("device_name", DEVICES)
@pytest.mark.parametrize("float_dtype", [torch.float32, torch.float64], ids=str)
def test_scan_on_device(device_name, float_dtype):
    a, b, c0 = (t.to(device_name) for t in forget_like(1000, 33, float_dtype, seed=2))
    assert_scan_matches_loop(a, b, c0)
    assert linear_recurrence_scan(a, b, c0).device.type == device_name


def test_shapes_and_trivial_lengths():
    for shape in [(1,), (1, 3), (0, 3), (5,), (7, 2, 3)]:
        a = torch.rand(shape, dtype=torch.float64)
        b = torch.randn(shape, dtype=torch.float64)
        c0 = torch.randn(shape[1:], dtype=torch.float64)
        for f in (linear_recurrence_loop, linear_recurrence_scan):
            assert f(a, b, c0).shape == a.shape
    a, b = torch.rand(1, 4, dtype=torch.float64), torch.randn(1, 4, dtype=torch.float64)
    c0 = torch.randn(4, dtype=torch.float64)
    assert torch.equal(linear_recurrence_scan(a, b, c0), torch.addcmul(b[0], a[0], c0).unsqueeze(0))


def test_default_block():
    for T in (1, 10, 1000, 10 ** 6):
        for width in (1, 64, 4096):
            assert default_block(T, width) >= 2


def test_loop_is_differentiable():
    a, b, c0 = (t.requires_grad_() for t in forget_like(20, 3, torch.float64, seed=3))
    linear_recurrence_loop(a, b, c0).sum().backward()
    # ∂(Σ_t c_t)/∂c_0 = Σ_t Π_{r<=t} a_r, per coordinate
    expected = torch.cumprod(a.detach(), 0).sum(0)
    torch.testing.assert_close(c0.grad, expected, rtol=gamma(3 * 20, U64), atol=0)


def _good():
    return torch.rand(6, 3), torch.randn(6, 3), torch.randn(3)


def _with(i, value):
    args = list(_good())
    args[i] = value
    return args


BAD_INPUTS = {
    "b shape": (_with(1, torch.randn(6, 4)), "b must have the shape of a"),
    "b length": (_with(1, torch.randn(5, 3)), "b must have the shape of a"),
    "c0 shape": (_with(2, torch.randn(4)), "c0 must have shape"),
    "c0 with time axis": (_with(2, torch.randn(1, 3)), "c0 must have shape"),
    "0-d a": ([torch.tensor(0.5), torch.tensor(1.0), torch.tensor(0.0)], "shape \\(T, ...\\)"),
    "dtype mismatch": (_with(1, torch.randn(6, 3, dtype=torch.float64)), "share one dtype"),
    "integer dtype": (_with(0, torch.ones(6, 3, dtype=torch.int64)), "floating point"),
    "not a tensor": (_with(2, [0.0, 0.0, 0.0]), "must be a torch.Tensor"),
    "NaN in a": (_with(0, torch.full((6, 3), float("nan"))), "a contains NaN or inf"),
    "inf in b": (_with(1, torch.tensor([[float("inf")] * 3] * 6)), "b contains NaN or inf"),
    "NaN in c0": (_with(2, torch.tensor([0.0, float("nan"), 0.0])), "c0 contains NaN or inf"),
}


@pytest.mark.parametrize("fn", [linear_recurrence_loop, linear_recurrence_scan], ids=lambda f: f.__name__)
@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=str)
def test_bad_inputs_raise_value_error(fn, case):
    args, message = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        fn(*args)


def test_finite_check_is_not_fooled_by_an_overflowing_sum():
    # Σ a overflows to inf although every entry is finite: the exact check must take over.
    big = torch.full((4, 2), torch.finfo(torch.float32).max / 2)
    out = linear_recurrence_scan(torch.zeros(4, 2), big, torch.zeros(2))
    assert torch.equal(out, big)


@pytest.mark.parametrize("block", [0, 1, -3, 2.5, True, "4"], ids=repr)
def test_bad_block_raises(block):
    with pytest.raises(ValueError, match="block must be an int >= 2"):
        linear_recurrence_scan(*_good(), block=block)


def test_scan_refuses_grad():
    a, b, c0 = _good()
    with pytest.raises(ValueError, match="forward-only"):
        linear_recurrence_scan(a.requires_grad_(), b, c0)


def test_bound_is_not_vacuous():
    # The bound must be tight enough to catch a real mistake: a scan that dropped one step's
    # b_t (|b_t| ~ 1) would be outside it.
    a, b, c0 = forget_like(1000, 8, torch.float32, seed=4)
    dropped = linear_recurrence_loop(a, b.clone().index_fill_(0, torch.tensor([500]), 0.0), c0)
    gap = (dropped.double() - linear_recurrence_loop(a, b, c0).double()).abs()
    assert (gap > scan_vs_loop_bound(a, b, c0)).any()
