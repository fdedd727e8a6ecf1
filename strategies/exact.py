"""Values exact in the narrowest dtype under test: the one place strategies make them.

Every strategy in this folder stores its values in float64 but draws them so that they are
*exactly representable* in a narrower dtype, `exact_in` (keyword-only option of every public
strategy, default torch.float32). A cell run in that dtype, or in any wider one, then sees
the same inputs as the float64 reference: no rounding happens when the values are moved
to the dtype under test, and a tolerance only has to cover the arithmetic (see
claims/tolerances.py). Pass the narrowest dtype the check runs in:

    dtype      significant bits  largest finite  smallest normal  smallest subnormal
    float64    53                ~1.8e308        2^-1022          2^-1074
    float32    24                ~3.4e38         2^-126           2^-149
    bfloat16   8                 ~3.4e38         2^-126           2^-133
    float16    11                65504           2^-14            2^-24

A value exact in bfloat16 or float16 is exact in float32 and float64 too, so the float32
and float64 checks of a problem drawn with exact_in=torch.bfloat16 see the bfloat16 check's
inputs.

Helpers:
- `check_exact_in(exact_in)`: validate the option early (InvalidArgument naming it).
- `round_to(t, dtype)`: the float64 tensor holding t rounded (to nearest) to dtype.
- `exact_floats(lo, hi, *, exact_in)`: a strategy of Python floats in [lo, hi] exact in exact_in.
- `exact_array(draw, shape, exp, *, exact_in)`: a float64 tensor of such values in
  [lo, hi] times 2^exp, rounded to exact_in (optionally with distinct elements).
- `max_finite_exp(exact_in)` etc.: the range figures strategies clamp their exponents to.
- `exact_for(dtype)`, `per_dtype(make)`: a Check.strategy drawing values exact in the dtype
  each case runs in (float32-exact for float64 and float32, as always; bfloat16- and
  float16-exact for those), so a low-precision case sees no rounding of its inputs.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

# The dtypes values can be made exact in (the floating dtypes the suite runs cells in).
EXACT_DTYPES = (torch.float64, torch.float32, torch.bfloat16, torch.float16)
DEFAULT_EXACT_IN = torch.float32

# Hypothesis float widths (bfloat16 has none: its values are float32 draws cut to 8 bits).
_WIDTH = {torch.float64: 64, torch.float32: 32, torch.float16: 16}


def check_exact_in(exact_in, name: str = "exact_in") -> torch.dtype:
    """exact_in itself, or an InvalidArgument naming the option (a non-floating or unsupported dtype)."""
    if not isinstance(exact_in, torch.dtype):
        raise InvalidArgument(f"{name} must be a torch floating dtype (one of {_names()}), got {exact_in!r}")
    if not exact_in.is_floating_point or exact_in not in EXACT_DTYPES:
        raise InvalidArgument(f"{name} must be a floating dtype, one of {_names()}, got {exact_in!r}"
                              + ("" if exact_in.is_floating_point else " (not a floating dtype)"))
    return exact_in


def _names() -> str:
    return ", ".join(str(d) for d in EXACT_DTYPES)


def significant_bits(dtype: torch.dtype) -> int:
    """The precision p of dtype: 53, 24, 8 or 11 (unit roundoff 2^-p)."""
    return {torch.float64: 53, torch.float32: 24, torch.bfloat16: 8, torch.float16: 11}[check_exact_in(dtype)]


def max_finite_exp(dtype: torch.dtype) -> int:
    """The largest e with 2^e finite in dtype (so every |v| < 2^(e+1) with p bits is finite): 1023, 127, 127, 15."""
    return math.frexp(torch.finfo(check_exact_in(dtype)).max)[1] - 1


def min_normal_exp(dtype: torch.dtype) -> int:
    """The e of the smallest normal number 2^e of dtype: -1022, -126, -126, -14."""
    return math.frexp(torch.finfo(check_exact_in(dtype)).tiny)[1] - 1


def min_subnormal_exp(dtype: torch.dtype) -> int:
    """The e of the smallest positive (subnormal) number 2^e of dtype: -1074, -149, -133, -24."""
    return min_normal_exp(dtype) - (significant_bits(dtype) - 1)


def round_to(t, dtype: torch.dtype) -> torch.Tensor:
    """The float64 tensor holding exactly the rounding (to nearest, ties to even) of t to dtype.

    t: a tensor or a numpy array (or anything torch.as_tensor takes). Values beyond dtype's
    range become ±inf, below it subnormal or 0: strategies keep their magnitudes in range.
    """
    check_exact_in(dtype)
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(np.asarray(t, dtype=np.float64))
    t = torch.as_tensor(t, dtype=torch.float64)
    return t.to(dtype).to(torch.float64)


def round_scalar(v: float, dtype: torch.dtype) -> float:
    """A Python float rounded (to nearest) to dtype."""
    return float(torch.tensor(v, dtype=torch.float64).to(dtype).to(torch.float64))


def _truncate_to_bfloat16(v: float) -> float:
    # A float32 value cut to its top 16 bits: bfloat16-exact, rounded toward 0, so a draw
    # within [lo, hi] (bounds bfloat16-exact) stays within them, exclude_max included.
    bits = np.array([v], dtype=np.float32).view(np.uint32) >> np.uint32(16) << np.uint32(16)
    return float(bits.view(np.float32)[0])


def exact_floats(lo: float, hi: float, *, exact_in: torch.dtype = DEFAULT_EXACT_IN, exclude_max: bool = False,
                 allow_subnormal: bool | None = False):
    """Python floats in [lo, hi] (or [lo, hi) with exclude_max) exactly representable in exact_in.

    lo and hi must themselves be exact in exact_in (they are ±1, 0, 1/2 or 2^-8 here). Without
    subnormals by default, so that scaling the values by 2^-k stays exact (as far as the
    dtype's normal range allows). float32 gives today's `st.floats(..., width=32)`, call for call.
    """
    check_exact_in(exact_in)
    kwargs = {"exclude_max": exclude_max} if exclude_max else {}
    if allow_subnormal is not None:
        kwargs["allow_subnormal"] = allow_subnormal
    if exact_in == torch.bfloat16:
        return st.floats(lo, hi, width=32, **kwargs).map(_truncate_to_bfloat16)
    return st.floats(lo, hi, width=_WIDTH[exact_in], **kwargs)


# How many elements of an array Hypothesis draws one by one (a choice): each costs about 0.2 ms
# to draw, and an array drawn element by element cost 3-5 ms (measured, hypothesis 6.155): the
# step problems' ten arrays took two thirds of the one-step claims' time (L1, L3-L5, profiled). The rest of an array
# comes from a drawn base (module docstring of exact_array).
MAX_DRAWN_ELEMENTS = 4
_SEED_MAX = 2 ** 32 - 1


def exact_array(draw, shape, exp: int = 0, *, exact_in: torch.dtype = DEFAULT_EXACT_IN, lo: float = -1.0,
                hi: float = 1.0, exclude_max: bool = False, allow_subnormal: bool | None = False,
                unique: bool = False) -> torch.Tensor:
    """A float64 tensor of `shape`: values in [lo, hi] exact in exact_in, times 2^exp, rounded to exact_in.

    Drawn as a base and a few elements:
    - the base is either one value everywhere ("constant": the structured regimes, a zero matrix,
      equal gates, that Hypothesis's own array fill reaches) or uniform values in [lo, hi) from a
      torch Generator seeded by a drawn integer ("seeded": dense generic values, on which wrong
      formulas, transpositions and mixed-up gates show); with unique=True always seeded;
    - then up to MAX_DRAWN_ELEMENTS elements, at drawn positions, are values Hypothesis draws
      (exact_floats: its boundary values 0, ±1, the range's ends, the smallest normals).
    Hypothesis shrinks the base to "constant" and the seed towards 0, and drops drawn elements.

    unique=True: distinct elements (distinct after the scaling and rounding, so also where
    2^exp pushes values below exact_in's normal range, e.g. float16's 2^-14): repeats are
    redrawn from the generator; an array that cannot be made distinct is rejected.
    """
    check_exact_in(exact_in)
    size = math.prod(shape)
    elements = exact_floats(lo, hi, exact_in=exact_in, exclude_max=exclude_max, allow_subnormal=allow_subnormal)
    kind = "seeded" if unique else draw(st.sampled_from(("constant", "seeded")), label="array base")
    if kind == "constant":
        base = torch.full((size,), draw(elements, label="array fill"), dtype=torch.float64)
        gen = None
    else:
        gen = torch.Generator().manual_seed(draw(st.integers(0, _SEED_MAX), label="array seed"))
        base = _uniform(size, lo, hi, gen, exact_in, exclude_max, allow_subnormal)
    drawn = set()
    for _ in range(draw(st.integers(0, min(MAX_DRAWN_ELEMENTS, size)), label="drawn elements") if size else 0):
        index = draw(st.integers(0, size - 1), label="element index")
        base[index] = draw(elements, label="element")
        drawn.add(index)
    values = round_to(base * 2.0 ** exp, exact_in)
    if unique and size > 1:
        values = _distinct(values, base, drawn, exp, lo, hi, gen, exact_in, exclude_max, allow_subnormal)
    return values.reshape(shape)


def _uniform(size, lo, hi, gen, exact_in, exclude_max, allow_subnormal) -> torch.Tensor:
    """`size` values uniform in [lo, hi), rounded to exact_in, kept in the range and off the subnormals."""
    v = round_to(lo + (hi - lo) * torch.rand(size, generator=gen, dtype=torch.float64), exact_in)
    v = torch.where((v >= hi) if exclude_max else (v > hi), torch.full_like(v, lo), v)  # rounding up to hi
    if not allow_subnormal and lo <= 0:
        tiny = torch.finfo(exact_in).tiny
        v = torch.where(v.abs() < tiny, torch.zeros_like(v), v)
    return v


def _distinct(values, base, drawn, exp, lo, hi, gen, exact_in, exclude_max, allow_subnormal) -> torch.Tensor:
    from hypothesis import reject

    for _ in range(8):  # a few redraws of the repeats (seeded bases rarely repeat, narrow dtypes may)
        _, inverse, counts = torch.unique(values, return_inverse=True, return_counts=True)
        repeated = [i for i in range(len(values)) if counts[inverse[i]] > 1]
        # Keep the first of each repeated value (and the drawn elements); redraw the others.
        seen, redraw = set(), []
        for i in sorted(repeated, key=lambda i: (i not in drawn, i)):
            key = float(values[i])
            if key in seen:
                redraw.append(i)
            seen.add(key)
        if not redraw:
            return values
        if gen is None:
            break
        base[redraw] = _uniform(len(redraw), lo, hi, gen, exact_in, exclude_max, allow_subnormal)
        values = round_to(base * 2.0 ** exp, exact_in)
    reject()  # no distinct values at this scale in exact_in


def clamp_exps(name: str, lo: int, hi: int, *, min_exp: int | None = None, max_exp: int | None = None,
               exact_in: torch.dtype) -> tuple[int, int]:
    """(lo, hi) cut to [min_exp, max_exp] (a dtype's range); an InvalidArgument naming `name` if nothing is left."""
    new_lo = lo if min_exp is None else max(lo, min_exp)
    new_hi = hi if max_exp is None else min(hi, max_exp)
    if new_lo > new_hi:
        raise InvalidArgument(f"{name}=({lo}, {hi}) does not fit exact_in={exact_in}: "
                              f"its range allows exponents {min_exp} .. {max_exp} here")
    return new_lo, new_hi


def fit_exps(name: str, exps: tuple[int, int], bound, *, exact_in: torch.dtype) -> tuple[int, int]:
    """exps = (lo, hi) with hi lowered until bound(hi) <= finfo(exact_in).max / 4.

    bound(e): the largest magnitude a strategy makes (a value, a pre-activation, a one-step
    product of drawn values) when the exponent named `name` is e; the factor 4 spares room
    for sums taken in another order. A no-op for the documented ranges in float32, bfloat16
    and float64; in float16 (max 65504) it clamps ranges that would overflow. An
    InvalidArgument naming the option if not even lo fits.
    """
    lo, hi = exps
    limit = torch.finfo(exact_in).max / 4

    def fits(e):
        try:
            return float(bound(e)) <= limit
        except OverflowError:
            return False

    new_hi = hi
    while new_hi >= lo and not fits(new_hi):
        new_hi -= 1
    if new_hi < lo:
        raise InvalidArgument(f"{name}={exps}: even 2^{lo} overflows exact_in={exact_in} "
                              f"(largest finite value {torch.finfo(exact_in).max:g}) in the values this strategy forms")
    return lo, new_hi


def exact_for(dtype) -> torch.dtype:
    """The dtype a case in `dtype` draws its values exact in: float32 for float64, float32 and no dtype
    (the draws the suite always made, so their seeded examples do not change), the dtype itself
    when it is narrower (bfloat16, float16: the cell then sees exactly the reference's inputs)."""
    if dtype in (torch.bfloat16, torch.float16):
        return dtype
    return DEFAULT_EXACT_IN


def per_dtype(make):
    """A Check.strategy: make(exact_in=exact_for(dtype)) for each case's dtype (make: a strategy
    factory taking `exact_in`, e.g. step_problems or functools.partial(kernel_step_problems, ...))."""
    return lambda device, dtype: make(exact_in=exact_for(dtype))
