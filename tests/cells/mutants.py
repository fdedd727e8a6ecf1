"""A catalogue of realistic buggy LSTM cells. Each must make the claim suite fail, naming a claim.

Every mutant is one plausible mistake in an otherwise correct cell; `MUTANTS` records what
the bug is, the regime in which it shows (some show only at batch > 1, odd widths, large
cell states, or in the backward pass), and the claims that must catch it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lstm_claims.reference.reference_cell import ReferenceLSTMCell
from tests.cells.correct import HandWrittenBackwardCell


class _GatesCell(ReferenceLSTMCell):
    """A correct cell written in small overridable steps; each mutant overrides one."""

    def preact(self, x, h, c):
        return x @ self.weight_ih.t() + self.bias_ih + h @ self.weight_hh.t() + self.bias_hh

    def split(self, a):
        ai, af, ag, ao = a.chunk(4, 1)
        return torch.sigmoid(ai), torch.sigmoid(af), torch.tanh(ag), torch.sigmoid(ao)

    def combine(self, i, f, g, o, c):
        return f * c + i * g

    def forward(self, x, state):
        h, c = state
        i, f, g, o = self.split(self.preact(x, h, c))
        c_next = self.combine(i, f, g, o, c)
        return o * torch.tanh(c_next), c_next


class GateOrderIFOG(_GatesCell):
    """Reads the gate blocks as i, f, o, g (another library's order) instead of torch's i, f, g, o."""

    def split(self, a):
        ai, af, ao, ag = a.chunk(4, 1)
        return torch.sigmoid(ai), torch.sigmoid(af), torch.tanh(ag), torch.sigmoid(ao)


class NoInputGate(_GatesCell):
    """Forgets the input gate: c_t = f ⊙ c_{t-1} + c̃_t."""

    def combine(self, i, f, g, o, c):
        return f * c + g


class DetachedCellState(_GatesCell):
    """Detaches c_{t-1} (e.g. truncated BPTT applied inside the cell): no gradient to c."""

    def combine(self, i, f, g, o, c):
        return f * c.detach() + i * g


class Peephole(_GatesCell):
    """Gers-Schmidhuber peepholes: i and f read w ⊙ c_{t-1}. Gates see c, so L1 breaks by design."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.w_peep = nn.Parameter(torch.full((2, hidden_size), 0.5))

    def preact(self, x, h, c):
        a = super().preact(x, h, c)
        n = self.hidden_size
        return torch.cat([a[:, :n] + self.w_peep[0] * c, a[:, n:2 * n] + self.w_peep[1] * c, a[:, 2 * n:]], 1)


class GatesCutFromH(_GatesCell):
    """Gates computed from h.detach(): the forward is right, gradients through the gates are cut."""

    def preact(self, x, h, c):
        return super().preact(x, h.detach(), c)


class BiasHHIgnored(_GatesCell):
    """Uses bias_ih only (a port from a one-bias formulation)."""

    def preact(self, x, h, c):
        return x @ self.weight_ih.t() + self.bias_ih + h @ self.weight_hh.t()


class ForgetBiasAdded(_GatesCell):
    """Adds a constant forget bias of 1 inside the forward (TF's BasicLSTMCell forget_bias=1.0)."""

    def preact(self, x, h, c):
        a = super().preact(x, h, c)
        n = self.hidden_size
        return torch.cat([a[:, :n], a[:, n:2 * n] + 1.0, a[:, 2 * n:]], 1)


class HardSigmoidGates(_GatesCell):
    """Gates through Keras's old hard_sigmoid (clip(0.2 a + 0.5, 0, 1)) instead of σ."""

    def split(self, a):
        ai, af, ag, ao = a.chunk(4, 1)
        hs = lambda z: torch.clamp(0.2 * z + 0.5, 0, 1)  # noqa: E731
        return hs(ai), hs(af), torch.tanh(ag), hs(ao)


class TransposedStateLayout(_GatesCell):
    """Reads c_{t-1} through a transposed reshape (a layout bug): identical when batch == 1 or n == 1."""

    def forward(self, x, state):
        h, c = state
        return super().forward(x, (h, c.t().reshape(c.shape)))


class OddWidthLastUnitFrozen(_GatesCell):
    """Updates units in pairs (a 2-wide vectorised kernel); at odd widths the unpaired last unit keeps c_{t-1}."""

    def combine(self, i, f, g, o, c):
        c_next = f * c + i * g
        n = c.shape[1]
        if n % 2:
            c_next = torch.cat([c_next[:, :n - 1], c[:, n - 1:]], 1)
        return c_next


class CellStateClipped(_GatesCell):
    """Clips the cell state to [-8, 8] (TF's LSTMCell(cell_clip=8)): visible only for large cell states."""

    def combine(self, i, f, g, o, c):
        return torch.clamp(f * c + i * g, -8.0, 8.0)


class Float32Internals(_GatesCell):
    """Computes in float32 whatever the input dtype (a float32-only kernel), casting back."""

    def forward(self, x, state):
        h, c = state
        dt = x.dtype
        w = [t.float() for t in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)]
        a = x.float() @ w[0].t() + w[2] + h.float() @ w[1].t() + w[3]
        i, f, g, o = self.split(a)
        c_next = f * c.float() + i * g
        return (o * torch.tanh(c_next)).to(dt), c_next.to(dt)


class SaturatedGatesRoundedOff(_GatesCell):
    """A 'fast path' that returns exactly 0 or 1 for gates with |a| > 15 (σ(15) = 1 - 3.1e-7):
    visible only where the strategies reach saturated gates; in float32 the error is 5 ulps of 1."""

    def split(self, a):
        ai, af, ag, ao = a.chunk(4, 1)

        def sig(z):
            return torch.where(z > 15, torch.ones_like(z), torch.where(z < -15, torch.zeros_like(z), torch.sigmoid(z)))
        return sig(ai), sig(af), torch.tanh(ag), sig(ao)


class CellGradientClamped(_GatesCell):
    """A 'safety' hook clamps the gradient arriving at c_t to [-1, 1]: the forward is exact, and the
    backward is right wherever |dL/dc_t| <= 1, so only cotangents that exceed 1 show it."""

    def combine(self, i, f, g, o, c):
        c_next = super().combine(i, f, g, o, c)
        if c_next.requires_grad:
            c_next.register_hook(lambda grad: grad.clamp(-1.0, 1.0))
        return c_next


class ForgetAppliedAfterInput(_GatesCell):
    """c_t = f ⊙ (c_{t-1} + i ⊙ g): the forget gate also scales the new candidate (a misread equation)."""

    def combine(self, i, f, g, o, c):
        return f * (c + i * g)


class WrongTanhPrimeInBackward(HandWrittenBackwardCell):
    """Hand-written backward uses tanh'(c) = 1 - c² instead of 1 - tanh(c)²: only the backward is wrong."""

    bug = "tanh_prime_of_c"


class ForgetGateDroppedInBackward(HandWrittenBackwardCell):
    """Hand-written backward passes dc_{t-1} = dc_t instead of dc_t ⊙ f_t: only the backward is wrong."""

    bug = "forget_gate_dropped"


class CellCotangentOverwritten(HandWrittenBackwardCell):
    """Hand-written backward sets dc_t = dh_t ⊙ o ⊙ tanh'(c_t), dropping the gradient that arrives on c_t
    itself ("=" where "+=" belongs: apache/mxnet#4057; the same loss of dL/dc_T in deeplearning4j#8838 and
    PaddlePaddle#6970). Wrong whenever a loss reads c_t, or the next step does."""

    bug = "cell_cotangent_overwritten"


class OutputGateUsesCellDelta(HandWrittenBackwardCell):
    """Hand-written backward feeds the output gate the cell's delta dc_t instead of dh_t (lhnguyen102/cuTAGI#77,
    where the o gate took delta_m for delta_m_out)."""

    bug = "output_gate_uses_cell_delta"


class BiasGradientCopyPaste(HandWrittenBackwardCell):
    """Hand-written backward returns the forget gate's bias gradient for the input and output gates too
    (hanbt/learn_dl#53: bi_grad = bo_grad = delta_f). Only the bias gradients are wrong."""

    bug = "bias_gradient_copy_paste"


class WeightGradientFromNewState(HandWrittenBackwardCell):
    """Hand-written backward forms dL/dW_hh from h_t instead of h_(t-1) (VikParuchuri/zero_to_gpt#9: the
    weight gradient of step t used the hidden state of step t). Only weight_hh's gradient is wrong."""

    bug = "weight_gradient_from_new_state"


class UnreadCellOutputSkipsCellPath(HandWrittenBackwardCell):
    """Hand-written backward with unmaterialised gradients: when the loss does not read c_t (gc is None, as
    when a loss reads only h_t), it skips the cell path altogether, though h_t = o ⊙ tanh(c_t) depends on c_t
    (the unused-state paths of chainer#3042/#4043 and #8037). Correct whenever the loss reads c_t."""

    bug = "unread_c_skips_cell_path"


@dataclass(frozen=True)
class Mutant:
    name: str
    spec: str  # --lstm-impl
    shows: str  # the regime in which the bug is visible
    must_fail: tuple  # claim IDs whose checks must fail on this cell, each established by running the in-process
    #                   checks (lstm_claims/inprocess.py, from the claim records); tests/meta/test_cell_catalogue.py says what each
    #                   claim over sequences (L6-L9, G1-G4) misses and why


_M = "tests.cells.mutants:"
_ALL_SEQ = ("L6", "L7", "L8", "L9", "G1", "G3", "G4")  # every claim over sequences but G2 (which checks clipping only)
MUTANTS = (
    Mutant("gate order i,f,o,g", _M + "GateOrderIFOG", "forward, any size", ("L0", "L6", "L7", "L9", "G1", "G3", "G4")),
    Mutant("missing input gate", _M + "NoInputGate", "forward, any size", ("L0", "L6", "L7", "L9", "G1", "G3", "G4")),
    Mutant("detached cell state", _M + "DetachedCellState", "backward only", ("L0", "L1", *_ALL_SEQ)),
    Mutant("peephole", _M + "Peephole", "forward; gates read c", ("L0", "L1", "L6", "L7", "L8", "L9", "G3", "G4")),
    Mutant("gradients cut through the gates", _M + "GatesCutFromH", "backward only",
           ("L0", "L2", "L6", "L7", "L9", "G1", "G3", "G4")),
    Mutant("bias_hh ignored", _M + "BiasHHIgnored", "forward, any size", ("L0", "L6", "L7", "L8", "L9", "G1", "G4")),
    Mutant("constant forget bias added", _M + "ForgetBiasAdded", "forward, any size", ("L0", *_ALL_SEQ)),
    Mutant("hard-sigmoid gates", _M + "HardSigmoidGates", "forward, any size", ("L0", *_ALL_SEQ)),
    Mutant("transposed state layout", _M + "TransposedStateLayout", "batch > 1 and n > 1 only", ("L0", *_ALL_SEQ)),
    Mutant("last unit frozen at odd widths", _M + "OddWidthLastUnitFrozen", "odd widths only", ("L0", *_ALL_SEQ)),
    Mutant("cell state clipped to ±8", _M + "CellStateClipped", "large cell states only", ("L0", "L6", "L9", "G4")),
    Mutant("float32 internals", _M + "Float32Internals", "float64 only (precision)", ("L0", *_ALL_SEQ)),
    Mutant("saturated gates rounded to 0 or 1", _M + "SaturatedGatesRoundedOff", "saturated gates only (|a| > 15)",
           ("L0", "L1", "L2", "L7", "L8", "G4")),
    Mutant("gradient at c_t clamped to ±1", _M + "CellGradientClamped", "backward, cotangents above 1 only",
           ("L0", "L6", "G1")),
    Mutant("forget gate applied after the input", _M + "ForgetAppliedAfterInput", "forward, any size",
           ("L0", "L2", "L4", "L6", "L7", "L9", "G1", "G3", "G4")),
    Mutant("tanh'(c) = 1 - c² in backward", _M + "WrongTanhPrimeInBackward", "backward only",
           ("L0", "L6", "L9", "G3", "G4")),
    Mutant("forget gate dropped in backward", _M + "ForgetGateDroppedInBackward", "backward only",
           ("L0", "L1", *_ALL_SEQ)),
    # From public bug reports of hand-written LSTM backward passes (each class names its report).
    Mutant("cell cotangent overwritten in backward", _M + "CellCotangentOverwritten",
           "backward, whenever a loss or the next step reads c_t", ("L0", "L1", "L2", *_ALL_SEQ)),
    Mutant("output gate fed the cell's delta in backward", _M + "OutputGateUsesCellDelta", "backward only",
           ("L0", "L2", "L5", "L6", "L7", "L9", "G3", "G4")),
    Mutant("bias gradients copied from the forget gate", _M + "BiasGradientCopyPaste",
           "backward, bias gradients only", ("L0", "L4")),
    Mutant("dL/dW_hh formed from h_t, not h_(t-1)", _M + "WeightGradientFromNewState",
           "backward, weight_hh's gradient only", ("L0",)),
    Mutant("cell path skipped when the loss does not read c_t", _M + "UnreadCellOutputSkipsCellPath",
           "backward, losses that read h_t but not c_t only", ("L0", "G4")),
)
