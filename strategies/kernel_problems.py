"""One-step LSTM problems at the sizes real kernels break at: tile tails, block caps, large batches.

Custom LSTM kernels (CUDA, Triton, C++) compute in tiles and blocks; their bugs live at the
edges: a hidden width one past a tile (2^k + 1), one short of it (2^k - 1), a block cap
(units beyond 128 dropped, FlagGems #5014), a batch that is not a multiple of 8 (cuDNN's
persistent algorithm, pytorch PR #48070) or past a grid cap. `kernel_step_problems` draws:

- hidden and input widths from KERNEL_WIDTHS: 1 .. 9 and 2^k - 1, 2^k, 2^k + 1 for k = 4 .. 8
  (up to 257);
- batches from KERNEL_BATCHES: 1 .. 4, multiples of 8 and their neighbours up to 65
  (13, 31, 33, 63, 65 are not multiples of 8);
- values from a seeded torch Generator (Hypothesis cannot draw 10^5 elements one by one):
  Hypothesis draws the sizes, the exponents and the seed, and shrinks them; the values are
  uniform(-1, 1) times a power of two, rounded to `exact_in`, so every row is distinct
  (continuous draws) and every value exact in the dtype under test, as in step_problems.

Weights are scaled by 1/sqrt(width) (a power of two) as initialisations do, so gates stay
in the regimes of step_problems at every size instead of saturating because the width grew.
`extreme_step_problems` is the opposite: pre-activations of hundreds to thousands, where
exp-based formulas overflow (e^89 in float32, e^710 in float64).
"""
from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.strategies.exact import DEFAULT_EXACT_IN, check_exact_in, round_to
from lstm_claims.strategies.long_range_sequences import check_range, seeded_uniform
from lstm_claims.strategies.lstm_problems import FORGET_SHIFTS, StepProblem

KERNEL_WIDTHS = tuple(sorted({*range(1, 10), *(2 ** k + d for k in range(4, 9) for d in (-1, 0, 1))}))
KERNEL_BATCHES = (1, 2, 3, 4, 7, 8, 9, 13, 16, 31, 32, 33, 63, 64, 65)


def _sizes(values, max_value):
    return st.sampled_from([v for v in values if v <= max_value])


def kernel_step_problem(batch: int, input_size: int, hidden_size: int, *, weight_exp: int = 0, cell_exp: int = 0,
                        forget_shift: float = 0.0, seed: int = 0, exact_in: torch.dtype = DEFAULT_EXACT_IN,
                        kind: str = "kernel sizes", same_sign: bool = False, loss_reads: str = "both") -> StepProblem:
    """One problem of the kind kernel_step_problems draws, built from its sizes, exponents and seed
    (the checks' explicit examples use it to reach the tile tails in every run).

    same_sign: x, h, W_ih and W_hh non-negative (x as after a ReLU), so every product of the two GEMMs has
    the same sign and their partial sums grow to the full Σ|terms|, and bias_ih = minus the batch's mean of
    those sums, so the pre-activations stay of order 1 (gates not saturated: an error in a shows). Where an
    accumulator of the dtype's own precision (bfloat16, float16) loses most: with random signs the partial
    sums stay near sqrt(K) of a term and its rounding errors stay inside L0's float32-accumulation bound.

    loss_reads: "both" (cotangents on h_next and c_next), "h" or "c" (the other cotangent zero: L0's backward
    then leaves that output out of the loss, claims/through_cell.vjps, as a loss on h_t alone does)."""
    if loss_reads not in ("both", "h", "c"):
        raise ValueError(f"loss_reads must be 'both', 'h' or 'c', got {loss_reads!r}")
    n, m = hidden_size, input_size
    # 1/sqrt(width), rounded to a power of two so that scaling keeps values exact.
    scale_ih, scale_hh = (-round(math.log2(math.sqrt(k))) for k in (m, n))
    u = lambda shape, exp, k: seeded_uniform(shape, exp, seed * 16 + k, exact_in=exact_in)  # noqa: E731
    b_ih = u((4 * n,), -1, 2)
    b_ih[n:2 * n] += forget_shift
    params = LSTMParams(weight_ih=u((4 * n, m), weight_exp + scale_ih, 0),
                        weight_hh=u((4 * n, n), weight_exp + scale_hh, 1),
                        bias_ih=round_to(b_ih, exact_in), bias_hh=u((4 * n,), -1, 3))
    x, h, c = u((batch, m), 1, 4), u((batch, n), 0, 5), u((batch, n), cell_exp, 6)
    if same_sign:
        x, h = x.abs(), h.abs()
        w_ih, w_hh = params.weight_ih.abs(), params.weight_hh.abs()
        shift = torch.zeros(4 * n, dtype=torch.float64)
        shift[n:2 * n] = forget_shift
        centre = round_to(shift - (x.mean(0) @ w_ih.T + h.mean(0) @ w_hh.T), exact_in)
        params = LSTMParams(w_ih, w_hh, centre, params.bias_hh)
    o_prev = round_to(u((batch, n), 0, 7).abs() * 0.5 + 0.25, exact_in)  # in [1/4, 3/4]
    v_h, v_c = u((batch, n), 0, 8), u((batch, n), 0, 9)
    if loss_reads != "both":
        v_h, v_c = (v_h, torch.zeros_like(v_c)) if loss_reads == "h" else (torch.zeros_like(v_h), v_c)
    drawn = {"kind": kind, "B": batch, "m": m, "n": n, "weight_exp": weight_exp, "cell_exp": cell_exp,
             "forget_shift": forget_shift, "seed": seed}
    if same_sign:
        drawn["same_sign"] = True
    if loss_reads != "both":
        drawn["loss_reads"] = loss_reads
    return StepProblem(params, x, h, c, o_prev, v_h, v_c, drawn)


@st.composite
def _kernel_problems(draw, max_hidden, max_input, max_batch, weight_exps, cell_exps, exact_in, label):
    n = draw(_sizes(KERNEL_WIDTHS, max_hidden), label="hidden_size")
    m = draw(_sizes(KERNEL_WIDTHS, max_input), label="input_size")
    batch = draw(_sizes(KERNEL_BATCHES, max_batch), label="batch")
    w_exp = draw(st.integers(*weight_exps), label="weight exponent")
    c_exp = draw(st.integers(*cell_exps), label="cell exponent")
    shift = draw(st.sampled_from(FORGET_SHIFTS), label="forget shift")
    seed = draw(st.integers(0, 2 ** 31 - 1), label="seed")
    return kernel_step_problem(batch, m, n, weight_exp=w_exp, cell_exp=c_exp, forget_shift=shift, seed=seed,
                               exact_in=exact_in, kind=label)


# Explicit examples of the kernel-size checks: every run reaches a tile tail past 256 with a batch
# past 64 (65), and one past 128 with a batch off a multiple of 8 (13).
KERNEL_EXAMPLES = (kernel_step_problem(65, 129, 257, seed=1), kernel_step_problem(13, 255, 129, seed=2),
                   # Two GEMMs of m = 767 and n = 129 same-sign terms (K = 898): an accumulator kept in bfloat16 or
                   # float16 fails here. Measured with tests/cells/low_precision_mutants.py's
                   # HalfAccumulatedPreactivations (one rounding per term) over seeds 3-7: 1.32-1.67 times the
                   # allowance in bfloat16, 1.66-1.99 in float16 (0.09-0.20 on random-sign examples of m = 255-2047);
                   # torch.nn.LSTMCell (float32 accumulation) 0.017-0.026. Sizes tried: m = 1023 and 2047 gave
                   # less in bfloat16 (1.05-1.37, 0.54-0.62: its 8 bits stagnate the sum early). Cost: 0.02 s a case.
                   kernel_step_problem(5, 767, 129, seed=3, same_sign=True, kind="same-sign accumulation"))
# Explicit examples of L0's backward: a loss that reads only h_next (the usual one in training: no gradient
# arrives for c_t) and one that reads only c_next, in every case. The draws reach both too (a zero v_c in about
# 1 example in 6), but not in every case's first examples: measured, `--fail-fast` caught
# tests/cells/mutants.py's UnreadCellOutputSkipsCellPath only at the float32 case before these existed.
# A batch of 1: the path is the point, and tests/meta/test_cell_catalogue.py shows a batch-only bug invisible at
# batch 1 with L0's forward and backward (their explicit examples included).
UNREAD_OUTPUT_EXAMPLES = (kernel_step_problem(1, 4, 5, seed=21, loss_reads="h", kind="loss on h_next only"),
                          kernel_step_problem(1, 3, 6, seed=22, loss_reads="c", kind="loss on c_next only"))
# The Jacobian claims (L1, L2, L3, L5) draw widths up to 6; this explicit example takes them to a tile
# tail (n = 129 = 2^7 + 1, m = 17, a batch of 9, not a multiple of 8) in every run. Affordable since
# through_cell.c_jacobian batches the n backward passes (claims/through_cell.py: _rows_of).
JACOBIAN_KERNEL_EXAMPLES = (kernel_step_problem(9, 17, 129, seed=5),)


def kernel_step_problems(*, max_hidden: int = 257, max_input: int = 257, max_batch: int = 65,
                         weight_exps: tuple[int, int] = (-2, 2), cell_exps: tuple[int, int] = (-4, 5),
                         exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """One-step problems at tile-boundary widths and large batches (module docstring).

    weight_exps are exponents of the weights *after* the 1/sqrt(width) scaling: 2^-2 .. 2^2
    spans nearly linear to saturating gates at every width.
    """
    check_exact_in(exact_in)
    check_range("max_hidden", 1, max_hidden, 1)
    check_range("max_input", 1, max_input, 1)
    check_range("max_batch", 1, max_batch, 1)
    check_range("weight_exps", *weight_exps, -30)
    check_range("cell_exps", *cell_exps, -30)
    if exact_in == torch.float16 and (weight_exps[1] > 4 or cell_exps[1] > 8):
        raise ValueError("kernel_step_problems: float16 needs weight_exps <= 4 and cell_exps <= 8 (range 65504)")
    return _kernel_problems(max_hidden, max_input, max_batch, tuple(weight_exps), tuple(cell_exps), exact_in,
                            "kernel sizes")


def extreme_step_problems(*, max_hidden: int = 9, max_batch: int = 4, exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """Pre-activations of a few hundred to a few thousand (|a| past 88 and 710, where e^a overflows
    float32 and float64) and cell states up to 2^9: saturated gates, large tanh arguments."""
    check_exact_in(exact_in)
    if exact_in == torch.float16:
        raise ValueError("extreme_step_problems: float16's range (65504) is its own regime; not drawn here")
    return _kernel_problems(max_hidden, max_hidden, max_batch, (9, 11), (5, 9), exact_in, "extreme pre-activations")
