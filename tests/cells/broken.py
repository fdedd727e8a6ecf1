"""Modules that break torch.nn.LSTMCell's contract: the kit must say so once, clearly."""
import torch
from torch import nn

from lstm_claims.reference.reference_cell import ReferenceLSTMCell


class MissingWeightHH(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.LSTMCell(input_size, hidden_size)
        self.weight_ih, self.bias_ih, self.bias_hh = self.cell.weight_ih, self.cell.bias_ih, self.cell.bias_hh

    def forward(self, x, state):
        return self.cell(x, state)


class TransposedWeightIH(ReferenceLSTMCell):
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.zeros(input_size, 4 * hidden_size))


class ReturnsOnlyH(ReferenceLSTMCell):
    def forward(self, x, state):
        return super().forward(x, state)[0]


class NotDifferentiable(ReferenceLSTMCell):
    def forward(self, x, state):
        with torch.no_grad():
            return super().forward(x, state)


class ConstructorRaises(ReferenceLSTMCell):
    def __init__(self, input_size, hidden_size):
        raise RuntimeError("this cell needs a config object")


def not_a_module(input_size, hidden_size):
    return lambda x, state: state


class ReturnsNaN(ReferenceLSTMCell):
    def forward(self, x, state):
        h, c = super().forward(x, state)
        return h * float("nan"), c


BROKEN = {
    "missing weight_hh": ("tests.cells.broken:MissingWeightHH", "no attribute 'weight_hh'"),
    "transposed weight_ih": ("tests.cells.broken:TransposedWeightIH", "weight_ih has shape"),
    "returns only h": ("tests.cells.broken:ReturnsOnlyH", "must return a pair of tensors"),
    "not differentiable": ("tests.cells.broken:NotDifferentiable", "is differentiable \\(no grad_fn"),
    "constructor raises": ("tests.cells.broken:ConstructorRaises", "needs a config object"),
    "not a module": ("tests.cells.broken:not_a_module", "not a torch.nn.Module"),
    "returns NaN": ("tests.cells.broken:ReturnsNaN", "NaN"),
    "no such attribute": ("tests.cells.broken:NoSuchCell", "'NoSuchCell' is not defined in module"),
    "no such module": ("tests.cells.nonexistent:Cell", "cannot import module"),
    "malformed spec": ("torch.nn.LSTMCell", "must look like MODULE:ATTR"),
}


class WrongDtypeUnderAutocast(ReferenceLSTMCell):
    """Meets the contract, except under torch.autocast, where it returns float16 (neither the inputs'
    dtype nor autocast's bfloat16): a contract break on one path, which fails that check alone."""

    def forward(self, x, state):
        out = super().forward(x, state)
        if torch.is_autocast_enabled(x.device.type):
            return tuple(t.to(torch.float16) for t in out)
        return out
