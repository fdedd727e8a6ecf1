"""Random vanilla (tanh) RNN sequences for CLAIMS.md V1-V2.

Weights are drawn element by element as exact numbers of `exact_in` (keyword option, default
float32; strategies/exact.py; stored in float64) times a power of two, rounded to exact_in, 2^-3 .. 2^2: ||W_hh|| from well below 1 (contracting: the note's β < 1) to well
above (the bound (max tanh' ||W_hh||)^T then grows, while the product may still decay through
saturated tanh'). Inputs come from a drawn seed (a sequence of T x B x m values), h_0 is drawn.
These ranges fit float16 too (pre-activations <= 2^w (2 m + n) + 4 = 48); larger weight
exponents asked for are clamped where exact_in cannot hold them. The bound's growth over T
steps is V1-V2's quantity, not a drawn value.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lstm_claims.pretty import repr_pretty
from lstm_claims.reference.sequence_shape import SequenceShape
from lstm_claims.reference.vanilla_rnn import RNNParams
from lstm_claims.strategies.exact import DEFAULT_EXACT_IN, check_exact_in, fit_exps
from lstm_claims.strategies.long_range_sequences import _drawn_matrix, check_range, seeded_uniform


@dataclass(frozen=True)
class RNNProblem(SequenceShape):
    """A tanh RNN unrolled over xs (T, B, m) from h0 (B, n)."""

    params: RNNParams
    xs: torch.Tensor
    h0: torch.Tensor
    drawn: dict = field(default_factory=dict, compare=False)


    def as_json(self) -> dict:
        out = {"T": self.steps, "B": self.batch, "n": self.hidden_size, "m": self.input_size, "drawn": dict(self.drawn)}
        out.update({k: v.tolist() for k, v in self.params.as_dict().items()})
        out["h0"] = self.h0.tolist()
        return out

    _repr_pretty_ = repr_pretty  # Hypothesis prints the __repr__ below (lstm_claims/pretty.py)

    def __repr__(self) -> str:
        return (f"RNNProblem(T={self.steps}, B={self.batch}, m={self.input_size}, n={self.hidden_size}, "
                f"drawn={self.drawn}, " + ", ".join(f"{k}={v.numpy().tolist()!r}" for k, v in
                                                   [*self.params.as_dict().items(), ("h0", self.h0)]) + ")")


@st.composite
def _rnn_problems(draw, min_steps, max_steps, max_hidden, max_input, max_batch, weight_exps, exact_in):
    T = draw(st.integers(min_steps, max_steps), label="steps")
    n = draw(st.integers(1, max_hidden), label="hidden_size")
    m = draw(st.integers(1, max_input), label="input_size")
    batch = draw(st.integers(1, max_batch), label="batch")
    w_exp = draw(st.integers(*weight_exps), label="weight exponent")
    b_exp = draw(st.integers(-4, 1), label="bias exponent")
    x_exp = draw(st.integers(-2, 1), label="input exponent")
    seed = draw(st.integers(0, 2 ** 32 - 1), label="input seed")
    params = RNNParams(weight_ih=_drawn_matrix(draw, (n, m), w_exp, exact_in),
                       weight_hh=_drawn_matrix(draw, (n, n), w_exp, exact_in),
                       bias_ih=_drawn_matrix(draw, (n,), b_exp, exact_in), bias_hh=_drawn_matrix(draw, (n,), b_exp, exact_in))
    h0 = _drawn_matrix(draw, (batch, n), 0, exact_in)
    xs = seeded_uniform((T, batch, m), x_exp, seed, exact_in=exact_in)
    drawn = {"weight_exp": w_exp, "bias_exp": b_exp, "input_exp": x_exp, "seed": seed}
    if exact_in != DEFAULT_EXACT_IN:
        drawn["exact_in"] = str(exact_in)
    return RNNProblem(params, xs, h0, drawn)


def rnn_problems(*, min_steps: int = 1, max_steps: int = 24, max_hidden: int = 5, max_input: int = 3,
                 max_batch: int = 2, weight_exps: tuple[int, int] = (-3, 2), exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """Vanilla RNN problems: T in [min_steps, max_steps], widths 1..max_hidden, weights 2^weight_exps.

    exact_in: every value (weights, biases, h0, xs) is exactly representable in this dtype and
    finite there, with the pre-activations: pass the narrowest dtype the check runs in. The
    default (float32) draws what was always drawn.
    """
    check_exact_in(exact_in)
    check_range("steps", min_steps, max_steps, 1)
    check_range("hidden size", 1, max_hidden, 1)
    check_range("max_input", 1, max_input, 1)
    check_range("max_batch", 1, max_batch, 1)
    check_range("weight_exps", *weight_exps, -30)
    if max_steps > 4096:
        raise InvalidArgument(f"max_steps={max_steps}: V1-V2 unroll torch.nn.RNN with autograd; keep it <= 4096")
    # Pre-activations 2^w (2 m + n) + 4 (|x| <= 2, |h| <= 1, |b| <= 2) must fit exact_in (no-op for the defaults).
    weight_exps = fit_exps("weight_exps", tuple(weight_exps), lambda w: 2.0 ** w * (2 * max_input + max_hidden) + 4,
                           exact_in=exact_in)
    return _rnn_problems(min_steps, max_steps, max_hidden, max_input, max_batch, weight_exps, exact_in)
