"""Sequence modules that break torch.nn.LSTM's contract (each must get one clear message, exit status 2)."""
from __future__ import annotations

import functools

import torch

from tests.cells.sequences import StepLoopLSTM


class OutputWrongShape(StepLoopLSTM):
    """Returns the output without its last step."""

    def forward(self, x, state):
        out, hc = super().forward(x, state)
        return (out[:, :-1] if self.batch_first else out[:-1]), hc


class ReturnsOnlyOutput(StepLoopLSTM):
    def forward(self, x, state):
        return super().forward(x, state)[0]


class StatesWithoutLayerDim(StepLoopLSTM):
    def forward(self, x, state):
        out, (h, c) = super().forward(x, state)
        return out, (h[0], c[0])


TwoLayerLSTM = functools.partial(torch.nn.LSTM, num_layers=2)
BidirectionalLSTM = functools.partial(torch.nn.LSTM, bidirectional=True)
ProjectedHiddenLSTM = functools.partial(torch.nn.LSTM, proj_size=1)
