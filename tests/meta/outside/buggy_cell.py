import torch


class ForgetsTwice(torch.nn.LSTMCell):
    """A buggy cell: the forget gate multiplies the old cell state twice."""

    def forward(self, x, state):
        h, c = state
        a = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
        i, f, g, o = a.chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c_next = f * f * c + i * g
        return o * torch.tanh(c_next), c_next
