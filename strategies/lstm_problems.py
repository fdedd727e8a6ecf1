"""Random one-step LSTM problems: parameters, inputs, state and cotangents.

Every value is drawn as an exact number of `exact_in` (keyword option, default float32;
see strategies/exact.py) and stored in float64, so a cell in that dtype (or any wider one)
and the float64 reference see *the same* inputs and the tolerance only has to cover the
arithmetic (see claims/tolerances.py). Magnitudes are an exact_in draw in [-1, 1] times a
power of two, rounded to exact_in, so the regimes the claims talk about are all reachable:

- weights from 2^-6 (gates ~ linear, unsaturated) to 2^3 (saturating);
- biases up to 2^4 and a forget-gate shift of up to +20 (f ≈ 1) or -3 (f small);
- cell states from 2^-4 (small) to 2^6 (large: tanh(c) saturates, clipping bugs show);
- widths 1 .. 7 (odd and even), batch 1 .. 4 with distinct rows (elements unique).

These ranges fit float16 too (pre-activations below 300, c·W products below 2^13); only
options asking for larger exponents are clamped there (see `step_problems`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lstm_claims.pretty import repr_pretty
from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.strategies.exact import DEFAULT_EXACT_IN, check_exact_in, exact_array, fit_exps, round_to

# Forget-gate bias shifts: 0 (neutral), 1 (the note's b_f = 1), 3 and 8 (f near 1),
# 20 (f == 1 in float32), -3 (forgetting).
FORGET_SHIFTS = (0.0, 1.0, 3.0, 8.0, 20.0, -3.0)


def _matrix(draw, shape, exp, exact_in, *, unique=False):
    # exact_in values in [-1, 1] (no subnormals) times 2^exp, rounded to exact_in (strategies/exact.py).
    return exact_array(draw, shape, exp, exact_in=exact_in, unique=unique)


@dataclass(frozen=True)
class StepProblem:
    """One LSTM step to check: parameters, x (B, m), h, c, o_prev, v_h, v_c (B, n)."""

    params: LSTMParams
    x: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor
    o_prev: torch.Tensor  # o_{t-1} in (0, 1), for h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}) (L2)
    v_h: torch.Tensor  # cotangents for the vector-Jacobian products (L0 backward)
    v_c: torch.Tensor
    drawn: dict = field(default_factory=dict, compare=False)  # the exponents and shifts drawn

    @property
    def batch(self) -> int:
        return self.x.shape[0]

    @property
    def hidden_size(self) -> int:
        return self.params.hidden_size

    @property
    def input_size(self) -> int:
        return self.params.input_size

    _repr_pretty_ = repr_pretty  # Hypothesis prints the __repr__ below (lstm_claims/pretty.py)

    def __repr__(self) -> str:
        if "seed" in self.drawn:  # values from a seeded generator (strategies/kernel_problems.py): its call rebuilds them
            d = self.drawn
            return (f"kernel_step_problem({d['B']}, {d['m']}, {d['n']}, weight_exp={d['weight_exp']}, "
                    f"cell_exp={d['cell_exp']}, forget_shift={d['forget_shift']}, seed={d['seed']}, "
                    f"kind={d['kind']!r}{', same_sign=True' if d.get('same_sign') else ''}"
                    f"{', loss_reads=' + repr(d['loss_reads']) if 'loss_reads' in d else ''})")
        np.set_printoptions(precision=17)
        parts = [f"B={self.batch}, m={self.input_size}, n={self.hidden_size}, drawn={self.drawn}"]
        for name, t in [*self.params.as_dict().items(), ("x", self.x), ("h", self.h), ("c", self.c),
                        ("o_prev", self.o_prev), ("v_h", self.v_h), ("v_c", self.v_c)]:
            parts.append(f"{name}={t.numpy().tolist()!r}")
        return "StepProblem(" + ", ".join(parts) + ")"


def _check_range(name, lo, hi, lo_min):
    if not (isinstance(lo, int) and isinstance(hi, int)):
        raise InvalidArgument(f"{name}: bounds must be ints, got {lo!r}, {hi!r}")
    if lo < lo_min or hi < lo:
        raise InvalidArgument(f"{name}: need {lo_min} <= min <= max, got min={lo} max={hi}")


@st.composite
def _step_problems(draw, min_hidden, max_hidden, max_input, max_batch, weight_exps, cell_exps,
                   forget_shifts, exact_in):
    n = draw(st.integers(min_hidden, max_hidden), label="hidden_size")
    m = draw(st.integers(1, max_input), label="input_size")
    batch = draw(st.integers(1, max_batch), label="batch")
    w_exp = draw(st.integers(*weight_exps), label="weight exponent")
    b_exp = draw(st.integers(-6, 4), label="bias exponent")
    shift = draw(st.sampled_from(forget_shifts), label="forget shift")
    x_exp = draw(st.integers(-2, 2), label="input exponent")
    c_exp = draw(st.integers(*cell_exps), label="cell exponent")
    b_ih = _matrix(draw, (4 * n,), b_exp, exact_in)
    b_ih[n:2 * n] += shift  # shifts are small integers; the sum is rounded back to exact_in below
    params = LSTMParams(
        weight_ih=_matrix(draw, (4 * n, m), w_exp, exact_in),
        weight_hh=_matrix(draw, (4 * n, n), w_exp, exact_in),
        bias_ih=round_to(b_ih, exact_in),
        bias_hh=_matrix(draw, (4 * n,), b_exp, exact_in),
    )
    # Distinct rows for batch > 1: every element of x, h and c is distinct.
    x = _matrix(draw, (batch, m), x_exp, exact_in, unique=True)
    h = _matrix(draw, (batch, n), 0, exact_in, unique=True)
    c = _matrix(draw, (batch, n), c_exp, exact_in, unique=True)
    o_prev = exact_array(draw, (batch, n), 0, exact_in=exact_in, lo=2 ** -8, hi=1.0, exclude_max=True,
                         allow_subnormal=None)
    v_h = _matrix(draw, (batch, n), 0, exact_in)
    v_c = _matrix(draw, (batch, n), 0, exact_in)
    drawn = {"weight_exp": w_exp, "bias_exp": b_exp, "forget_shift": shift, "input_exp": x_exp,
             "cell_exp": c_exp}
    if exact_in != DEFAULT_EXACT_IN:
        drawn["exact_in"] = str(exact_in)
    return StepProblem(params, x, h, c, o_prev, v_h, v_c, drawn)


def step_problems(*, min_hidden: int = 1, max_hidden: int = 7, max_input: int = 5, max_batch: int = 4,
                  weight_exps: tuple[int, int] = (-6, 3), cell_exps: tuple[int, int] = (-4, 6),
                  forget_shifts: tuple[float, ...] = FORGET_SHIFTS, exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """One-step LSTM problems spanning the regimes of the claims (see the module docstring).

    exact_in: every drawn value (parameters, x, h, c, o_prev, the cotangents v_h, v_c) is
    exactly representable in this dtype (torch.float64, float32, bfloat16 or float16) and
    finite there, with its pre-activations and one-step products; pass the narrowest dtype
    the check runs the cell in, so that every dtype sees the same inputs and no rounding of
    the inputs enters the comparison with the float64 reference.
    """
    check_exact_in(exact_in)
    _check_range("hidden size", min_hidden, max_hidden, 1)
    _check_range("max_input", 1, max_input, 1)
    _check_range("max_batch", 1, max_batch, 1)
    _check_range("weight_exps", *weight_exps, -30)
    _check_range("cell_exps", *cell_exps, -30)
    if not forget_shifts or not all(float(s).is_integer() for s in forget_shifts):
        raise InvalidArgument(f"forget_shifts must be a non-empty tuple of integral values, got {forget_shifts!r}")
    # Largest magnitudes formed, for the dtype's range (a no-op for the defaults, float16
    # included; larger exponents asked for are clamped where exact_in cannot hold them):
    # c_next = f c + i g and the batch sums of the backward reach (B + 1) 2^c; pre-activations
    # 2^w (4 m + n) + 2^5 + |shift| (|x| <= 4, |h| <= 1, |b| <= 16); c·W products 4 n 2^(c+w).
    S = max(abs(float(s)) for s in forget_shifts)
    cell_exps = fit_exps("cell_exps", tuple(cell_exps), lambda c: (max_batch + 1) * 2.0 ** c, exact_in=exact_in)
    weight_exps = fit_exps("weight_exps", tuple(weight_exps),
                           lambda w: max(2.0 ** w * (4 * max_input + max_hidden) + 32 + S,
                                         4 * max_hidden * 2.0 ** (w + cell_exps[1])), exact_in=exact_in)
    return _step_problems(min_hidden, max_hidden, max_input, max_batch, weight_exps, cell_exps,
                          tuple(float(s) for s in forget_shifts), exact_in)
