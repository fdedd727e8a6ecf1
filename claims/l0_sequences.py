"""L0 over whole sequences: the implementation's own time loop computes the standard LSTM.

A sequence module (torch.nn.LSTM, a fused, chunked or persistent kernel, a SequenceAdapter)
owns its time loop; the bugs that live there show only at some lengths, layouts or initial
states: state not carried across a time-chunk boundary, an initial state ignored, a
batch-first transposition, a wrong final state, a bug that starts after hundreds of steps.
These checks run the module once over the whole sequence (strategies/sequence_checks.py:
T from 1 to 400 drawn, 257 and 1000 as explicit examples, both layouts, zero and non-zero
initial states) and compare:

- forward: every step's output h_t and the final (h_T, c_T) with the standard LSTM step
  taken from the module's own h_(t-1) and the reconstructed c_(t-1), within the carried
  bound of claims/sequence_tolerances.py;
- backward: the vector-Jacobian product of cotangents on every h_t and on (h_T, c_T) with
  respect to h_0, c_0, every x_t and the four parameters, against the closed-form unrolled
  backward along the module's trajectory (bounds of claims/long_range_tolerances.unrolled_vjp_bound;
  for a sequence module, whose cell states between the ends are reconstructed, plus how far its
  own states may be from the reconstruction: the forward's carried E_t, `trajectory_mismatch`).

Both run in the four dtypes: values drawn exact in the case's dtype (per_dtype), explicit
examples rounded to it (on_impl_exact), every bound the dtype's (float32 accumulation in
bfloat16 and float16: claims/tolerances.py; what T steps add: claims/sequence_tolerances.py,
claims/long_range_tolerances.compounded). The low-precision sequence mutants of
tests/cells/low_precision_mutants.py show what they catch there
(tests/meta/test_low_precision_sequences.py).

For a cell (torch.nn.LSTMCell's contract) the time loop is the kit's, and the same checks
confirm the cell composes over long sequences.
"""
from __future__ import annotations

import torch

from lstm_claims.claims.cell_under_test import PARAM_NAMES, is_sequence_module, layouts_of
from lstm_claims.claims.sequence_tolerances import sequence_forward_bound
from lstm_claims.claims.long_range_tolerances import unrolled_vjp_bound
from lstm_claims.claims.unrolled_cell import run
from lstm_claims.claims.violation import assert_within, where
from lstm_claims.strategies.sequence_checks import SequenceCheck, sequence_check

WHY_FORWARD = ("one-step rounding bounds of claims/tolerances.py, the difference of the module's c_(t-1) from the "
               "reconstruction carried forward through f <= 1 (claims/sequence_tolerances.py)")

# The explicit examples: past every power-of-two chunk up to 256 at an odd length, and a long run
# (a bug that starts after several hundred steps), both with non-zero initial states. The long run's
# batch of 66 puts T * B = 66,000 past 65,535, where MIOpen's LSTM went wrong (pytorch #177834);
# measured, it costs about 0.25 s a case more than a batch of 2 (the per-step work is vectorized).
SEQUENCE_EXAMPLES = (sequence_check(257, 3, 5, 7, layout="batch_first", seed=11),
                     sequence_check(1000, 66, 3, 4, layout="time_first", seed=12),
                     sequence_check(1, 2, 3, 2, layout="batch_first", seed=13))
# The backward's carried bound (claims/long_range_tolerances.unrolled_vjp_bound) is evaluated step by
# step, about 2.6 ms a step on this machine's cores (measured in session 5: 0.34 s at T = 131): its
# examples stop past the 128-step chunk (a choice, for the ci budget; the forward examples above
# reach T = 1000).
BACKWARD_EXAMPLES = (sequence_check(131, 3, 4, 5, layout="batch_first", seed=14),
                     sequence_check(1, 2, 3, 2, layout="time_first", seed=15))
BACKWARD_BANDS = ((1, 12), (13, 160))
WHY_BACKWARD = ("one-step rounding bounds of claims/tolerances.py carried backwards through the step's absolute-value "
                "backward (claims.long_range_tolerances.unrolled_vjp_bound); for a sequence module, plus its own cell "
                "states' distance from the reconstruction (trajectory_mismatch)")


def _layout(cell, problem: SequenceCheck) -> str:
    return problem.layout if problem.layout in layouts_of(cell) else "time_first"


def _context(cut, cell, problem: SequenceCheck, device, dtype, layout: str) -> str:
    loop = ("through the module's own forward over the whole sequence" if is_sequence_module(cell)
            else "the cell stepped by the kit")
    s = problem.seq
    return (f"sequence: {where(device, dtype)}, T={s.steps} B={s.batch} m={s.input_size} n={s.hidden_size}, "
            f"{layout.replace('_', '-')}, {'zero' if problem.zero_initial_state else 'non-zero'} initial state, {loop}")


def check_sequence_forward(cut, problem: SequenceCheck, device, dtype) -> dict:
    """Every h_t and the final (h_T, c_T) of the module's sequence forward against the standard LSTM."""
    __tracebackhide__ = True
    seq = problem.seq
    cell = cut.with_params(seq.params, device, dtype)
    layout = _layout(cell, problem)
    with torch.no_grad():
        h0, c0 = (t.to(device=device, dtype=dtype) for t in (seq.h0, seq.c0))
        hs, (h_T, c_T) = cut.sequence(cell, seq.xs.to(device=device, dtype=dtype), h0, c0, layout=layout)
    as64 = lambda t: t.detach().to("cpu", torch.float64)  # noqa: E731
    hs = as64(hs)
    bound = sequence_forward_bound(seq.params, seq.xs, seq.h0, seq.c0, hs, dtype)
    ctx = _context(cut, cell, problem, device, dtype, layout)
    # Where a time loop goes wrong is its first wrong step (a chunk boundary, step 300, the last step).
    wrong = ((hs - bound.h).abs() > bound.h_allowed) | ~torch.isfinite(hs)
    if wrong.any():
        steps = wrong.flatten(1).any(1).nonzero().flatten().tolist()
        ctx += f"; the outputs first differ at step {steps[0] + 1} of {seq.steps} ({len(steps)} steps differ)"
    worst = max(
        assert_within("L0", "h_t, the output at each step (index: step - 1, row, unit)", hs, bound.h,
                      bound.h_allowed, context=ctx, why=WHY_FORWARD),
        assert_within("L0", "h_T, the final hidden state", as64(h_T), bound.h[-1], bound.h_allowed[-1],
                      context=ctx, why=WHY_FORWARD),
        assert_within("L0", "c_T, the final cell state", as64(c_T), bound.c_T, bound.c_T_allowed,
                      context=ctx, why=WHY_FORWARD))
    return {"worst_error_over_allowed_sequence": worst, "longest_sequence": seq.steps}


def check_sequence_backward(cut, problem: SequenceCheck, device, dtype) -> dict:
    """The module's VJPs through the whole sequence against the closed-form unrolled backward."""
    __tracebackhide__ = True
    seq = problem.seq
    cell = cut.with_params(seq.params, device, dtype)
    layout = _layout(cell, problem)
    ctx = _context(cut, cell, problem, device, dtype, layout) + ", backward"
    got = run(cut, seq, device, dtype, inject=problem.inject(), layout=layout)
    # A sequence module's c_1..c_(T-1) are reconstructed from its h's: the closed form is taken along them, and
    # the module differentiates along its own, within the forward's carried E_t (claims/sequence_tolerances.py).
    # A cell's states are its own outputs: no mismatch.
    c_error = (sequence_forward_bound(seq.params, seq.xs, seq.h0, seq.c0, got.hs, dtype).c_allowed
               if is_sequence_module(cell) else None)
    ref, allowed = unrolled_vjp_bound(seq, got.hs, got.cs, problem.inject(), dtype, c_error=c_error)
    g, r, a = got.grads.as_dict(), ref.as_dict(), allowed.as_dict()
    for name in ("c0", "h0", "xs", *PARAM_NAMES):
        assert_within("L0", f"d/d{name} of the unrolled cell", g[name], r[name], a[name], context=ctx,
                      why=WHY_BACKWARD)
    worst = max(float(((g[k] - r[k]).abs() / a[k].clamp_min(torch.finfo(torch.float64).tiny)).max()) for k in g)
    return {"worst_error_over_allowed_sequence": worst, "longest_sequence": seq.steps}
