"""Hypothesis strategies for gradients to clip (CLAIMS.md G2) and rescalings to apply (G3).

A gradient set is a list of 1 .. 4 tensors (the .grad of as many parameters) of 1 .. 12
elements each. Each tensor has its own scale 2^e, so sets are anisotropic, and the
exponent range depends on the dtype and on the regime asked for:

- "representable": every |g| <= 2^56 (float32) or 2^504 (float64), so that Σ g² over
  48 elements stays below the largest float: torch's norm (a plain sum of squares) is
  finite. Down to 2^-150 (float32) and 2^-1080 (float64): tiny gradients whose squares
  underflow, and values that are subnormal or round to 0 in the dtype.
- "overflowing": finite gradients with at least one element of magnitude >= 2^65
  (float32) or 2^513 (float64): the square of that element overflows although the
  gradient and often its norm are finite in the dtype. (Exploding gradients reach this:
  G1's example passes 2^64 in float32 after about 100 steps.)
- "non-finite": at least one element is +inf, -inf or NaN.

Values are float64 tensors; the check rounds them to the dtype under test and takes
the rounded values as the gradient (a value below the dtype's range is honestly 0 there).

`exact_in` (keyword option of each strategy, default float32; strategies/exact.py): the
precision values are drawn with. For `max_norms` and `rescalings` every value is exactly
representable in exact_in and finite there (float16's range clamps their exponents, see
each). For `gradient_sets` it sets the *significand*: every value is m 2^e with m exact in
exact_in (24, 8 or 11 significant bits), so it is exact in exact_in wherever exact_in's
range holds it; the exponent range stays the one the regime defines for `dtype`, which on
purpose reaches below that dtype's range (and, for "overflowing", to values whose square
overflows). With the default the draws are those made before the option existed.
"""
from __future__ import annotations

import math

import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lstm_claims.strategies.exact import (DEFAULT_EXACT_IN, check_exact_in, exact_array, exact_floats, max_finite_exp,
                                          min_subnormal_exp, round_scalar)

REGIMES = ("representable", "overflowing", "non-finite")

# Per dtype: (smallest scale exponent, largest scale exponent with a finite sum of squares
# over up to 48 elements: 2 e + log2(48) < emax + 1, with 2 bits to spare, and the exponent
# from which a single square overflows: e >= (emax + 1) / 2).
# bfloat16 has float32's exponent range (smallest subnormal 2^-133); float16's largest finite value
# is 65504 < 2^16 (sums of squares of up to 48 elements stay finite for e <= 4: 2 e + log2(48) < 16 - 2;
# a single square overflows from m 2^9, m >= 1/2: 2^16 > 65504), its smallest subnormal 2^-24.
_RANGES = {torch.float32: (-150, 56, 65, 127), torch.float64: (-1080, 504, 513, 1023),
           torch.bfloat16: (-134, 56, 65, 127), torch.float16: (-25, 4, 9, 15)}


def _dtype_ranges(dtype):
    try:
        return _RANGES[dtype]
    except KeyError:
        raise InvalidArgument(f"dtype must be one of {', '.join(map(str, _RANGES))}, got {dtype!r}") from None


@st.composite
def _gradient_sets(draw, dtype, regime, max_tensors, max_numel, exact_in):
    lo, hi, big_lo, big_hi = _dtype_ranges(dtype)
    k = draw(st.integers(1, max_tensors), label="tensors")
    grads = []
    for j in range(k):
        numel = draw(st.integers(1, max_numel), label=f"numel {j}")
        e = draw(st.integers(lo, hi), label=f"scale exponent {j}")
        base = exact_array(draw, (numel,), 0, exact_in=exact_in)
        # m 2^e with |m| <= 1 exact in exact_in (no subnormals): exact in float64 (|e| <= 1080 and
        # 24 bits stay in range); not rounded to exact_in's range on purpose (module docstring).
        grads.append(base * 2.0 ** e)
    if regime != "representable":
        j = draw(st.integers(0, k - 1), label="tensor with the special element")
        idx = draw(st.integers(0, grads[j].numel() - 1), label="its index")
        if regime == "overflowing":
            e = draw(st.integers(big_lo, big_hi), label="large exponent")
            m = draw(exact_floats(0.5, 1.0, exact_in=exact_in, exclude_max=True, allow_subnormal=None),
                     label="large mantissa")
            sign = draw(st.sampled_from([1.0, -1.0]), label="sign")
            grads[j][idx] = sign * m * 2.0 ** e
        else:
            grads[j][idx] = draw(st.sampled_from([math.inf, -math.inf, math.nan]), label="non-finite value")
    return grads


def gradient_sets(*, dtype: torch.dtype, regime: str = "representable", max_tensors: int = 4, max_numel: int = 12,
                  exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """Lists of float64 gradient tensors for the parameters of one model (module docstring).

    exact_in: the significands of all values are exact in this dtype (float64, float32,
    bfloat16, float16), so a value inside exact_in's range is exact there; the magnitudes are
    `dtype`'s regime (module docstring), not clamped to exact_in. Default float32, as always.
    """
    check_exact_in(exact_in)
    _dtype_ranges(dtype)
    if regime not in REGIMES:
        raise InvalidArgument(f"regime must be one of {REGIMES}, got {regime!r}")
    if not isinstance(max_tensors, int) or not 1 <= max_tensors <= 4:
        raise InvalidArgument(f"max_tensors must be an int in 1..4, got {max_tensors!r}")
    if not isinstance(max_numel, int) or not 1 <= max_numel <= 12:
        # The representable range assumes at most 48 elements in all (see _RANGES).
        raise InvalidArgument(f"max_numel must be an int in 1..12, got {max_numel!r}")
    return _gradient_sets(dtype, regime, max_tensors, max_numel, exact_in)


def max_norms(*, min_exp: int = -70, max_exp: int = 70, exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """Positive clipping thresholds m 2^e, m in [1/2, 1) exact in exact_in: 2^-71 .. 2^70.

    The range straddles 1e-6 (torch adds 1e-6 to the norm before dividing) and, in float32,
    reaches thresholds far above any representable gradient norm.

    exact_in (default float32, the draws as always): every threshold is exactly representable
    in this dtype, positive and finite there (rounded to it: exact in the dtype's subnormal
    range too). float16 cannot hold 2^-71 .. 2^70: there e is clamped to -23 .. 15 (2^-24 ..
    32752, still straddling 1e-6 ≈ 2^-19.9).
    """
    check_exact_in(exact_in)
    if not (isinstance(min_exp, int) and isinstance(max_exp, int) and -126 <= min_exp <= max_exp <= 127):
        raise InvalidArgument(f"need ints -126 <= min_exp <= max_exp <= 127, got {min_exp!r}, {max_exp!r}")
    # Clamp to the dtype: m 2^e >= 2^(e-1) must round to a positive number (e >= smallest
    # subnormal exponent + 1) and m 2^e < 2^e stay finite.
    lo, hi = max(min_exp, min_subnormal_exp(exact_in) + 1), min(max_exp, max_finite_exp(exact_in))
    if lo > hi:
        raise InvalidArgument(f"min_exp, max_exp = {min_exp}, {max_exp}: no threshold of that range fits "
                              f"exact_in={exact_in} (exponents {min_subnormal_exp(exact_in) + 1} .. "
                              f"{max_finite_exp(exact_in)})")
    return st.builds(lambda m, e: round_scalar(m * 2.0 ** e, exact_in),
                     exact_floats(0.5, 1.0, exact_in=exact_in, exclude_max=True, allow_subnormal=None),
                     st.integers(lo, hi))


def rescalings(numel: int, *, max_exp: int = 20, exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """Positive per-coordinate factors d = m 2^e, m in {1, 1.25, 1.5, 1.75}, |e| <= max_exp (G3).

    Returned as a float64 tensor of `numel` elements, exact in `exact_in` (default float32, the
    draws as always; m has 3 significant bits, so only the range matters). float16 cannot hold
    2^±20: there |e| is clamped to 7, so that d, 1/d and d² stay finite and normal in float16
    (d <= 224, d² <= 50176 < 65504, d >= 2^-7); G3 bounds the products |d g| itself.
    """
    check_exact_in(exact_in)
    if not isinstance(numel, int) or numel < 1:
        raise InvalidArgument(f"numel must be a positive int, got {numel!r}")
    if not isinstance(max_exp, int) or not 0 <= max_exp <= 40:
        raise InvalidArgument(f"max_exp must be an int in 0..40, got {max_exp!r}")
    # d and d² finite, d normal: 2 (e + 1) <= largest finite exponent, e >= -(that / 2)
    # (a no-op for float32, bfloat16 and float64 (|e| <= 40 <= 63); float16: |e| <= 7).
    max_exp = min(max_exp, (max_finite_exp(exact_in) + 1) // 2 - 1)
    mant = st.sampled_from([1.0, 1.25, 1.5, 1.75])
    exps = st.integers(-max_exp, max_exp)
    return st.lists(st.builds(lambda m, e: m * 2.0 ** e, mant, exps), min_size=numel, max_size=numel).map(
        lambda v: torch.tensor(v, dtype=torch.float64))
