"""Buggy LSTM cells that are wrong only in low precision (bfloat16, float16).

Each is correct in float64 and float32 (it computes exactly what a correct cell computes
there), so only the low-precision cases of the claim suite can catch it; `LOW_PRECISION_MUTANTS`
records the bug, the dtypes it shows in, and the claims that must catch it there, each
established by running the in-process checks in those dtypes
(tests/meta/test_low_precision_catalogue.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lstm_claims.reference.reference_cell import ReferenceLSTMCell

HALF = (torch.bfloat16, torch.float16)


class _SlipFunction(torch.autograd.Function):
    """The LSTM step with a hand-written backward; σ'(a^f) is 10% too large in half precision only."""

    @staticmethod
    def forward(ctx, x, h, c, w_ih, w_hh, b_ih, b_hh):
        a = x @ w_ih.t() + b_ih + h @ w_hh.t() + b_hh
        ai, af, ag, ao = a.chunk(4, 1)
        i, f, g, o = torch.sigmoid(ai), torch.sigmoid(af), torch.tanh(ag), torch.sigmoid(ao)
        c_next = f * c + i * g
        t = torch.tanh(c_next)
        ctx.save_for_backward(x, h, c, w_ih, w_hh, i, f, g, o, t)
        return o * t, c_next

    @staticmethod
    def backward(ctx, gh, gc):
        x, h, c, w_ih, w_hh, i, f, g, o, t = ctx.saved_tensors
        dc = gc + gh * o * (1 - t * t)
        ds_f = f * (1 - f)
        if x.dtype in HALF:
            # The slip: a half-precision branch of the kernel (pytorch PR #4611: a fused cell's backward
            # wrong for float16 only) with the forget gate's derivative 10% too large.
            ds_f = ds_f * 1.1
        da = torch.cat([dc * g * i * (1 - i), dc * c * ds_f, dc * i * (1 - g * g), gh * t * o * (1 - o)], 1)
        db = da.sum(0)
        return da @ w_ih, da @ w_hh, dc * f, da.t() @ x, da.t() @ h, db, db


class HalfForgetDerivativeSlip(ReferenceLSTMCell):
    """Backward: σ'(a^f) is 1.1 σ(a^f)(1 - σ(a^f)) in bfloat16 and float16 (a 10% error in a gate's derivative)."""

    def forward(self, x, state):
        h, c = state
        return _SlipFunction.apply(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class TanhAsSinhOverCosh(ReferenceLSTMCell):
    """tanh(c_t) as sinh(c) / cosh(c) with c clamped to ±20 first ("tanh(20) is 1 in float64 already"):
    exact enough in float64, float32 and bfloat16, but cosh(c) overflows float16 (65504) at |c| > 11.1
    and the quotient is inf / inf = NaN: an overflow only float16 reaches."""

    def forward(self, x, state):
        h, c = state
        a = x @ self.weight_ih.t() + self.bias_ih + h @ self.weight_hh.t() + self.bias_hh
        ai, af, ag, ao = a.chunk(4, 1)
        c_next = torch.sigmoid(af) * c + torch.sigmoid(ai) * torch.tanh(ag)
        cc = c_next.clamp(-20.0, 20.0)
        return torch.sigmoid(ao) * (torch.sinh(cc) / torch.cosh(cc)), c_next


class Float16StateKeptInBfloat16(ReferenceLSTMCell):
    """A mixed-precision kernel that keeps the cell state in bfloat16 (8 significant bits) when asked for
    float16 (11 bits): c_t rounded to bfloat16 before it is returned and used. Exact in every other dtype."""

    def forward(self, x, state):
        h, c = state
        h_next, c_next = super().forward(x, state)
        if x.dtype == torch.float16:
            c_next = c_next.to(torch.bfloat16).to(torch.float16)
            h_next = torch.sigmoid((x @ self.weight_ih.t() + self.bias_ih + h @ self.weight_hh.t()
                                    + self.bias_hh).chunk(4, 1)[3]) * torch.tanh(c_next)
        return h_next, c_next


def _accumulated_in_input_dtype(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x @ w.T summed one input column at a time, every partial sum rounded to x's dtype."""
    acc = torch.zeros(x.shape[0], w.shape[0], dtype=x.dtype, device=x.device)
    for k in range(x.shape[1]):
        acc = acc + x[:, k:k + 1] * w[:, k]
    return acc


class HalfAccumulatedPreactivations(ReferenceLSTMCell):
    """The pre-activation GEMMs accumulate in the input dtype, as a hand-written kernel does whose accumulator
    is declared in it (in Triton, `tl.zeros(..., dtype=x.dtype)` where float32 belongs). In bfloat16 and float16 every partial sum is rounded
    to 8 or 11 bits, an error growing with the input width m and the width n; in float32 and float64 it is one
    more summation order, within the bounds. Wrong in low precision at kernel widths only."""

    def forward(self, x, state):
        h, c = state
        a = (_accumulated_in_input_dtype(x, self.weight_ih) + self.bias_ih
             + _accumulated_in_input_dtype(h, self.weight_hh) + self.bias_hh)
        ai, af, ag, ao = a.chunk(4, 1)
        c_next = torch.sigmoid(af) * c + torch.sigmoid(ai) * torch.tanh(ag)
        return torch.sigmoid(ao) * torch.tanh(c_next), c_next


@dataclass(frozen=True)
class LowPrecisionMutant:
    name: str
    spec: str  # --lstm-impl
    dtypes: tuple  # the dtypes it is wrong in (torch dtypes)
    must_fail: tuple  # claim IDs whose checks fail on it in each of those dtypes, measured (see the test)
    shows: str


_M = "tests.cells.low_precision_mutants:"
LOW_PRECISION_MUTANTS = (
    LowPrecisionMutant("forget-gate derivative 10% off in half precision", _M + "HalfForgetDerivativeSlip",
                       HALF, ("L0",), "backward, bfloat16 and float16 only"),
    LowPrecisionMutant("tanh as sinh/cosh (float16 overflow)", _M + "TanhAsSinhOverCosh",
                       (torch.float16,), ("L0",), "forward, float16 with |c_t| > 11 only"),
    LowPrecisionMutant("float16 cell state kept in bfloat16", _M + "Float16StateKeptInBfloat16",
                       (torch.float16,), ("L0",), "forward, float16 only"),
)

# Wrong in low precision at kernel widths only: caught by L0's forward-kernel-sizes on its same-sign example
# (strategies/kernel_problems.py: KERNEL_EXAMPLES), within the allowance on the small and the random-sign
# problems (tests/meta/test_low_precision_catalogue.py).
KERNEL_WIDTH_LOW_PRECISION_MUTANTS = (
    LowPrecisionMutant("pre-activation GEMMs accumulated in the input dtype", _M + "HalfAccumulatedPreactivations",
                       HALF, ("L0",), "forward-kernel-sizes, bfloat16 and float16, same-sign GEMM terms, K ~ 900"),
)


# --- sequence modules wrong only in low precision (L0's sequence checks; tests/meta/test_low_precision_sequences.py) --
# torch.nn.LSTM's contract, a Python loop of one step per time step (tests/cells/sequences.py), with a
# bug in the half-precision branch of the time loop only.

from tests.cells.sequences import ChunkStateDropped, _LSTMContract  # noqa: E402  (the sequence modules' contract)


class HalfChunkStateDropped(ChunkStateDropped):
    """In bfloat16 and float16, chunks of 64 steps each restart from a zero cell state (a half-precision kernel
    that does not carry c across a chunk boundary: tests/cells/sequences.py's ChunkStateDropped); float32 and
    float64 run one correct loop."""

    def loop(self, xs, h, c):
        if xs.dtype not in HALF:
            return _LSTMContract.loop(self, xs, h, c)
        return super().loop(xs, h, c)


class Float16CarriedStateInBfloat16(_LSTMContract):
    """In float16, the cell state carried from step to step (and returned as c_n) is kept in a bfloat16 buffer
    (8 significant bits instead of 11); each step's h_t is computed from the float16 c_t before it is stored."""

    def loop(self, xs, h, c):
        if xs.dtype != torch.float16:
            return super().loop(xs, h, c)
        hs = []
        for x in xs:
            h, c = self.step(x, h, c)
            c = c.to(torch.bfloat16).to(torch.float16)
            hs.append(h)
        return torch.stack(hs), h, c


class HalfChunkGradientCut(_LSTMContract):
    """In bfloat16 and float16, the state's graph is cut at every 64-step chunk boundary (h and c detached: a
    half-precision kernel that truncates backpropagation through time): the forward is right in every dtype,
    the gradients of the half-precision ones miss everything that crosses a boundary."""

    CHUNK = 64

    def loop(self, xs, h, c):
        if xs.dtype not in HALF:
            return super().loop(xs, h, c)
        hs = []
        for t, x in enumerate(xs):
            if t and t % self.CHUNK == 0:
                h, c = h.detach(), c.detach()
            h, c = self.step(x, h, c)
            hs.append(h)
        return torch.stack(hs), h, c


LOW_PRECISION_SEQUENCE_MUTANTS = (
    LowPrecisionMutant("half-precision chunks of 64 restart from c = 0", _M + "HalfChunkStateDropped",
                       HALF, ("L0",), "sequence-forward, bfloat16 and float16, T > 64"),
    LowPrecisionMutant("float16 carried cell state kept in bfloat16", _M + "Float16CarriedStateInBfloat16",
                       (torch.float16,), ("L0",), "sequence-forward, float16 only"),
    LowPrecisionMutant("half-precision backpropagation cut every 64 steps", _M + "HalfChunkGradientCut",
                       HALF, ("L0",), "sequence-backward, bfloat16 and float16, T > 64"),
)


# G2/G3 (helper B) ---------------------------------------------------------------------------------
# A mutant that only the low-precision G2 cases can catch: kept in its own tuple, because
# tests/meta/test_low_precision_catalogue.py runs L0's forward/backward checks on LOW_PRECISION_MUTANTS,
# and this one is caught by G2 (tests/meta/test_low_precision_g2_g3.py runs it).

LOSS_SCALE = 2.0 ** 10  # a power of two: scaling by it is exact wherever the scaled value stays in range


class _LossScaledFunction(_SlipFunction):
    """The LSTM step (_SlipFunction's forward) with a hand-written backward that scales the incoming cotangents
    by LOSS_SCALE and unscales the results (static loss scaling inside the kernel, "so that float16 gradients
    do not underflow")."""

    @staticmethod
    def backward(ctx, gh, gc):
        x, h, c, w_ih, w_hh, i, f, g, o, t = ctx.saved_tensors
        gh, gc = gh * LOSS_SCALE, gc * LOSS_SCALE  # the bug: 2^10 |v| overflows float16 once |v| > 64
        dc = gc + gh * o * (1 - t * t)
        da = torch.cat([dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g * g), gh * t * o * (1 - o)], 1)
        db = da.sum(0)
        return tuple(r / LOSS_SCALE for r in (da @ w_ih, da @ w_hh, dc * f, da.t() @ x, da.t() @ h, db, db))


class Float16LossScaledBackward(ReferenceLSTMCell):
    """Backward: cotangents scaled by 2^10 and the gradients unscaled. Exact in float64, float32 and bfloat16
    (a power of two, and their range holds 2^10 times any gradient here); in float16 a cotangent above 64
    becomes inf: G1's exploding gradient at T = 16 (elements up to ~2e3, exact) comes back inf, where a
    correct cell's is finite up to T = 23."""

    def forward(self, x, state):
        h, c = state
        return _LossScaledFunction.apply(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


G2_G3_MUTANTS = (
    LowPrecisionMutant("in-kernel loss scaling 2^10 (float16 backward overflow)", _M + "Float16LossScaledBackward",
                       (torch.float16,), ("G2",), "backward, float16 with cotangents above 64 only"),
)


# --- wrong only under autocast (L0's autocast-bfloat16 and autocast-float16) ---------------------------


class AutocastSkipsHiddenBias(ReferenceLSTMCell):
    """A fused mixed-precision path that drops bias_hh: right in every plain dtype, wrong only when
    torch.autocast is on (the path a mixed-precision training loop takes)."""

    def forward(self, x, state):
        if not torch.is_autocast_enabled(x.device.type):
            return super().forward(x, state)
        h, c = state
        gates = x @ self.weight_ih.t() + self.bias_ih + h @ self.weight_hh.t()
        i, f, g, o = gates.chunk(4, 1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return (torch.sigmoid(o) * torch.tanh(c_next)).to(x.dtype), c_next.to(x.dtype)
