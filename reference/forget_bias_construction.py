"""A stored LSTM whose forget gate *decreases* when the forget bias grows (CLAIMS.md L9, part 2).

Its one job: the construction that shows the h feedback can break L9's monotonicity in b_f
(tests/claims feed it to L9's check as an explicit example). Nothing here calls the code
under test.
"""
from __future__ import annotations

import torch

from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.reference.unrolled_backward import LSTMSequence


def feedback_construction(delta_steps: int = 3) -> LSTMSequence:
    """An LSTM (n = m = 1) whose second forget gate *decreases* when b_f grows, by construction.

    With W_hf = -4 and all other weights 0; b_i = 4, b_g = -2 (so i g ≈ -0.947), b_o = 4, b_f = 0;
    h_0 = 0, c_0 = 2: c_1 = 2 f_1 - 0.947 ≈ 0.05 sits where tanh' ≈ 1, and
        ∂a^f_2/∂b_f = 1 + W_hf o_1 tanh'(c_1) c_0 σ'(a^f_1) ≈ 1 - 4 · 0.98 · 1 · 2 · 1/4 ≈ -0.96 < 0:
    raising b_f raises c_1 and h_1, and W_hf h_1 lowers a^f_2 by more than b_f raised it.
    Every value is a small integer: exact in float32.
    """
    z = torch.zeros
    w_hh = z(4, 1, dtype=torch.float64)
    w_hh[1, 0] = -4.0
    params = LSTMParams(weight_ih=z(4, 1, dtype=torch.float64), weight_hh=w_hh,
                        bias_ih=torch.tensor([4.0, 0.0, -2.0, 4.0], dtype=torch.float64),
                        bias_hh=z(4, dtype=torch.float64))
    return LSTMSequence(params, z(delta_steps, 1, 1, dtype=torch.float64), z(1, 1, dtype=torch.float64),
                        torch.full((1, 1), 2.0, dtype=torch.float64), {"construction": "L9 feedback: W_hf = -4"})
