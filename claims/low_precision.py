"""Low precision (bfloat16, float16): which checks run there, on what inputs, and at what budget.

The checks that run the implementation under test run in all four dtypes (ALL_DTYPES), the
module converted to the dtype (CellUnderTest.module: `.to(device, dtype)`), against the
float64 reference, with the tolerances of claims/tolerances.py (the accumulation assumption
is written there: low-precision products and sums accumulate in float32 and round once).

Inputs: every value a low-precision case feeds the cell must be exact in its dtype, or the
comparison with the float64 reference would charge the cell for the rounding of its inputs.
Drawn values are (strategies/exact.py: `per_dtype`); explicit examples and fixed problems
made float32-exact are rounded to the case's dtype before the check (`exact_problem`), so
the reference sees the rounded inputs too: no input rounding enters any tolerance.

Budget: in the ci profile a low-precision case draws LOW_PRECISION_CI_SCALE times the
examples of its float32 twin (the plugin passes `examples_scale` to lstm_claims/runner.py);
thorough runs them all, and so do in-process runs (the catalogue) that set their own examples.
"""
from __future__ import annotations

import dataclasses

import torch

from lstm_claims.claims.record import DTYPES
from lstm_claims.strategies.exact import round_to

ALL_DTYPES = tuple(DTYPES)  # float64, float32, bfloat16, float16
FLOAT_DTYPES = ("float64", "float32")
LOW_PRECISION = ("bfloat16", "float16")

# A choice, for the ci budget (< 2 minutes on 2 cores for the whole suite): a low-precision case
# runs a sixth of its float32 twin's examples (5 of 30, at least 1). Its tolerances are as
# derived as float32's; fewer draws see fewer regimes, so `thorough` (scale 1) runs them all.
LOW_PRECISION_CI_SCALE = 1 / 6


def examples_scale(dtype, profile: str) -> float:
    """The multiple of a check's examples a case in `dtype` runs under the kit's `profile`:
    LOW_PRECISION_CI_SCALE for bfloat16 and float16 in ci, 1 otherwise (thorough, float32, float64)."""
    if profile == "ci" and dtype in (torch.bfloat16, torch.float16):
        return LOW_PRECISION_CI_SCALE
    return 1.0


def exact_problem(problem, dtype):
    """`problem` (a dataclass of float64 tensors, nested dataclasses such as LSTMParams included) with every
    floating tensor rounded to `dtype` when it is bfloat16 or float16; unchanged otherwise.

    A value already exact in dtype (a drawn one) is unchanged by the rounding; a float32-exact explicit
    example becomes the nearest dtype-exact problem, which the reference then solves too.
    """
    if dtype not in (torch.bfloat16, torch.float16):
        return problem
    return _rounded(problem, dtype)


def _rounded(obj, dtype):
    if isinstance(obj, torch.Tensor):
        return round_to(obj, dtype) if obj.is_floating_point() else obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _rounded(getattr(obj, f.name), dtype) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **changes)
    return obj


def on_impl_exact(fn):
    """on_impl (claims/record.py) for a check fn(cut, problem, device, dtype) whose problem is first made exact
    in the case's dtype (exact_problem)."""
    return lambda ctx, drawn: fn(ctx.cut, exact_problem(drawn, ctx.dtype), ctx.device, ctx.dtype)
