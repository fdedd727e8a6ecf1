"""L0 at float16's range: pre-activations (or their partial sums) beyond 65504, stated as findings.

float16's largest finite value is 65504. A pre-activation a = W_ih x + b_ih + W_hh h + b_hh whose
value, or one of whose partial sums (W_ih x + b_ih, W_hh h + b_hh: what torch.nn.LSTMCell and the
reference cell round to the dtype before adding), leaves that range becomes ±inf in float16: the
gate then saturates exactly as the float64 reference's does when the pre-activation itself is
large (σ(±inf) = 1 or 0, tanh(±inf) = ±1), or the sum inf - inf is NaN when two partial sums of
opposite signs overflow although a itself is moderate.

The check draws float16-exact problems whose partial sums W_ih x reach up to 3 · 2^21 and runs the cell in
float16 (forward under no_grad). Where the cell's output is finite it must match the reference
within L0's float16 tolerance; where it is not finite, the example must involve a partial sum
beyond 65504, and then it is a finding, recorded (figures `float16_partial_sums_beyond_range`,
`float16_non_finite_outputs`, `float16_range_finding`), not a crash, a silent inf or a failure of
the cell: float16 cannot hold that computation. A non-finite output with every partial sum in
range fails L0 naming float16.
"""
from __future__ import annotations

import dataclasses

import torch
from hypothesis import strategies as st

from lstm_claims.claims import through_cell
from lstm_claims.claims.tolerances import forward_tolerance, largest_finite
from lstm_claims.claims.violation import ClaimViolation, assert_within, where
from lstm_claims.reference.lstm_step import lstm_step
from lstm_claims.strategies import step_problems

FLOAT16_MAX = largest_finite(torch.float16)
WHY = "rounding bound of L0 in float16 (claims/tolerances.py), on the outputs float16 can hold"


def _partial_sums(p):
    """|W_ih x + b_ih| and |W_hh h + b_hh| (float64, exact inputs): the values a float16 cell rounds first."""
    return ((p.x @ p.params.weight_ih.T + p.params.bias_ih).abs(),
            (p.h @ p.params.weight_hh.T + p.params.bias_hh).abs())


@st.composite
def _beyond_range(draw):
    # Small float16-exact problems, then inputs x and weights W_ih scaled by 2^k, k = 8..10, each (exact in
    # float16 and finite: |x| <= 4 2^10, |W| <= 2^-1 2^10): partial sums W_ih x up to 3 2^21.
    p = draw(step_problems(max_hidden=3, max_input=3, max_batch=2, weight_exps=(-1, -1), exact_in=torch.float16))
    k = draw(st.integers(8, 10), label="scale exponent")
    params = dataclasses.replace(p.params, weight_ih=p.params.weight_ih * 2.0 ** k)
    return dataclasses.replace(p, params=params, x=p.x * 2.0 ** k)


def float16_range_problems():
    return _beyond_range()


def _fixed(n, w_hh):
    """B = m = 1: W_ih x = 128 · 1024 = 2^17 in every gate row; W_hh h = n w_hh (h = 1)."""
    from lstm_claims.reference.lstm_step import LSTMParams
    from lstm_claims.strategies.lstm_problems import StepProblem

    f64 = dict(dtype=torch.float64)
    params = LSTMParams(torch.full((4 * n, 1), 128.0, **f64), torch.full((4 * n, n), w_hh, **f64),
                        torch.zeros(4 * n, **f64), torch.zeros(4 * n, **f64))
    one = torch.ones(1, n, **f64)
    return StepProblem(params, torch.full((1, 1), 1024.0, **f64), one, one, one / 2, one, one,
                       {"fixed": f"W_ih x = 2^17, W_hh h = {n * w_hh:g}"})


# Explicit examples, run in every profile: a partial sum of 2^17 with the other 0 (a = 2^17: the gates
# saturate, inf is the right limit), and partial sums 2^17 and -3 · 2^15 of opposite signs (a = 2^15 is in
# range, but a cell that rounds each partial sum to float16 first forms inf - inf = NaN).
FLOAT16_RANGE_EXAMPLES = (_fixed(1, 0.0), _fixed(3, -32768.0))


def check_float16_range(cut, problem, device, dtype) -> dict:
    __tracebackhide__ = True
    p = problem
    h_ref, c_ref = lstm_step(p.params, p.x, p.h, p.c)
    h_cell, c_cell = through_cell.forward(cut, p, device, dtype)
    sx, sh = _partial_sums(p)
    beyond = bool((sx > FLOAT16_MAX).any() or (sh > FLOAT16_MAX).any())
    finite = bool(torch.isfinite(h_cell).all() and torch.isfinite(c_cell).all())
    ctx = f"{where(device, dtype)}, B={p.batch} m={p.input_size} n={p.hidden_size}, float16's range"
    if not finite:
        if not beyond:
            raise ClaimViolation("L0", f"{ctx}: the cell returned NaN or inf although every pre-activation and "
                                       f"partial sum is within float16's range (largest {max(sx.max(), sh.max()):.6g})",
                                 {"case": "non-finite in range"})
        return {"float16_partial_sums_beyond_range": 1.0, "float16_non_finite_outputs": 1.0,
                "float16_range_finding": (f"float16 cannot hold this step: a partial sum of the pre-activation is "
                                          f"{max(sx.max(), sh.max()):.6g} > 65504, and the cell returned "
                                          f"non-finite values (h {h_cell.flatten()[:4].tolist()}) where the float64 "
                                          f"reference is finite")}
    tol = forward_tolerance(p.params, p.x, p.h, p.c, dtype)
    worst = max(assert_within("L0", "c_next", c_cell, c_ref, tol["c_next"], context=ctx, why=WHY),
                assert_within("L0", "h_next", h_cell, h_ref, tol["h_next"], context=ctx, why=WHY))
    return {"float16_partial_sums_beyond_range": float(beyond), "float16_non_finite_outputs": 0.0,
            "worst_error_over_allowed": worst}
