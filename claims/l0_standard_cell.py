"""L0 — the cell under test is the standard LSTM.

Its (h_next, c_next) equal the equations of CLAIMS.md, in float64, float32, bfloat16 and float16 (each
against the float64 reference, within a tolerance derived from the dtype), and so does
its backward: vector-Jacobian products with respect to x, h, c and the four parameters.
Where kernels break (sizes, layouts, inference paths, side effects, extremes) is
claims/l0_kernel_regimes.py; whole sequences through the implementation's own time loop
are claims/l0_sequences.py. Every other claim presupposes L0.
"""
from __future__ import annotations

from functools import partial

import torch

from lstm_claims.claims import through_cell
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.low_precision import ALL_DTYPES, on_impl_exact
from lstm_claims.claims import l0_autocast as A
from lstm_claims.claims import l0_float16_range as R
from lstm_claims.claims.record import Check, drawn_from, on_impl
from lstm_claims.claims import l0_kernel_regimes as K
from lstm_claims.claims import l0_sequences as S
from lstm_claims.strategies.sequence_checks import sequence_checks
from lstm_claims.strategies import step_problems
from lstm_claims.strategies.exact import per_dtype
from lstm_claims.strategies.kernel_problems import (KERNEL_EXAMPLES, UNREAD_OUTPUT_EXAMPLES, extreme_step_problems,
                                                     kernel_step_problems)
from lstm_claims.claims.tolerances import forward_tolerance, vjp_tolerance
from lstm_claims.claims.violation import assert_within, where
from lstm_claims.reference.lstm_step import lstm_step, lstm_step_vjp

CLAIM = register(Claim(
    id="L0",
    title="the cell under test is the standard LSTM",
    statement="c_t = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t, with the gates σ/tanh of W_ih x_t + W_hh h_{t-1} + b "
              "(torch.nn.LSTMCell conventions, gate order i, f, g, o); h_t = o_t ⊙ tanh(c_t).",
    condition="always (it defines the object of every other claim)",
    quantity="|cell - float64 reference| of h_next, c_next and of the VJPs with respect to x, h, c, "
             "weight_ih, weight_hh, bias_ih, bias_hh, elementwise against derived rounding bounds",
    unconditional=True,  # an identity or theorem: its verdict reads `holds`
))

WHY_FORWARD = "rounding bound: γ_K of Σ|W||x| per pre-activation, K = m + n + 2, carried through σ, tanh and the products"
WHY_BACKWARD = "rounding bound: γ_(6+max(4n,B)) of the backward's magnitudes plus the forward errors of the saved gates"


def check_forward(cut, problem, device, dtype) -> dict:
    """The cell's (h_next, c_next) against reference.lstm_step; returns the worst |diff|/allowed."""
    __tracebackhide__ = True
    p = problem
    h_ref, c_ref = lstm_step(p.params, p.x, p.h, p.c)
    h_cell, c_cell = through_cell.forward(cut, p, device, dtype)
    tol = forward_tolerance(p.params, p.x, p.h, p.c, dtype)
    ctx = f"{where(device, dtype)}, B={p.batch} m={p.input_size} n={p.hidden_size}, forward under torch.no_grad()"
    worst = max(assert_within("L0", "c_next", c_cell, c_ref, tol["c_next"], context=ctx, why=WHY_FORWARD),
                assert_within("L0", "h_next", h_cell, h_ref, tol["h_next"], context=ctx, why=WHY_FORWARD))
    return {"worst_error_over_allowed": worst}


def check_backward(cut, problem, device, dtype) -> dict:
    """The cell's autograd VJPs against reference.lstm_step_vjp (derived by hand)."""
    __tracebackhide__ = True
    p = problem
    ref = lstm_step_vjp(p.params, p.x, p.h, p.c, p.v_h, p.v_c).as_dict()
    got = through_cell.vjps(cut, p, device, dtype)
    tol = vjp_tolerance(p.params, p.x, p.h, p.c, p.v_h, p.v_c, dtype)
    ctx = f"{where(device, dtype)}, B={p.batch} m={p.input_size} n={p.hidden_size}, backward"
    worst = 0.0
    for name in ref:
        worst = max(worst, assert_within("L0", f"d(v·out)/d{name}", got[name], ref[name], tol[name],
                                         context=ctx, why=WHY_BACKWARD))
    return {"worst_error_over_allowed": worst}


# --- the record's checks ----------------------------------------------------------------------

# Every check runs in the four dtypes (claims/low_precision.py): values drawn exact in the case's
# dtype (per_dtype), explicit examples rounded to it (on_impl_exact), tolerances from its u.
LP = dict(dtypes=ALL_DTYPES, through_impl=True)

CLAIM.define_checks(
    Check("forward", on_impl_exact(check_forward), per_dtype(step_problems), **LP),
    Check("backward", on_impl_exact(check_backward), per_dtype(step_problems), examples=UNREAD_OUTPUT_EXAMPLES, **LP),
    # The implementation's own time loop over whole sequences (claims/l0_sequences.py), early: it is
    # cheap (its explicit examples, T = 257 and 1000, take well under a second) and catches the
    # bugs of a sequence kernel's loop, so that --fail-fast reports them in seconds.
    Check("sequence-forward", on_impl_exact(S.check_sequence_forward), per_dtype(sequence_checks),
          examples=S.SEQUENCE_EXAMPLES, **LP),
    # Where kernels break (claims/l0_kernel_regimes.py): tile tails, block caps and large batches ...
    Check("forward-kernel-sizes", on_impl_exact(K.in_regime("kernel sizes", check_forward)),
          per_dtype(kernel_step_problems), examples=KERNEL_EXAMPLES, **LP),
    Check("backward-kernel-sizes", on_impl_exact(K.in_regime("kernel sizes", check_backward)),
          per_dtype(kernel_step_problems), examples=KERNEL_EXAMPLES, **LP),
    # ... strided layouts, the inference paths, side effects and stale weights ...
    Check("non-contiguous-inputs", on_impl_exact(K.check_layouts),
          # B, n > 1: a single row or unit would make the views contiguous.
          per_dtype(lambda exact_in: kernel_step_problems(max_hidden=65, max_input=65, max_batch=33,
                                                          exact_in=exact_in).filter(
              lambda p: p.batch > 1 and p.hidden_size > 1)), **LP),
    Check("inference-paths", on_impl_exact(K.check_inference_paths),
          per_dtype(partial(kernel_step_problems, max_hidden=129, max_input=129, max_batch=33)), **LP),
    Check("no-side-effects", on_impl_exact(K.check_side_effects), per_dtype(step_problems), **LP),
    Check("weights-rewritten-between-calls", on_impl_exact(K.check_weights_rewritten), per_dtype(step_problems),
          **LP),
    # ... and pre-activations where e^a overflows (|a| > 88 in float32, > 710 in float64). Not float16:
    # pre-activations of thousands times weights of 2^11 leave its range (65504); float16's range is
    # checked by the float16-range check below, where crossing it is the finding.
    Check("forward-extreme-preactivations", on_impl_exact(K.in_regime("extreme pre-activations", check_forward)),
          per_dtype(extreme_step_problems), dtypes=("float64", "float32", "bfloat16"), through_impl=True),
    Check("backward-extreme-preactivations", on_impl_exact(K.in_regime("extreme pre-activations", check_backward)),
          per_dtype(extreme_step_problems), dtypes=("float64", "float32", "bfloat16"), through_impl=True),
    # float16 only: partial sums of the pre-activation beyond 65504 (claims/l0_float16_range.py): a finding
    # the report states where the cell's output is not finite, a failure only where nothing left the range.
    Check("float16-range", on_impl(R.check_float16_range), drawn_from(R.float16_range_problems()),
          examples=R.FLOAT16_RANGE_EXAMPLES, dtypes=("float16",), through_impl=True,
          aggregate={"float16_partial_sums_beyond_range": "sum", "float16_non_finite_outputs": "sum"}),
    # Mixed precision: the float32 module under torch.autocast to bfloat16 (claims/l0_autocast.py), CPU here.
    Check("autocast-bfloat16", on_impl(A.check_autocast), drawn_from(A.autocast_problems()), dtypes=("float32",),
          through_impl=True, max_examples_scale=1 / 6,  # bfloat16 arithmetic: the low-precision ci budget
          not_in_catalogue="a mode of use, not the cell's contract: torch.nn.LSTM's oneDNN kernel (the catalogue's "
                           "correct FusedLSTMStep) raises under CPU bfloat16 autocast, a finding for the suite's "
                           "report, not a reason to call that cell wrong in the catalogue"),
    # float16 autocast (CUDA's default autocast dtype; CPU autocast accepts it too): float16-exact values,
    # float16's bounds.
    Check("autocast-float16", on_impl(partial(A.check_autocast, autocast_dtype=torch.float16)),
          drawn_from(A.autocast_problems(torch.float16)), dtypes=("float32",),
          through_impl=True, max_examples_scale=1 / 6,  # float16 arithmetic: the low-precision ci budget
          not_in_catalogue="a mode of use, not the cell's contract (as autocast-bfloat16)"),
    # Vector-Jacobian products through the whole sequence (claims/l0_sequences.py).
    # A choice: 0.3 of the profile's examples (9 in ci, 180 in thorough), since its carried bound costs
    # about 7 ms a step (claims/l0_sequences.py); the forward check covers the same lengths cheaply.
    Check("sequence-backward", on_impl_exact(S.check_sequence_backward),
          per_dtype(partial(sequence_checks, bands=S.BACKWARD_BANDS)), examples=S.BACKWARD_EXAMPLES,
          max_examples_scale=0.3, **LP),
)
