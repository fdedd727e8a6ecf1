"""Hypothesis strategies for multi-step LSTM problems (the G-claims): LSTMSequence values.

Every value is an exact number of `exact_in` (keyword option of every strategy here and of
`random_sequence`, default float32; strategies/exact.py) stored in float64 (see
strategies/lstm_problems.py for why). Three families, each aimed at one claim:

- `fixed_point_sequences` (G1): LSTMs whose state stays at h = c = 0 exactly while the
  inputs move the i, f, o gates (W_ig = 0, b_g = 0), with W_hg >= 0 so that every one-step
  factor is a non-negative matrix and the growth of ||dc_T/dc_0|| is bracketed by row sums
  (reference/exploding_construction.py). Feedback scales from 2^-3 (decay) to 2^1
  (growth ~ 3 per step) reach both sides of rate 1.
- `separated_forget_sequences` (G3): forget-gate biases that differ across coordinates by
  at least 2, with input and feedback weights small enough (|W_if x| + |W_hf h| <= 0.55)
  that the coordinate with the largest bias keeps the largest forget gate at every step:
  the condition number of diag(Π f) then grows at least geometrically.
- `sequences` (G4): generic LSTMs, weights 2^-3 .. 2^0 (unsaturated: every h_t depends
  visibly on every x_s, s <= t), with `hidden_feedback=False` for the gates that do not
  read h (W_hh = 0) where the cell-state recurrence is affine and a scan applies. Long
  sequences (more than 256 input values) take their inputs from a drawn seed, since
  Hypothesis cannot draw 10^4 values per example.

Every range the options allow fits float16 as well (values <= 12, pre-activations <= 60,
one-step products of drawn values far below 65504), so no dtype clamps anything here; the
growth of ||dc_T/dc_0|| over T steps is G1's subject, not a drawn value, and may leave a
narrow dtype's range.
"""
from __future__ import annotations

import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.reference.unrolled_backward import LSTMSequence
from lstm_claims.strategies.exact import DEFAULT_EXACT_IN, check_exact_in, exact_array, round_to

# Above this many input values, xs come from a drawn seed rather than element by element.
MAX_DRAWN_INPUTS = 256


def _array(draw, shape, exp, exact_in, *, nonnegative=False, unique=False):
    # exact_in values in [-1, 1] (or [0, 1]), no subnormals, times 2^exp, rounded to exact_in (strategies/exact.py).
    return exact_array(draw, shape, exp, exact_in=exact_in, lo=0.0 if nonnegative else -1.0, unique=unique)


def _inputs(draw, steps, batch, m, exact_in, exp=0):
    if steps * batch * m <= MAX_DRAWN_INPUTS:
        return _array(draw, (steps, batch, m), exp, exact_in)
    seed = draw(st.integers(0, 2 ** 32 - 1), label="input seed")
    gen = torch.Generator().manual_seed(seed)
    return round_to((2 * torch.rand(steps, batch, m, generator=gen, dtype=torch.float64) - 1) * 2.0 ** exp, exact_in)


def _with_exact_in(drawn: dict, exact_in) -> dict:
    if exact_in != DEFAULT_EXACT_IN:
        drawn["exact_in"] = str(exact_in)
    return drawn


def _check_int(name, value, lo):
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise InvalidArgument(f"{name} must be an int >= {lo}, got {value!r}")


def _check_range(name, pair, lo, hi):
    if (not isinstance(pair, tuple) or len(pair) != 2 or not all(isinstance(v, int) for v in pair)
            or not lo <= pair[0] <= pair[1] <= hi):
        raise InvalidArgument(f"{name} must be a pair of ints (min, max) with {lo} <= min <= max <= {hi}, got {pair!r}")


def _blocks(i, f, g, o):
    return torch.cat([i, f, g, o])


@st.composite
def _fixed_point(draw, steps, max_hidden, max_input, feedback_exps, exact_in):
    n = draw(st.integers(1, max_hidden), label="hidden_size")
    m = draw(st.integers(1, max_input), label="input_size")
    fb = draw(st.integers(*feedback_exps), label="feedback exponent")
    in_exp = draw(st.integers(-4, 0), label="input weight exponent")
    w_hg = _array(draw, (n, n), fb, exact_in, nonnegative=True)
    other = [_array(draw, (n, n), draw(st.integers(-3, 1), label=f"W_h{k} exponent"), exact_in) for k in "ifo"]
    w_in = [_array(draw, (n, m), in_exp, exact_in) for _ in "ifo"]
    zeros_nm, zeros_n = torch.zeros(n, m, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    # Gate biases 0 .. ±8 plus a shift: f from σ(-8) to ≈ 1, i and o anywhere; b_g = 0 (the fixed point).
    # (+ shift, then rounded to exact_in: the sum of an exact_in number and a shift need not be one)
    b = [round_to(_array(draw, (n,), 3, exact_in) + draw(st.sampled_from([0.0, 2.0, 4.0]), label=f"b_{k} shift"),
                  exact_in) for k in "ifo"]
    params = LSTMParams(_blocks(w_in[0], w_in[1], zeros_nm, w_in[2]), _blocks(other[0], other[1], w_hg, other[2]),
                        _blocks(b[0], b[1], zeros_n, b[2]), torch.zeros(4 * n, dtype=torch.float64))
    zeros = torch.zeros(1, n, dtype=torch.float64)
    return LSTMSequence(params, _inputs(draw, steps, 1, m, exact_in), zeros, zeros.clone(),
                        drawn=_with_exact_in({"feedback_exp": fb, "input_weight_exp": in_exp}, exact_in))


def fixed_point_sequences(*, steps: int = 16, max_hidden: int = 4, max_input: int = 3,
                          feedback_exps: tuple[int, int] = (-3, 1), exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """G1's search family: state fixed at h = c = 0, W_hg >= 0 (module docstring).

    exact_in: every value (parameters, inputs, initial state) is exactly representable in this
    dtype (torch.float64, float32, bfloat16 or float16) and finite there: pass the narrowest dtype
    the check runs the cell in, so that all dtypes see the same inputs.
    """
    check_exact_in(exact_in)
    _check_int("steps", steps, 2)
    _check_int("max_hidden", max_hidden, 1)
    _check_int("max_input", max_input, 1)
    _check_range("feedback_exps", feedback_exps, -20, 3)
    return _fixed_point(steps, max_hidden, max_input, feedback_exps, exact_in)


@st.composite
def _separated(draw, steps, max_hidden, max_input, max_batch, feedback, exact_in):
    n = draw(st.integers(2, max_hidden), label="hidden_size")
    m = draw(st.integers(1, max_input), label="input_size")
    batch = draw(st.integers(1, max_batch), label="batch")
    # Distinct integer forget biases in [-1, 8] with max - min >= 2: gates differ across coordinates.
    # (b_f >= -1 keeps Π f above 0.27^T, about 1e-18 at T = 32: no underflow in float32.)
    b_f = draw(st.lists(st.integers(-1, 8), min_size=n, max_size=n, unique=True)
               .filter(lambda v: max(v) - min(v) >= 2), label="forget biases")
    in_exp = draw(st.integers(-6, -3), label="input weight exponent")  # |W_if x| <= m 2^-3 <= 0.375
    has_feedback = draw(st.booleans(), label="h feedback") if feedback is None else feedback
    hh_exp = draw(st.integers(-8, -5), label="feedback exponent")  # |W_hf h| <= n 2^-5 <= 0.16
    w_ih = _array(draw, (4 * n, m), in_exp, exact_in)
    w_hh = _array(draw, (4 * n, n), hh_exp, exact_in) if has_feedback else torch.zeros(4 * n, n, dtype=torch.float64)
    b_ih = _array(draw, (4 * n,), -1, exact_in)
    b_ih[n:2 * n] = torch.tensor(b_f, dtype=torch.float64)  # small integers: exact in every dtype
    params = LSTMParams(w_ih, w_hh, b_ih, torch.zeros(4 * n, dtype=torch.float64))
    return LSTMSequence(params, _inputs(draw, steps, batch, m, exact_in), _array(draw, (batch, n), -1, exact_in),
                        _array(draw, (batch, n), 0, exact_in),
                        drawn=_with_exact_in({"forget_biases": b_f, "input_weight_exp": in_exp,
                                              "feedback_exp": hh_exp if has_feedback else None}, exact_in))


def separated_forget_sequences(*, steps: int = 16, max_hidden: int = 4, max_input: int = 3, max_batch: int = 2,
                               feedback: bool | None = None, exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """G3's family: forget gates that differ across coordinates at every step (module docstring).

    feedback: True (small W_hh), False (W_hh = 0: gates do not read h), None (either, drawn).
    exact_in: every value (parameters, inputs, initial state) is exactly representable in this
    dtype (torch.float64, float32, bfloat16 or float16) and finite there: pass the narrowest dtype
    the check runs the cell in, so that all dtypes see the same inputs.
    Rounding to exact_in never raises a magnitude above its power-of-two bound, so the
    separation argument (|W_if x| + |W_hf h| <= 0.55) holds in every dtype.
    """
    check_exact_in(exact_in)
    _check_int("steps", steps, 1)
    _check_int("max_hidden", max_hidden, 2)
    if max_hidden > 5 or max_input > 3:
        # The separation argument needs m 2^-3 + n 2^-5 < 1 (half the smallest bias gap).
        raise InvalidArgument(f"separated_forget_sequences needs max_hidden <= 5 and max_input <= 3 "
                              f"(got {max_hidden}, {max_input}): larger widths could close the forget-bias gap")
    _check_int("max_input", max_input, 1)
    _check_int("max_batch", max_batch, 1)
    if feedback not in (None, True, False):
        raise InvalidArgument(f"feedback must be True, False or None, got {feedback!r}")
    return _separated(steps, max_hidden, max_input, max_batch, feedback, exact_in)


@st.composite
def _sequences(draw, min_steps, max_steps, max_hidden, max_input, max_batch, weight_exps, hidden_feedback, exact_in):
    steps = draw(st.integers(min_steps, max_steps), label="steps")
    n = draw(st.integers(1, max_hidden), label="hidden_size")
    m = draw(st.integers(1, max_input), label="input_size")
    batch = draw(st.integers(1, max_batch), label="batch")
    w_exp = draw(st.integers(*weight_exps), label="weight exponent")
    shift = draw(st.sampled_from([0.0, 1.0, 3.0]), label="forget shift")
    b_ih = _array(draw, (4 * n,), -1, exact_in)
    b_ih[n:2 * n] += shift
    b_ih = round_to(b_ih, exact_in)  # the shifted sum rounded to exact_in
    w_hh = _array(draw, (4 * n, n), w_exp, exact_in) if hidden_feedback else torch.zeros(4 * n, n, dtype=torch.float64)
    params = LSTMParams(_array(draw, (4 * n, m), w_exp, exact_in), w_hh, b_ih, _array(draw, (4 * n,), -2, exact_in))
    return LSTMSequence(params, _inputs(draw, steps, batch, m, exact_in), _array(draw, (batch, n), -1, exact_in),
                        _array(draw, (batch, n), 0, exact_in),
                        drawn=_with_exact_in({"weight_exp": w_exp, "forget_shift": shift,
                                              "hidden_feedback": hidden_feedback}, exact_in))


def sequences(*, min_steps: int = 1, max_steps: int = 6, max_hidden: int = 4, max_input: int = 3,
              max_batch: int = 2, weight_exps: tuple[int, int] = (-3, 0), hidden_feedback: bool = True,
              exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """Generic LSTM sequences (G4). hidden_feedback=False sets W_hh = 0: gates that do not read h.

    exact_in: every value (parameters, inputs, initial state) is exactly representable in this
    dtype (torch.float64, float32, bfloat16 or float16) and finite there: pass the narrowest dtype
    the check runs the cell in, so that all dtypes see the same inputs.
    """
    check_exact_in(exact_in)
    _check_int("min_steps", min_steps, 1)
    _check_int("max_steps", max_steps, min_steps)
    _check_int("max_hidden", max_hidden, 1)
    _check_int("max_input", max_input, 1)
    _check_int("max_batch", max_batch, 1)
    _check_range("weight_exps", weight_exps, -30, 3)
    if not isinstance(hidden_feedback, bool):
        raise InvalidArgument(f"hidden_feedback must be a bool, got {hidden_feedback!r}")
    return _sequences(min_steps, max_steps, max_hidden, max_input, max_batch, weight_exps, hidden_feedback, exact_in)


def random_sequence(seed: int, *, steps: int, hidden: int = 4, input_size: int = 3, batch: int = 2,
                    weight_exp: int = -1, forget_shift: float = 3.0, hidden_feedback: bool = True,
                    exact_in: torch.dtype = DEFAULT_EXACT_IN) -> LSTMSequence:
    """A fixed pseudo-random sequence (not a strategy): for sizes Hypothesis cannot draw, e.g. G4's T = 10^4.

    Weights uniform in ±2^weight_exp, biases in ±1/2 plus `forget_shift` on the forget gate
    (3: f ≈ 0.95, memory over tens of steps, so errors have room to accumulate), inputs in
    ±1, c_0 in ±1, h_0 in ±1/2; all exact in `exact_in` (default float32, as always: pass the
    narrowest dtype the check runs in). Deterministic in `seed`.
    """
    check_exact_in(exact_in)
    for name, v, lo in (("steps", steps, 1), ("hidden", hidden, 1), ("input_size", input_size, 1), ("batch", batch, 1)):
        _check_int(name, v, lo)
    _check_int("weight_exp", weight_exp, -60)
    if 2.0 ** weight_exp * (input_size + hidden) + 1 + abs(forget_shift) > torch.finfo(exact_in).max / 4:
        raise InvalidArgument(f"weight_exp={weight_exp}: pre-activations up to 2^{weight_exp} (m + n) overflow "
                              f"exact_in={exact_in}")
    gen = torch.Generator().manual_seed(seed)
    uni = lambda *shape: 2 * torch.rand(*shape, generator=gen, dtype=torch.float64) - 1  # noqa: E731
    n, m = hidden, input_size
    b_ih = uni(4 * n) / 2
    b_ih[n:2 * n] += forget_shift
    w_hh = uni(4 * n, n) * 2.0 ** weight_exp if hidden_feedback else torch.zeros(4 * n, n, dtype=torch.float64)
    r = lambda t: round_to(t, exact_in)  # noqa: E731
    params = LSTMParams(r(uni(4 * n, m) * 2.0 ** weight_exp), r(w_hh), r(b_ih), torch.zeros(4 * n, dtype=torch.float64))
    return LSTMSequence(params, r(uni(steps, batch, m)), r(uni(batch, n) / 2), r(uni(batch, n)),
                        drawn=_with_exact_in({"seed": seed, "weight_exp": weight_exp, "forget_shift": forget_shift,
                                              "hidden_feedback": hidden_feedback}, exact_in))
