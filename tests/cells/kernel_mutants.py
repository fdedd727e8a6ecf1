"""Buggy LSTM cells modelled on publicly reported LSTM-kernel bugs: each is exact outside its regime.

`tests/cells/mutants.py` catalogues mistakes in the equations. The cells here get the equations
right and break only in the regime where a real kernel broke: hidden widths past a tile or block
size, batches past a grid cap or not a multiple of the vector width, non-contiguous inputs, the
no-grad / eval path, reuse of the state tensor handed in, weights rewritten in place after a first
call, and pre-activations or cell states large enough to overflow exp. A suite that draws widths
1-7, batch 1-4, contiguous inputs in training mode with moderate pre-activations passes every one.

Each class is a torch.nn.LSTMCell (same parameters, same initialisation, gate order i, f, g, o)
whose forward is plain autograd; outside its regime it agrees with torch.nn.LSTMCell to rounding
(about 1e-16 in float64), forward and backward. `KERNEL_MUTANTS` records, per cell, the regime in
which it shows and the claims it must fail (measured by running the checks: tests/meta/test_cell_catalogue.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tests.cells.mutants import Mutant

TILE = 128  # the tile / block width of the modelled kernels
GRID_ROWS = 32  # the (scaled-down) grid cap over the batch
VEC = 8  # the batch vector width of the modelled persistent kernel


class _KernelCell(nn.LSTMCell):
    """A correct LSTM step written in small overridable steps (each mutant overrides one)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, bias=True)

    def preact(self, x, h):
        return F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)

    def gates(self, a):
        ai, af, ag, ao = a.chunk(4, 1)
        return torch.sigmoid(ai), torch.sigmoid(af), torch.tanh(ag), torch.sigmoid(ao)

    def output(self, o, c_next):
        return o * torch.tanh(c_next)

    def step(self, x, h, c):
        i, f, g, o = self.gates(self.preact(x, h))
        c_next = f * c + i * g
        return self.output(o, c_next), c_next, (i, f, g, o)

    def forward(self, x, state=None):
        if state is None:
            z = x.new_zeros(x.shape[0], self.hidden_size)
            state = (z, z)
        h, c = state
        h_next, c_next, _ = self.step(x, h, c)
        return h_next, c_next


class TileTailBug(_KernelCell):
    """Tile-tail bias bug of a tiled Triton/CUDA LSTM kernel.

    The kernel computes the hidden units in 128-wide tiles; for the last, partial tile it forgets to
    add the tile offset to the bias pointer, so unit j of the tail (for each gate) gets the bias of
    unit j - start_of_tail, a row of the FIRST tile. Full tiles are right, so the cell is exact when
    n <= 128 or n is a multiple of 128; at n = 200 units 128..199 get the biases of units 0..71.
    (Tail-tile masking / offset mistakes are a recurrent class of bug in Triton and hand-written
    CUDA kernels.) Shows in the forward and the backward (the bias gradients land on the wrong rows).
    """

    def preact(self, x, h):
        n = self.hidden_size
        tail = n % TILE
        if n <= TILE or tail == 0:
            return super().preact(x, h)
        start = n - tail
        idx = torch.arange(n, device=self.bias_ih.device)
        idx[start:] -= start  # the missing "+ tile offset"
        b_ih = self.bias_ih.view(4, n).index_select(1, idx).reshape(4 * n)
        b_hh = self.bias_hh.view(4, n).index_select(1, idx).reshape(4 * n)
        return F.linear(x, self.weight_ih, b_ih) + F.linear(h, self.weight_hh, b_hh)


class BlockCapDropsUnits(_KernelCell):
    """Hidden units beyond a 128-wide block are never computed: h_next, c_next are 0 there.

    Models FlagGems #5014: a Triton LSTM cell launched a single 128-wide block over the hidden
    dimension, so units 128.. were never written (left at their zero initialisation). Exact for
    n <= 128; at n = 200 units 128..199 of both outputs are 0 and get no gradient.
    """

    def forward(self, x, state=None):
        h_next, c_next = super().forward(x, state)
        n = self.hidden_size
        if n <= TILE:
            return h_next, c_next
        mask = (torch.arange(n, device=h_next.device) < TILE).to(h_next.dtype)
        return h_next * mask, c_next * mask


class LargeBatchBug(_KernelCell):
    """Rows of the batch beyond 32 take the gates of row b mod 32 (a grid-size cap).

    Models a kernel whose launch grid over the batch is capped and whose row index wraps instead
    of looping: cf. MIOpen's RNN kernels returning wrong results once batch x sequence length
    passed 65,535 (the grid limit), scaled down here to 32 rows so the regime is reachable. The
    element-wise update still reads each row's own c. Exact for B <= 32.
    """

    def preact(self, x, h):
        a = super().preact(x, h)
        B = a.shape[0]
        if B <= GRID_ROWS:
            return a
        return a.index_select(0, torch.arange(B, device=a.device) % GRID_ROWS)


class BatchNotMultipleOf8(_KernelCell):
    """When B > 8 and B % 8 != 0, the last B % 8 rows get h_next = o * tanh(c) (the OLD cell state).

    Models the cuDNN persistent-RNN algorithm bug for batch sizes not a multiple of 8 (PyTorch
    disabled it, PR #48070): the main loop handles rows 8 at a time, and the remainder loop reads
    the stale c buffer instead of c_next for the output. c_next is right everywhere; h_next is wrong
    on the tail rows only. Exact for B <= 8 and for multiples of 8 (e.g. batch 1-4 is never hit).
    """

    def step(self, x, h, c):
        h_next, c_next, (i, f, g, o) = super().step(x, h, c)
        B = x.shape[0]
        r = B % VEC
        if B > VEC and r:
            h_next = torch.cat([h_next[:B - r], o[B - r:] * torch.tanh(c[B - r:])], 0)
        return h_next, c_next, (i, f, g, o)


class _ReadAsContiguous(torch.autograd.Function):
    """Reads t's storage as if t were contiguous row-major (strides (row_length, 1), same storage offset).

    The backward is what such a kernel's backward does: it writes the incoming gradient into a fresh
    buffer at the tensor's logical positions (dx = W^T da), so the gradient is routed to x, while the
    weight gradients (da^T x_read) see the values that were actually read.
    """

    @staticmethod
    def forward(ctx, t):
        return torch.as_strided(t, t.shape, (t.shape[1], 1)).clone()

    @staticmethod
    def backward(ctx, grad):
        return grad


class StridedInputBug(_KernelCell):
    """Assumes contiguous row-major x and h: reads them with strides (row_length, 1), ignoring the real ones.

    Models kernels that take a raw data pointer and compute offsets from the shape (a missing
    .contiguous() before the launch; a repeatedly reported class of bug for custom/fused RNN ops fed a
    time slice x[:, t] of a batch-first sequence, or a transposed tensor). Exact for contiguous
    inputs (any storage offset); for X[:, t] of a (B, T, m) tensor, row b reads X[0, t + b]; for a
    transposed tensor it reads the storage in the wrong order. Differentiable: the backward routes the
    gradient to x's logical positions, as the kernel's backward would (a plain torch.as_strided on a
    view gets autograd's view-replay semantics instead). An expanded (stride-0) input whose storage is
    too small raises.
    """

    @staticmethod
    def _read(t):
        return t if t.is_contiguous() else _ReadAsContiguous.apply(t)

    def preact(self, x, h):
        return super().preact(self._read(x), self._read(h))


class InferencePathBug(_KernelCell):
    """A "fast inference path" that forgets bias_hh, taken under no_grad / inference_mode OR in eval mode.

    Models a backend that keeps a separate cached graph / kernel for inference and gets it wrong,
    cf. pytorch #173640 (a cached MPS LSTM graph that ignored train/eval mode). Exact in training
    mode with grad enabled; wrong (by bias_hh) whenever torch.is_grad_enabled() is False or after
    module.eval().
    """

    def preact(self, x, h):
        if torch.is_grad_enabled() and self.training:
            return super().preact(x, h)
        return F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh)


class InPlaceStateUpdate(_KernelCell):
    """Updates the caller's c in place (c *= f; c += i * g): the tensor handed in ends up holding c_next.

    Models memory-saving kernels that write the new cell state over the old buffer, behind a wrapper
    that calls c.contiguous() first: for a contiguous c that is c itself, so the caller's tensor is
    overwritten; a non-contiguous or expanded c is copied, and the copy is what gets overwritten. The
    update goes through c.data (invisible to autograd, like a kernel writing through a raw pointer),
    after the step has computed from a private clone of c: so the returned h_next, c_next and every
    gradient of this call are exact, and it also works when c is a leaf that requires grad (an
    autograd-visible c.mul_ on such a leaf would raise). It shows only when the caller reuses a
    contiguous c after the call (compares against it, recomputes from it, keeps the sequence of
    states): c now equals c_next.
    """

    def step(self, x, h, c):
        h_next, c_next, (i, f, g, o) = super().step(x, h, c.clone())
        buf = c.data.contiguous()  # c's own storage when c is contiguous, else a copy
        buf.mul_(f.detach()).add_((i * g).detach())
        return h_next, c_next, (i, f, g, o)


class StaleWeightCache(_KernelCell):
    """Caches the (concatenated) weights at the first call of each instance and keeps using them.

    Models MKL-DNN / oneDNN integrations that reorder the weights into their own layout once and
    reuse that copy, ignoring later in-place updates of the parameters (cf. mxnet #16037, RNN
    weights cached at the first call). The cache is keyed by device and dtype (so .to() still
    works); biases are live. The forward VALUE uses the stale weights, while autograd still reaches
    the live parameters (value = cached + (param - param.detach())), so gradients wrt the weights
    exist, are exact when the weights were never rewritten, and wrt x, h use the stale weights.
    Exact when the weights are written before the first call and never after.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self._weight_cache = {}

    def _weights(self):
        key = (self.weight_ih.device, self.weight_ih.dtype)
        if key not in self._weight_cache:
            self._weight_cache[key] = torch.cat([self.weight_ih, self.weight_hh], 1).detach().clone()
        w = self._weight_cache[key]
        m = self.input_size
        w_ih = w[:, :m] + (self.weight_ih - self.weight_ih.detach())
        w_hh = w[:, m:] + (self.weight_hh - self.weight_hh.detach())
        return w_ih, w_hh

    def preact(self, x, h):
        w_ih, w_hh = self._weights()
        return F.linear(x, w_ih, self.bias_ih) + F.linear(h, w_hh, self.bias_hh)


class _WeightGradAddedToWorkspace(torch.autograd.Function):
    """The identity on the weights in the forward; the backward adds the incoming weight gradient to a
    persistent buffer and returns the buffer: dW of this call plus every earlier one."""

    @staticmethod
    def forward(ctx, w, workspace):
        ctx.workspace = workspace
        return w.view_as(w)

    @staticmethod
    def backward(ctx, grad):
        buf = ctx.workspace.get(grad.shape)
        if buf is None or buf.dtype != grad.dtype or buf.device != grad.device:
            buf = ctx.workspace[grad.shape] = torch.zeros_like(grad)
        buf.add_(grad)  # "the gradient results are added to dw": the zeroing before it was forgotten
        return buf.clone(), None


class WeightGradWorkspaceNotZeroed(_KernelCell):
    """The weight gradients accumulate into a per-instance workspace that is never zeroed.

    Models a kernel built on an API that *adds* its weight gradients to the output buffer (cuDNN's
    cudnnRNNBackwardWeights: "the weight gradient results are added to dw"; torch zeroes dw before
    the call) whose caller forgot the zeroing, reusing one buffer per weight shape. The forward is
    exact, and so is the first one-step backward of an instance; every later backward of the same
    instance returns its dW plus all earlier ones, and a backward through T stepped calls adds the
    later steps' dW into the earlier ones. Gradients wrt x, h, c and the biases stay exact.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self._dw = {}

    def preact(self, x, h):
        w_ih = _WeightGradAddedToWorkspace.apply(self.weight_ih, self._dw)
        w_hh = _WeightGradAddedToWorkspace.apply(self.weight_hh, self._dw)
        return F.linear(x, w_ih, self.bias_ih) + F.linear(h, w_hh, self.bias_hh)


def _exp_sigmoid(a):
    e = torch.exp(a)
    return e / (1 + e)


def _exp_tanh(a):
    e = torch.exp(2 * a)
    return (e - 1) / (e + 1)


class ExpOverflowSigmoid(_KernelCell):
    """σ(a) = exp(a) / (1 + exp(a)) and tanh(a) = (exp(2a) - 1) / (exp(2a) + 1) in the gates.

    Models hand-written activation code (custom CUDA/Triton/NumPy LSTM kernels) that uses the naive
    exp forms instead of a numerically stable one: exp overflows to inf and inf / inf = NaN. The
    gates go NaN once a pre-activation passes about +88 (float32) / +709 (float64) for σ, about +44
    (float32) / +354 (float64) for the candidate's tanh; large negative pre-activations are fine
    (exp underflows to 0). Exact (to rounding) for moderate pre-activations.
    """

    def gates(self, a):
        ai, af, ag, ao = a.chunk(4, 1)
        return _exp_sigmoid(ai), _exp_sigmoid(af), _exp_tanh(ag), _exp_sigmoid(ao)


class NaNForHugeCellState(_KernelCell):
    """tanh(c_t) on the output path computed as (exp(2c) - 1) / (exp(2c) + 1): NaN for large cell states.

    The same naive-exp mistake as ExpOverflowSigmoid, only in h_t = o ⊙ tanh(c_t): h_next (not
    c_next) goes NaN once a cell-state entry passes about +44 (float32) / +354 (float64), which a
    cell reaches only by accumulating over long sequences or when handed a large c. Exact otherwise.
    """

    def output(self, o, c_next):
        return o * _exp_tanh(c_next)


_K = "tests.cells.kernel_mutants:"
KERNEL_MUTANTS = (
    Mutant("last partial 128-tile uses the first tile's bias", _K + "TileTailBug",
           "n > 128 and n not a multiple of 128 only", ("L0",)),
    Mutant("units beyond a 128-wide block dropped", _K + "BlockCapDropsUnits", "n > 128 only", ("L0",)),
    Mutant("batch rows beyond 32 take row b mod 32's gates", _K + "LargeBatchBug", "batch > 32 only", ("L0",)),
    Mutant("tail rows of a batch not a multiple of 8 use the old c", _K + "BatchNotMultipleOf8",
           "batch > 8 and batch % 8 != 0 only (h_next only)", ("L0",)),
    Mutant("x, h read as if contiguous", _K + "StridedInputBug",
           "non-contiguous x or h only (a time slice x[:, t], a transposed tensor)", ("L0",)),
    Mutant("inference path drops bias_hh", _K + "InferencePathBug",
           "under torch.no_grad / inference_mode or in eval mode only", ("L0",)),
    Mutant("c updated in place", _K + "InPlaceStateUpdate",
           "caller reuses the c it passed in only (returned values and gradients exact)", ("L0",)),
    Mutant("weights cached at the first call", _K + "StaleWeightCache",
           "weights rewritten in place after the instance's first call only", ("L0",)),
    Mutant("naive exp sigmoid / tanh in the gates", _K + "ExpOverflowSigmoid",
           "pre-activations above ~44-88 (float32) or ~354-709 (float64) only: NaN", ("L0",)),
    Mutant("weight gradients added to a workspace never zeroed", _K + "WeightGradWorkspaceNotZeroed",
           "second and later backward calls of one instance, or T > 1 stepped calls (weight gradients only)",
           ("L0",)),
    Mutant("naive exp tanh of the cell state", _K + "NaNForHugeCellState",
           "cell states above ~44 (float32) or ~354 (float64) only: NaN in h_next", ("L0",)),
)
