"""Random one-step LSTM problems: parameters, inputs, state and cotangents.

Every value is drawn as an exact float32 number and stored in float64, so a float32
cell and the float64 reference see *the same* inputs and the tolerance only has to
cover the arithmetic (see claims/tolerances.py). Magnitudes are a float32 draw in
[-1, 1] times a power of two, so the regimes the claims talk about are all reachable:

- weights from 2^-6 (gates ~ linear, unsaturated) to 2^3 (saturating);
- biases up to 2^4 and a forget-gate shift of up to +20 (f ≈ 1) or -3 (f small);
- cell states from 2^-4 (small) to 2^6 (large: tanh(c) saturates, clipping bugs show);
- widths 1 .. 7 (odd and even), batch 1 .. 4 with distinct rows (elements unique).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra.numpy import arrays

from lstm_claims.reference.lstm_step import LSTMParams

# Forget-gate bias shifts: 0 (neutral), 1 (the note's b_f = 1), 3 and 8 (f near 1),
# 20 (f == 1 in float32), -3 (forgetting).
FORGET_SHIFTS = (0.0, 1.0, 3.0, 8.0, 20.0, -3.0)


def _unit_floats():
    # float32-exact values in [-1, 1], no subnormals (scaling by 2^-k must stay exact).
    return st.floats(-1.0, 1.0, width=32, allow_subnormal=False)


def _as_float32_exact(a: np.ndarray) -> torch.Tensor:
    """float64 tensor holding exactly the float32 rounding of `a`."""
    return torch.from_numpy(np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64))


def _matrix(draw, shape, exp, *, unique=False):
    base = draw(arrays(np.float32, shape, elements=_unit_floats(), unique=unique))
    return _as_float32_exact(base.astype(np.float64) * 2.0 ** exp)


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

    def __repr__(self) -> str:
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
                   forget_shifts):
    n = draw(st.integers(min_hidden, max_hidden), label="hidden_size")
    m = draw(st.integers(1, max_input), label="input_size")
    batch = draw(st.integers(1, max_batch), label="batch")
    w_exp = draw(st.integers(*weight_exps), label="weight exponent")
    b_exp = draw(st.integers(-6, 4), label="bias exponent")
    shift = draw(st.sampled_from(forget_shifts), label="forget shift")
    x_exp = draw(st.integers(-2, 2), label="input exponent")
    c_exp = draw(st.integers(*cell_exps), label="cell exponent")
    b_ih = _matrix(draw, (4 * n,), b_exp)
    b_ih[n:2 * n] += shift  # shifts are small integers: the sum stays float32-exact
    params = LSTMParams(
        weight_ih=_matrix(draw, (4 * n, m), w_exp),
        weight_hh=_matrix(draw, (4 * n, n), w_exp),
        bias_ih=_as_float32_exact(b_ih.numpy()),
        bias_hh=_matrix(draw, (4 * n,), b_exp),
    )
    # Distinct rows for batch > 1: every element of x, h and c is distinct.
    x = _matrix(draw, (batch, m), x_exp, unique=True)
    h = _matrix(draw, (batch, n), 0, unique=True)
    c = _matrix(draw, (batch, n), c_exp, unique=True)
    o_prev = _as_float32_exact(draw(arrays(
        np.float32, (batch, n), elements=st.floats(2 ** -8, 1.0, width=32, exclude_max=True))))
    v_h = _matrix(draw, (batch, n), 0)
    v_c = _matrix(draw, (batch, n), 0)
    drawn = {"weight_exp": w_exp, "bias_exp": b_exp, "forget_shift": shift, "input_exp": x_exp,
             "cell_exp": c_exp}
    return StepProblem(params, x, h, c, o_prev, v_h, v_c, drawn)


def step_problems(*, min_hidden: int = 1, max_hidden: int = 7, max_input: int = 5, max_batch: int = 4,
                  weight_exps: tuple[int, int] = (-6, 3), cell_exps: tuple[int, int] = (-4, 6),
                  forget_shifts: tuple[float, ...] = FORGET_SHIFTS):
    """One-step LSTM problems spanning the regimes of the claims (see the module docstring)."""
    _check_range("hidden size", min_hidden, max_hidden, 1)
    _check_range("max_input", 1, max_input, 1)
    _check_range("max_batch", 1, max_batch, 1)
    _check_range("weight_exps", *weight_exps, -30)
    _check_range("cell_exps", *cell_exps, -30)
    if not forget_shifts or not all(float(s).is_integer() for s in forget_shifts):
        raise InvalidArgument(f"forget_shifts must be a non-empty tuple of integral values, got {forget_shifts!r}")
    return _step_problems(min_hidden, max_hidden, max_input, max_batch, weight_exps, cell_exps,
                          tuple(float(s) for s in forget_shifts))
