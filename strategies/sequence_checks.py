"""Whole-sequence problems for L0's sequence checks: where a module's own time loop breaks.

A sequence implementation (torch.nn.LSTM, a fused or chunked kernel, a persistent kernel)
owns its time loop. The bugs that live there show only at some lengths, layouts or initial
states, so a `SequenceCheck` draws:

- T from three bands: short (1-12: odd and even, T = 1 included), past the usual time-chunk
  sizes (13-160: beyond chunks of 16, 32, 64 and 128), and long (161-400); the explicit
  examples of L0's sequence checks add T = 257 and T = 1000 (a bug that starts after
  several hundred steps);
- the input layout the module is run in (time-first (T, B, m) or batch-first (B, T, m),
  for a module that runs both);
- the initial state: non-zero (a bug that ignores h_0 and c_0 hid behind zero initial states
  on MPS, pytorch PR #95137) in about three examples of four, zero otherwise;
- cotangents on every step's output h_t and on the final (h_T, c_T), for the
  vector-Jacobian products.

Values are exact in `exact_in` (strategies/exact.py), as everywhere in the kit.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from hypothesis import strategies as st

from lstm_claims.pretty import repr_pretty
from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.reference.unrolled_backward import LSTMSequence
from lstm_claims.strategies.exact import DEFAULT_EXACT_IN, check_exact_in
from lstm_claims.strategies.long_range_sequences import seeded_uniform, sequence_problems

LAYOUTS = ("time_first", "batch_first")
# The bands of T (a choice: past chunk sizes of 16-128 and into the hundreds, within the ci budget).
STEP_BANDS = ((1, 12), (13, 160), (161, 400))
# Cotangents printed value by value in a falsifying example up to this many elements (as LSTMSequence prints
# its inputs, reference/unrolled_backward.py); past it, the seeded calls that built them (a choice: a screen).
COTANGENTS_PRINTED = 256


@dataclass(frozen=True)
class SequenceCheck:
    """A sequence, the layout to run it in, and the cotangents for the vector-Jacobian products."""

    seq: LSTMSequence
    layout: str
    v_hs: torch.Tensor  # (T, B, n): the cotangent on each step's output h_t
    v_cT: torch.Tensor  # (B, n): the cotangent on the final c_T
    cotangent_recipe: str = field(default="", compare=False)  # the seeded calls that built v_hs and v_cT

    _repr_pretty_ = repr_pretty  # Hypothesis prints the __repr__ below (lstm_claims/pretty.py)

    def __repr__(self) -> str:
        """The sequence's own repr, the layout, and the cotangents: their exact values when small, else the
        seeded calls that rebuild them."""
        small = self.v_hs.numel() <= COTANGENTS_PRINTED
        cotangents = (f"v_hs={self.v_hs.tolist()!r}, v_cT={self.v_cT.tolist()!r}" if small or not self.cotangent_recipe
                      else self.cotangent_recipe)
        return f"SequenceCheck(seq={self.seq!r}, layout={self.layout!r}, {cotangents})"

    @property
    def zero_initial_state(self) -> bool:
        return not bool(self.seq.h0.any() or self.seq.c0.any())

    def describe(self) -> str:
        s = self.seq
        return (f"T={s.steps} B={s.batch} m={s.input_size} n={s.hidden_size}, {self.layout.replace('_', '-')}, "
                f"{'zero' if self.zero_initial_state else 'non-zero'} initial state")

    def inject(self) -> dict:
        """{t: (v_h, v_c)} for claims/unrolled_cell.checked_gradients: v_h on every h_t, v_c on c_T."""
        T = self.seq.steps
        zero = torch.zeros_like(self.v_cT)
        return {t: (self.v_hs[t - 1], self.v_cT if t == T else zero) for t in range(1, T + 1)}


def sequence_check(T: int, batch: int, input_size: int, hidden_size: int, *, layout: str = "time_first",
                   zero_initial_state: bool = False, forget_shift: float = 1.0, seed: int = 0,
                   exact_in: torch.dtype = DEFAULT_EXACT_IN) -> SequenceCheck:
    """One SequenceCheck built from its sizes and a seed (the explicit examples: T = 257, 1000)."""
    n, m = hidden_size, input_size
    u = lambda shape, exp, k: seeded_uniform(shape, exp, seed * 16 + k, exact_in=exact_in)  # noqa: E731
    b_ih = u((4 * n,), -2, 2)
    b_ih[n:2 * n] += forget_shift
    params = LSTMParams(weight_ih=u((4 * n, m), -1, 0), weight_hh=u((4 * n, n), -1, 1), bias_ih=b_ih,
                        bias_hh=u((4 * n,), -2, 3))
    h0, c0 = u((batch, n), -1, 4), u((batch, n), 1, 5)
    if zero_initial_state:
        h0, c0 = torch.zeros_like(h0), torch.zeros_like(c0)
    seq = LSTMSequence(params, u((T, batch, m), 0, 6), h0, c0, {"seed": seed, "constructed": "sequence_check"})
    return SequenceCheck(seq, layout, u((T, batch, n), 0, 7), u((batch, n), 0, 8),
                         f"v_hs, v_cT as sequence_check({T}, {batch}, {m}, {n}, seed={seed}) builds them")


@st.composite
def _sequence_checks(draw, max_hidden, max_input, max_batch, bands, exact_in, regime):
    lo, hi = draw(st.sampled_from(bands), label="band of T")
    seq = draw(sequence_problems(min_steps=lo, max_steps=hi, max_hidden=max_hidden, max_input=max_input,
                                 max_batch=max_batch, exact_in=exact_in, **regime), label="sequence")
    if draw(st.integers(0, 3), label="zero initial state (0)") == 0:
        seq = replace(seq, h0=torch.zeros_like(seq.h0), c0=torch.zeros_like(seq.c0))
    layout = draw(st.sampled_from(LAYOUTS), label="layout")
    seed = draw(st.integers(0, 2 ** 32 - 1), label="cotangent seed")
    T, B, n = seq.steps, seq.batch, seq.hidden_size
    return SequenceCheck(seq, layout, seeded_uniform((T, B, n), 0, seed, exact_in=exact_in),
                         seeded_uniform((B, n), 0, seed + 1, exact_in=exact_in),
                         f"v_hs=seeded_uniform({(T, B, n)}, 0, {seed}, exact_in={exact_in}), "
                         f"v_cT=seeded_uniform({(B, n)}, 0, {seed + 1}, exact_in={exact_in})")


def sequence_checks(*, max_hidden: int = 6, max_input: int = 4, max_batch: int = 4, bands=STEP_BANDS,
                    exact_in: torch.dtype = DEFAULT_EXACT_IN, **regime):
    """SequenceChecks over the bands of T, both layouts, zero and non-zero initial states (module docstring).

    regime: sequence_problems' weight_exps, cell_exps, forget_shifts (their defaults otherwise), for tests
    that aim at one regime (tests/meta/test_low_precision_sequences.py: small weights, large cell states).
    """
    check_exact_in(exact_in)
    unknown = set(regime) - {"weight_exps", "cell_exps", "forget_shifts"}
    if unknown:
        raise ValueError(f"sequence_checks takes weight_exps, cell_exps, forget_shifts as regime options, "
                         f"got {sorted(unknown)}")
    bands = tuple((int(a), int(b)) for a, b in bands)
    if not bands or any(not 1 <= a <= b for a, b in bands):
        raise ValueError(f"bands must be non-empty (lo, hi) pairs with 1 <= lo <= hi, got {bands}")
    return _sequence_checks(max_hidden, max_input, max_batch, bands, exact_in, regime)
