"""Cells that compute the right values but raise: the kit must report the exception once, as what it is.

ScriptLSTMCell is pytorch's own benchmark cell (benchmarks/fastrnns/custom_lstms.py, a
TorchScript module). On torch 2.13 its backward raises a TorchScript interpreter RuntimeError
("non-reduction path was assumed ... expected those two sizes to be the same") once it has
been unrolled with other batch sizes: a finding about the implementation, not a claim's
violation, and every check it blocks is "not checked".
"""
from typing import Tuple

import torch
from torch import Tensor
from torch.nn import Parameter

# torch.jit.ScriptModule is deprecated in torch 2.13 (it warns); the cell is kept as pytorch wrote it.


class ScriptLSTMCell(torch.jit.ScriptModule):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = Parameter(torch.randn(4 * hidden_size, input_size))
        self.weight_hh = Parameter(torch.randn(4 * hidden_size, hidden_size))
        self.bias_ih = Parameter(torch.randn(4 * hidden_size))
        self.bias_hh = Parameter(torch.randn(4 * hidden_size))

    @torch.jit.script_method
    def forward(self, input: Tensor, state: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tensor]:
        hx, cx = state
        gates = (torch.mm(input, self.weight_ih.t()) + self.bias_ih + torch.mm(hx, self.weight_hh.t()) + self.bias_hh)
        ingate, forgetgate, cellgate, outgate = gates.chunk(4, 1)
        ingate = torch.sigmoid(ingate)
        forgetgate = torch.sigmoid(forgetgate)
        cellgate = torch.tanh(cellgate)
        outgate = torch.sigmoid(outgate)
        cy = (forgetgate * cx) + (ingate * cellgate)
        hy = outgate * torch.tanh(cy)
        return hy, cy
