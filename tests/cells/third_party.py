"""Stand-ins for third-party LSTM layouts, for the README's adapters (tests/meta/test_adapters.py runs them).

Each is a correct LSTM in a layout the kit does not speak natively, modelled on conventions of
public implementations (speech and NLP toolkits, benchmark cells, fused-kernel libraries):
- `FusedGateCell`: one Linear over the concatenation [x, h], gate order i, f, o, g, a step
  that returns (h, (h, c));
- `TwoLinearLayerCell`: input and hidden projections in two Linear layers (only the input
  one has a bias), states with a leading layer dimension (1, B, n);
- `TransposedKernelLSTM` (tests/cells/sequences.KerasLayoutLSTM): kernels stored (in, 4n),
  one bias, gate order i, g, f, o, batch-first sequences.
"""
from __future__ import annotations

import torch
from torch import nn

from tests.cells.sequences import KerasLayoutLSTM as TransposedKernelLSTM

__all__ = ["FusedGateCell", "TwoLinearLayerCell", "TransposedKernelLSTM"]  # the README imports all three from here


class FusedGateCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.gates = nn.Linear(input_size + hidden_size, 4 * hidden_size)

    def forward(self, x, state):
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class TwoLinearLayerCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_proj = nn.Linear(input_size, 4 * hidden_size)
        self.hidden_proj = nn.Linear(hidden_size, 4 * hidden_size, bias=False)

    def forward(self, x, hx, cx):
        """x (B, m); hx, cx (1, B, n) -> (hy, cy), each (1, B, n)."""
        z = self.input_proj(x) + self.hidden_proj(hx[0])
        i, f, g, o = z.chunk(4, dim=1)
        cy = torch.sigmoid(f) * cx[0] + torch.sigmoid(i) * torch.tanh(g)
        hy = torch.sigmoid(o) * torch.tanh(cy)
        return hy.unsqueeze(0), cy.unsqueeze(0)
