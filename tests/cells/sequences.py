"""Sequence modules for the catalogue: correct ones of several shapes, and mutants of the time loop.

Correct (each must pass every claim under any seed):
- `StepLoopLSTM`: torch.nn.LSTM's contract, a Python loop of one step per time step;
- `ProjectedLSTM`: torch.nn.LSTM's contract, all inputs projected in one GEMM, then the
  recurrence (what cuDNN and most fused kernels do);
- `KerasLayoutLSTM` + `KerasLayoutAdapter`: another layout entirely (kernels stored
  transposed, m x 4n and n x 4n, one bias, gate order i, g, f, o, batch-first input, a
  (outputs, h, c) return), checked through an adapter of a few lines;
- torch.nn.LSTM itself (`--lstm-impl=torch.nn:LSTM`).

Mutants (each a bug of a sequence kernel's time loop, each must fail naming a claim):
- `ChunkStateDropped`: runs the sequence in chunks of 64 steps and restarts each chunk from
  a zero cell state (the state is not carried across a chunk boundary): shows only for T > 64;
- `InitialStateIgnored`: starts from zeros whatever (h0, c0) it is given (MPS, pytorch
  PR #95137, hid behind zero initial states);
- `BatchFirstReshaped`: takes a batch-first input to time-first with a reshape instead of
  a transpose: shows only in the batch-first layout with B > 1 and T > 1;
- `OddFinalState`: returns the cell state of step T - 1 as c_n when T is odd (an unrolled-
  by-two loop's tail bug);
- `LateRingBuffer`: keeps the last 256 hidden states in a ring buffer and, from step 300 on,
  reads h_(t-2) instead of h_(t-1) (an indexing bug that starts after hundreds of steps);
- `GridCappedInputProjection`: the input GEMM on a grid capped at 65,535 rows (MIOpen);
- `FinalCellGradientIgnored`: backward only, the gradient arriving on c_n is dropped
  (deeplearning4j#8838, PaddlePaddle#6970): right for every loss that does not read c_n.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from lstm_claims.adapters import SequenceAdapter, reorder_gates, transposed


class _LSTMContract(nn.Module):
    """torch.nn.LSTM's parameters and calling convention (one layer, one direction), for subclasses to loop."""

    def __init__(self, input_size, hidden_size, batch_first=False):
        super().__init__()
        self.input_size, self.hidden_size, self.batch_first = input_size, hidden_size, batch_first
        k = 1 / math.sqrt(hidden_size)
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size, input_size).uniform_(-k, k))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size, hidden_size).uniform_(-k, k))
        self.bias_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-k, k))
        self.bias_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-k, k))

    def step(self, x, h, c):
        gates = x @ self.weight_ih_l0.t() + self.bias_ih_l0 + h @ self.weight_hh_l0.t() + self.bias_hh_l0
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def to_time_first(self, x):
        return x.transpose(0, 1) if self.batch_first else x

    def initial(self, state):
        return state[0][0], state[1][0]

    def loop(self, xs, h, c):
        hs = []
        for x in xs:
            h, c = self.step(x, h, c)
            hs.append(h)
        return torch.stack(hs), h, c

    def forward(self, x, state):
        xs = self.to_time_first(x)
        h, c = self.initial(state)
        hs, h, c = self.loop(xs, h, c)
        out = hs.transpose(0, 1) if self.batch_first else hs
        return out, (h.unsqueeze(0), c.unsqueeze(0))


class StepLoopLSTM(_LSTMContract):
    """Correct: one step per time step in Python."""


class ProjectedLSTM(_LSTMContract):
    """Correct: x_t W_ih^T + b_ih for every t in one GEMM, then only the recurrent GEMM per step."""

    def project(self, xs):
        """x_t W_ih^T + b_ih for all T * B rows, (T, B, 4n)."""
        T, B, m = xs.shape
        return torch.addmm(self.bias_ih_l0, xs.reshape(T * B, m), self.weight_ih_l0.t()).view(T, B, -1)

    def loop(self, xs, h, c):
        projected = self.project(xs)
        hs = []
        for a in projected:
            gates = a + h @ self.weight_hh_l0.t() + self.bias_hh_l0
            i, f, g, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            hs.append(h)
        return torch.stack(hs), h, c


class KerasLayoutLSTM(nn.Module):
    """A sequence layer of another layout: kernel (m, 4n), recurrent_kernel (n, 4n), one bias, gate order
    i, g, f, o; input (B, T, m) batch-first; returns (outputs (B, T, n), h_T, c_T). Correct."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        k = 1 / math.sqrt(hidden_size)
        self.kernel = nn.Parameter(torch.empty(input_size, 4 * hidden_size).uniform_(-k, k))
        self.recurrent_kernel = nn.Parameter(torch.empty(hidden_size, 4 * hidden_size).uniform_(-k, k))
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))

    def forward(self, inputs, h, c):
        outputs = []
        for x in inputs.unbind(1):
            z = x @ self.kernel + h @ self.recurrent_kernel + self.bias
            i, g, f, o = z.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, 1), h, c


class KerasLayoutAdapter(SequenceAdapter):
    """The adapter a user writes for KerasLayoutLSTM (README, 'Adapters')."""

    def build(self, input_size, hidden_size):
        return KerasLayoutLSTM(input_size, hidden_size)

    def parameters_for(self, weight_ih, weight_hh, bias_ih, bias_hh):
        return {"kernel": transposed(reorder_gates(weight_ih, "igfo")),
                "recurrent_kernel": transposed(reorder_gates(weight_hh, "igfo")),
                "bias": reorder_gates(bias_ih + bias_hh, "igfo")}

    def sequence(self, xs, h0, c0):
        outputs, h, c = self.call(xs.transpose(0, 1), h0, c0)
        return outputs.transpose(0, 1), (h, c)


# --- mutants of the time loop ------------------------------------------------------------------

class ChunkStateDropped(_LSTMContract):
    """Chunks of 64 steps; each chunk restarts from a zero cell state."""

    CHUNK = 64

    def loop(self, xs, h, c):
        hs = []
        for start in range(0, xs.shape[0], self.CHUNK):
            chunk_hs, h, c = super().loop(xs[start:start + self.CHUNK], h, c if start == 0 else torch.zeros_like(c))
            hs.append(chunk_hs)
        return torch.cat(hs), h, c


class InitialStateIgnored(_LSTMContract):
    """Starts every sequence from zeros."""

    def initial(self, state):
        return torch.zeros_like(state[0][0]), torch.zeros_like(state[1][0])


class BatchFirstReshaped(_LSTMContract):
    """(B, T, m) -> (T, B, m) by a reshape, not a transpose (and back the same way)."""

    def forward(self, x, state):
        if not self.batch_first:
            return super().forward(x, state)
        B, T, m = x.shape
        h, c = self.initial(state)
        hs, h, c = self.loop(x.reshape(T, B, m), h, c)
        return hs.reshape(B, T, -1), (h.unsqueeze(0), c.unsqueeze(0))


class OddFinalState(_LSTMContract):
    """An odd T returns the cell state before the last step as c_n."""

    def loop(self, xs, h, c):
        hs = []
        c_before = c
        for x in xs:
            c_before = c
            h, c = self.step(x, h, c)
            hs.append(h)
        return torch.stack(hs), h, (c_before if xs.shape[0] % 2 else c)


class LateRingBuffer(_LSTMContract):
    """From step 300 on, the hidden state fed back is h_(t-2) (a ring-buffer index off by one)."""

    START = 300

    def loop(self, xs, h, c):
        hs = []
        for t, x in enumerate(xs):
            h_in = hs[t - 2] if t >= self.START else h
            h, c = self.step(x, h_in, c)
            hs.append(h)
        return torch.stack(hs), h, c


class GridCappedInputProjection(ProjectedLSTM):
    """The input GEMM over all T * B rows at once, launched on a grid capped at 65,535 rows: the rows past
    it keep a zero projection (only the bias). Right for every T * B <= 65,535, wrong past it, like
    MIOpen's LSTM once batch x sequence length passed 65,535 (pytorch #177834)."""

    GRID_ROWS = 65_535

    def project(self, xs):
        T, B, m = xs.shape
        rows = xs.reshape(T * B, m)
        projected = torch.zeros(T * B, self.weight_ih_l0.shape[0], dtype=xs.dtype, device=xs.device)
        projected[:self.GRID_ROWS] = rows[:self.GRID_ROWS] @ self.weight_ih_l0.t()
        return (projected + self.bias_ih_l0).view(T, B, -1)


class _GradientDropped(torch.autograd.Function):
    """The identity forward; a backward that returns zero whatever gradient arrives."""

    @staticmethod
    def forward(ctx, t):
        return t.view_as(t)

    @staticmethod
    def backward(ctx, g):
        return torch.zeros_like(g)


class FinalCellGradientIgnored(_LSTMContract):
    """The backward drops the gradient that arrives on the returned c_n, as deeplearning4j's lstmLayer_bp did
    (deeplearning4j#8838: "not taking into account gradient contribution from last cell state") and Paddle's LSTM
    gradient operator (PaddlePaddle#6970). The forward is right, and so is every gradient of a loss that reads
    only the outputs and h_n."""

    def forward(self, x, state):
        out, (h, c) = super().forward(x, state)
        return out, (h, _GradientDropped.apply(c))
