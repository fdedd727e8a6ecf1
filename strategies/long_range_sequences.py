"""Random LSTM *sequences* for the long-range claims (CLAIMS.md L6-L9).

Two kinds of problem:

- `sequence_problems`: parameters, an input sequence xs (T, B, m) and an initial state
  (h_0, c_0), for unrolling a cell T steps (L6, L7, L9): reference.unrolled_backward.LSTMSequence
  values, the record the G-claims' strategies build too. Parameters, h_0 and c_0 are drawn
  by strategies/exact.exact_array (a drawn base, constant or seeded, and a few elements
  Hypothesis draws and shrinks); the inputs come from a drawn seed.
- `forget_gate_sequences`: the inputs (x_t, h_t) a cell sees at each of T steps, possibly
  10^5 of them, without the recurrence (L8: products of forget gates over arbitrary
  spans). All values come from a drawn seed.

As in strategies.lstm_problems every value is an exact number of `exact_in` (keyword option
of every strategy and helper here, default float32; strategies/exact.py) stored in float64,
so a cell in that dtype (or a wider one) and the float64 reference see the same inputs. The
regimes the claims talk about are all reachable (tests/meta/test_long_range_strategies.py
shows it):

- short (T = 1, 2: where the note's product is trivially right) and long sequences;
- W_ho = 0 (the note's product is the true Jacobian, L6) or not; W_hh = 0 (no h feedback, L9);
- forget gates near 1 (bias shift +8, +20), neutral (0, 1) and forgetting (-3: Π f tiny, L7);
- weights from 2^-4 (gates unsaturated, indirect term small) to 2^2 (saturating, large
  indirect term); initial cell states from 2^-2 to 2^5 (past a cell clip of 8, where tanh(c)
  saturates).

These ranges fit float16 too (values, pre-activations and one-step products far below
65504); only options asking for larger exponents are clamped there. Jacobian *products over
T steps* are the claims' quantities, not drawn values: they may leave a narrow dtype's range.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lstm_claims.pretty import repr_pretty
from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.reference.sequence_shape import SequenceShape
from lstm_claims.reference.unrolled_backward import LSTMSequence
from lstm_claims.strategies.exact import DEFAULT_EXACT_IN, check_exact_in, exact_array, fit_exps, round_to

# Forget-gate bias shifts, as in strategies.lstm_problems: 0 (neutral), 1 (the note's b_f = 1),
# 3 and 8 (f near 1), 20 (f == 1 in float32), -3 (forgetting: Π f tiny over long spans).
FORGET_SHIFTS = (0.0, 1.0, 3.0, 8.0, 20.0, -3.0)
OUTPUT_RECURRENCE = ("draw", "zero", "nonzero")


def float32_exact(t: torch.Tensor) -> torch.Tensor:
    """The float64 tensor holding exactly the float32 rounding of t (round_to(t, torch.float32))."""
    return round_to(t, torch.float32)


def _drawn_matrix(draw, shape, exp, exact_in: torch.dtype = DEFAULT_EXACT_IN) -> torch.Tensor:
    # exact_in values in [-1, 1] (no subnormals) times 2^exp, rounded to exact_in (strategies/exact.py).
    return exact_array(draw, shape, exp, exact_in=exact_in)


def seeded_uniform(shape, exp: int, seed: int, *, exact_in: torch.dtype = DEFAULT_EXACT_IN) -> torch.Tensor:
    """Uniform(-1, 1) x 2^exp from a torch Generator, rounded to exact_in (so exact in it and every wider dtype)."""
    check_exact_in(exact_in)
    gen = torch.Generator().manual_seed(seed)
    return round_to((torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * 2.0 ** exp, exact_in)


def check_range(name, lo, hi, lo_min):
    """An InvalidArgument naming the option unless lo_min <= lo <= hi are ints."""
    if not (isinstance(lo, int) and isinstance(hi, int)) or isinstance(lo, bool) or isinstance(hi, bool):
        raise InvalidArgument(f"{name}: bounds must be ints, got {lo!r}, {hi!r}")
    if lo < lo_min or hi < lo:
        raise InvalidArgument(f"{name}: need {lo_min} <= min <= max, got min={lo} max={hi}")


def _check_shifts(forget_shifts):
    if not forget_shifts or not all(float(s).is_integer() for s in forget_shifts):
        raise InvalidArgument(f"forget_shifts must be a non-empty tuple of integral values, got {forget_shifts!r}")
    return tuple(float(s) for s in forget_shifts)


@st.composite
def _sequence_problems(draw, min_steps, max_steps, min_hidden, max_hidden, max_input, max_batch, weight_exps,
                       cell_exps, forget_shifts, output_recurrence, recurrent, exact_in):
    T = draw(st.integers(min_steps, max_steps), label="steps")
    n = draw(st.integers(min_hidden, max_hidden), label="hidden_size")
    m = draw(st.integers(1, max_input), label="input_size")
    batch = draw(st.integers(1, max_batch), label="batch")
    w_exp = draw(st.integers(*weight_exps), label="weight exponent")
    b_exp = draw(st.integers(-6, 2), label="bias exponent")
    shift = draw(st.sampled_from(forget_shifts), label="forget shift")
    x_exp = draw(st.integers(-2, 1), label="input exponent")
    c_exp = draw(st.integers(*cell_exps), label="cell exponent")
    if output_recurrence == "draw":
        zero_w_ho = draw(st.booleans(), label="W_ho = 0")
    else:
        zero_w_ho = output_recurrence == "zero"
    seed = draw(st.integers(0, 2 ** 32 - 1), label="input seed")
    b_ih = _drawn_matrix(draw, (4 * n,), b_exp, exact_in)
    b_ih[n:2 * n] += shift  # rounded back to exact_in below
    w_hh = _drawn_matrix(draw, (4 * n, n), w_exp, exact_in) if recurrent else torch.zeros(4 * n, n, dtype=torch.float64)
    if zero_w_ho:
        w_hh[3 * n:] = 0
    elif output_recurrence == "nonzero" and not (w_hh[3 * n:] != 0).any():
        w_hh[3 * n, 0] = 2.0 ** w_exp  # a nonzero W_ho was asked for; the draw gave zeros
    params = LSTMParams(weight_ih=_drawn_matrix(draw, (4 * n, m), w_exp, exact_in), weight_hh=w_hh,
                        bias_ih=round_to(b_ih, exact_in), bias_hh=_drawn_matrix(draw, (4 * n,), b_exp, exact_in))
    h0 = _drawn_matrix(draw, (batch, n), -1, exact_in)  # |h| <= 1/2: an h that o ⊙ tanh(c) could produce
    c0 = _drawn_matrix(draw, (batch, n), c_exp, exact_in)
    xs = seeded_uniform((T, batch, m), x_exp, seed, exact_in=exact_in)
    drawn = {"weight_exp": w_exp, "bias_exp": b_exp, "forget_shift": shift, "input_exp": x_exp, "cell_exp": c_exp,
             "W_ho_zero": bool(zero_w_ho), "W_hh_zero": not recurrent, "seed": seed}
    if exact_in != DEFAULT_EXACT_IN:
        drawn["exact_in"] = str(exact_in)
    return LSTMSequence(params, xs, h0, c0, drawn)


def sequence_problems(*, min_steps: int = 1, max_steps: int = 12, min_hidden: int = 1, max_hidden: int = 4,
                      max_input: int = 3, max_batch: int = 2, weight_exps: tuple[int, int] = (-4, 2),
                      cell_exps: tuple[int, int] = (-2, 5), forget_shifts: tuple[float, ...] = FORGET_SHIFTS,
                      output_recurrence: str = "draw", recurrent: bool = True,
                      exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """LSTM sequence problems spanning the regimes of L6-L9 (see the module docstring).

    output_recurrence: "draw" (W_ho = 0 in about half the examples), "zero" or "nonzero".
    recurrent=False sets all of W_hh to 0 (the gates do not see h: L9's theorem).
    exact_in: every value (parameters, xs, h_0, c_0) is exactly representable in this dtype
    and finite there, with its pre-activations: pass the narrowest dtype the cell is run in,
    so that all dtypes see the same inputs. The default (float32) draws what was always drawn.
    """
    check_exact_in(exact_in)
    check_range("steps", min_steps, max_steps, 1)
    check_range("hidden size", min_hidden, max_hidden, 1)
    check_range("max_input", 1, max_input, 1)
    check_range("max_batch", 1, max_batch, 1)
    check_range("weight_exps", *weight_exps, -30)
    check_range("cell_exps", *cell_exps, -30)
    if output_recurrence not in OUTPUT_RECURRENCE:
        raise InvalidArgument(f"output_recurrence must be one of {OUTPUT_RECURRENCE}, got {output_recurrence!r}")
    if not isinstance(recurrent, bool):
        raise InvalidArgument(f"recurrent must be a bool, got {recurrent!r}")
    if not recurrent and output_recurrence == "nonzero":
        raise InvalidArgument("recurrent=False sets W_hh (and so W_ho) to 0; output_recurrence='nonzero' contradicts it")
    shifts = _check_shifts(forget_shifts)
    # Largest magnitudes formed, for exact_in's range (a no-op for the defaults, float16 included):
    # c_t <= 2^c + T; pre-activations 2^w (2 m + n) + 2^3 + |shift| (|x| <= 2, |h| <= 1);
    # c·W products 4 n 2^(c+w).
    S = max(abs(s) for s in shifts)
    cell_exps = fit_exps("cell_exps", tuple(cell_exps), lambda c: 2.0 ** c + max_steps, exact_in=exact_in)
    weight_exps = fit_exps("weight_exps", tuple(weight_exps),
                           lambda w: max(2.0 ** w * (2 * max_input + max_hidden) + 8 + S,
                                         4 * max_hidden * 2.0 ** (w + cell_exps[1])), exact_in=exact_in)
    return _sequence_problems(min_steps, max_steps, min_hidden, max_hidden, max_input, max_batch, weight_exps,
                              cell_exps, shifts, output_recurrence, recurrent, exact_in)


@dataclass(frozen=True)
class ForgetGateSequence(SequenceShape):
    """The inputs a cell sees at T steps, xs (T, B, m) and hs (T, B, n), without the recurrence (L8)."""

    params: LSTMParams
    xs: torch.Tensor
    hs: torch.Tensor
    drawn: dict = field(default_factory=dict, compare=False)


    def as_json(self) -> dict:
        out = {"T": self.steps, "B": self.batch, "n": self.hidden_size, "drawn": dict(self.drawn)}
        out.update({k: v.tolist() for k, v in self.params.as_dict().items()})
        return out

    _repr_pretty_ = repr_pretty  # Hypothesis prints the __repr__ below (lstm_claims/pretty.py)

    def __repr__(self) -> str:
        return (f"ForgetGateSequence(T={self.steps}, B={self.batch}, m={self.xs.shape[2]}, n={self.hidden_size}, "
                f"drawn={self.drawn}, " + ", ".join(f"{k}={v.numpy().tolist()!r}" for k, v in
                                                   self.params.as_dict().items()) + ")")


def forget_gate_sequence(T: int, n: int, m: int, batch: int, w_exp: int, shift: float, seed: int, *,
                         exact_in: torch.dtype = DEFAULT_EXACT_IN) -> ForgetGateSequence:
    """The ForgetGateSequence that `forget_gate_sequences` draws for these choices (for explicit examples).

    exact_in: every value is exactly representable in this dtype (default float32, as always).
    """
    check_exact_in(exact_in)
    b_ih = seeded_uniform((4 * n,), -2, seed + 1, exact_in=exact_in)
    b_ih[n:2 * n] += shift
    params = LSTMParams(weight_ih=seeded_uniform((4 * n, m), w_exp, seed + 2, exact_in=exact_in),
                        weight_hh=seeded_uniform((4 * n, n), w_exp, seed + 3, exact_in=exact_in),
                        bias_ih=round_to(b_ih, exact_in), bias_hh=seeded_uniform((4 * n,), -2, seed + 4, exact_in=exact_in))
    xs = seeded_uniform((T, batch, m), 0, seed + 5, exact_in=exact_in)
    hs = seeded_uniform((T, batch, n), -1, seed + 6, exact_in=exact_in)  # |h| <= 1/2
    drawn = {"weight_exp": w_exp, "forget_shift": shift, "seed": seed}
    if exact_in != DEFAULT_EXACT_IN:
        drawn["exact_in"] = str(exact_in)
    return ForgetGateSequence(params, xs, hs, drawn)


@st.composite
def _forget_gate_sequences(draw, max_log10_steps, max_hidden, max_input, max_batch, forget_shifts, weight_exps,
                           exact_in):
    decade = draw(st.integers(0, max_log10_steps), label="decade of T")
    # T log-uniform over the decades: 10^decade .. 10^(decade+1) - 1, the top decade capped at 10^max.
    hi = 10 ** max_log10_steps if decade == max_log10_steps else 10 ** (decade + 1) - 1
    T = draw(st.integers(10 ** decade, hi), label="steps")
    n = draw(st.integers(1, max_hidden), label="hidden_size")
    m = draw(st.integers(1, max_input), label="input_size")
    batch = draw(st.integers(1, max_batch), label="batch")
    w_exp = draw(st.integers(*weight_exps), label="weight exponent")
    shift = draw(st.sampled_from(forget_shifts), label="forget shift")
    seed = draw(st.integers(0, 2 ** 32 - 8), label="seed")
    return forget_gate_sequence(T, n, m, batch, w_exp, shift, seed, exact_in=exact_in)


def forget_gate_sequences(*, max_log10_steps: int = 5, max_hidden: int = 4, max_input: int = 3, max_batch: int = 2,
                          forget_shifts: tuple[float, ...] = FORGET_SHIFTS, weight_exps: tuple[int, int] = (-4, 1),
                          exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """Forget-gate sequences of T = 1 .. 10^max_log10_steps steps, T log-uniform over decades (L8).

    exact_in: every value (parameters, xs, hs) is exactly representable in this dtype and
    finite there, with the pre-activations; the default (float32) draws what was always drawn.
    """
    check_exact_in(exact_in)
    check_range("max_log10_steps", 0, max_log10_steps, 0)
    if max_log10_steps > 6:
        raise InvalidArgument(f"max_log10_steps={max_log10_steps}: 10^{max_log10_steps} steps do not fit the budget")
    check_range("hidden size", 1, max_hidden, 1)
    check_range("max_input", 1, max_input, 1)
    check_range("max_batch", 1, max_batch, 1)
    check_range("weight_exps", *weight_exps, -30)
    shifts = _check_shifts(forget_shifts)
    # Pre-activations 2^w (m + n) + 1/2 + |shift| (|x| <= 1, |h| <= 1/2, |b| <= 1/4) must fit exact_in's range
    # (a no-op for the defaults, float16 included).
    S = max(abs(s) for s in shifts)
    weight_exps = fit_exps("weight_exps", tuple(weight_exps), lambda w: 2.0 ** w * (max_input + max_hidden) + 1 + S,
                           exact_in=exact_in)
    return _forget_gate_sequences(max_log10_steps, max_hidden, max_input, max_batch, shifts, weight_exps, exact_in)
