"""The kit's own LSTM cell: the default cell under test.

A plain autograd implementation of `reference.lstm_step`, with torch.nn.LSTMCell's
contract (constructor (input_size, hidden_size); attributes weight_ih, weight_hh,
bias_ih, bias_hh; forward(x, (h, c)) -> (h_next, c_next)).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from lstm_claims.reference.lstm_step import LSTMParams, lstm_step


class ReferenceLSTMCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        bound = 1 / math.sqrt(hidden_size)  # torch.nn.LSTMCell's default initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x, state):
        h, c = state
        return lstm_step(LSTMParams(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh), x, h, c)
