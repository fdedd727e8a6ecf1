"""Correct LSTM cells that are not the kit's reference: each must pass every claim under any seed."""
from __future__ import annotations

import torch
from torch import nn

from lstm_claims.reference.reference_cell import ReferenceLSTMCell


class FusedLSTMStep(nn.Module):
    """One step of torch.nn.LSTM (its fused kernel), exposing the LSTMCell attributes."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)

    weight_ih = property(lambda self: self.lstm.weight_ih_l0)
    weight_hh = property(lambda self: self.lstm.weight_hh_l0)
    bias_ih = property(lambda self: self.lstm.bias_ih_l0)
    bias_hh = property(lambda self: self.lstm.bias_hh_l0)

    def forward(self, x, state):
        h, c = state
        _, (h_n, c_n) = self.lstm(x.unsqueeze(0), (h.unsqueeze(0), c.unsqueeze(0)))
        return h_n.squeeze(0), c_n.squeeze(0)


class ConcatLSTMCell(ReferenceLSTMCell):
    """One matmul on [x, h] against [W_ih, W_hh], summed biases, addcmul: another summation order."""

    def forward(self, x, state):
        h, c = state
        gates = torch.addmm(self.bias_ih + self.bias_hh, torch.cat([x, h], 1),
                            torch.cat([self.weight_ih, self.weight_hh], 1).t())
        i, f, g, o = gates.chunk(4, 1)
        c_next = torch.addcmul(torch.sigmoid(f) * c, torch.sigmoid(i), torch.tanh(g))
        return torch.sigmoid(o) * torch.tanh(c_next), c_next


class _HandWrittenLSTMFunction(torch.autograd.Function):
    """Forward and backward written out, as a fused kernel would be. `bug` selects a mutation
    (tests/cells/mutants.py; each names the bug report it comes from).

    Like a fused kernel, it asks autograd not to materialise gradients of outputs the loss does not
    read (set_materialize_grads(False)): a loss on h_t alone, the usual one in training, hands the
    backward gc = None, and the backward must still send h's gradient through c_t.
    """

    @staticmethod
    def forward(ctx, x, h, c, w_ih, w_hh, b_ih, b_hh, bug):
        a = x @ w_ih.t() + b_ih + h @ w_hh.t() + b_hh
        ai, af, ag, ao = a.chunk(4, 1)
        i, f, g, o = torch.sigmoid(ai), torch.sigmoid(af), torch.tanh(ag), torch.sigmoid(ao)
        c_next = f * c + i * g
        t = torch.tanh(c_next)
        ctx.save_for_backward(x, h, c, w_ih, w_hh, i, f, g, o, c_next, t)
        ctx.bug = bug
        ctx.set_materialize_grads(False)
        return o * t, c_next

    @staticmethod
    def backward(ctx, gh, gc):
        x, h, c, w_ih, w_hh, i, f, g, o, c_next, t = ctx.saved_tensors
        bug = ctx.bug
        gh = torch.zeros_like(t) if gh is None else gh
        dtanh_c = 1 - c_next * c_next if bug == "tanh_prime_of_c" else 1 - t * t
        if gc is None and bug == "unread_c_skips_cell_path":
            dc = torch.zeros_like(c_next)  # "no gradient on c_t, nothing to do there": but h_t = o ⊙ tanh(c_t)
        else:
            gc = torch.zeros_like(c_next) if gc is None else gc
            dc = gh * o * dtanh_c if bug == "cell_cotangent_overwritten" else gc + gh * o * dtanh_c
        do = (dc if bug == "output_gate_uses_cell_delta" else gh) * t
        da = torch.cat([dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g * g), do * o * (1 - o)], 1)
        dc_prev = dc if bug == "forget_gate_dropped" else dc * f
        db = da.sum(0)
        if bug == "bias_gradient_copy_paste":
            _, db_f, db_g, _ = db.chunk(4)
            db = torch.cat([db_f, db_f, db_g, db_f])
        h_in = o * t if bug == "weight_gradient_from_new_state" else h
        return da @ w_ih, da @ w_hh, dc_prev, da.t() @ x, da.t() @ h_in, db, db, None


class HandWrittenBackwardCell(ReferenceLSTMCell):
    """Correct: a custom autograd.Function with the backward derived by hand."""

    bug = None

    def forward(self, x, state):
        h, c = state
        return _HandWrittenLSTMFunction.apply(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                                              self.bug)


CORRECT_CELLS = {
    "reference": "lstm_claims.reference.reference_cell:ReferenceLSTMCell",
    "torch.nn.LSTMCell": "torch.nn:LSTMCell",
    "nn.LSTM one-step wrapper": "tests.cells.correct:FusedLSTMStep",
    "concatenated matmul": "tests.cells.correct:ConcatLSTMCell",
    "hand-written backward": "tests.cells.correct:HandWrittenBackwardCell",
}
