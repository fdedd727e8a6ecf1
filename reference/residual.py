"""Residual blocks and the forget-gate-free cell step (CLAIMS.md R1, R2), in closed form.

A residual block x -> x + F(x) with F(x) = W2 tanh(W1 x + b1) + b2 (a one-hidden-layer MLP):

    J_F(x) = W2 diag(tanh'(W1 x + b1)) W1          d(x + F(x))/dx = I + J_F(x)           (R1)

A stack x_l = x_{l-1} + F_l(x_{l-1}) has Jacobian Π_l (I + A_l), A_l = J_{F_l}(x_{l-1}), and
with ||A_l|| < 1 (R2):

    σ_min(Π (I + A_l)) >= Π (1 - ||A_l||)        ||Π (I + A_l) - I|| <= Π (1 + ||A_l||) - 1 <= exp(Σ ||A_l||) - 1

while the stack without skips has Jacobian Π A_l, of norm <= Π ||A_l|| (it vanishes).

The 1997 LSTM had no forget gate: c_t = c_{t-1} + i_t ⊙ g_t, a residual step. With
h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}) (o_{t-1} given), dc_t/dc_{t-1} = I + K'_t M_{t-1} where K'_t
is L2's K_t without its forget-gate term (R1). The block's `apply` functions are plain torch
(autograd and torch.func work through them); the closed forms are the reference.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from lstm_claims.reference.lstm_step import LSTMParams, dsigmoid, preactivations
from lstm_claims.reference.lstm_step import dtanh as _dtanh


@dataclass(frozen=True)
class BlockParams:
    """F(x) = w2 tanh(w1 x + b1) + b2: w1 (k, n), b1 (k,), w2 (n, k), b2 (n,)."""

    w1: torch.Tensor
    b1: torch.Tensor
    w2: torch.Tensor
    b2: torch.Tensor

    def __post_init__(self):
        k, n = self.w1.shape
        if tuple(self.w2.shape) != (n, k) or tuple(self.b1.shape) != (k,) or tuple(self.b2.shape) != (n,):
            raise ValueError(f"BlockParams shapes must be w1 (k, n), b1 (k,), w2 (n, k), b2 (n,); got "
                             f"{[tuple(getattr(self, f.name).shape) for f in fields(self)]}")

    @property
    def width(self) -> int:
        return self.w1.shape[1]

    def to(self, dtype=None, device=None) -> "BlockParams":
        return BlockParams(*(getattr(self, f.name).to(dtype=dtype, device=device) for f in fields(self)))

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def block_branch(p: BlockParams, x: torch.Tensor) -> torch.Tensor:
    """F(x) for x (..., n)."""
    return torch.tanh(x @ p.w1.T + p.b1) @ p.w2.T + p.b2


def residual_block(p: BlockParams, x: torch.Tensor) -> torch.Tensor:
    """x + F(x)."""
    return x + block_branch(p, x)


def branch_jacobian(p: BlockParams, x: torch.Tensor) -> torch.Tensor:
    """J_F(x) = W2 diag(tanh'(W1 x + b1)) W1 in closed form, (..., n, n)."""
    d = _dtanh(x @ p.w1.T + p.b1)  # (..., k)
    return (p.w2 * d.unsqueeze(-2)) @ p.w1


def stack_activations(blocks, x0: torch.Tensor, *, skips: bool = True) -> list[torch.Tensor]:
    """[x_0, x_1, ..., x_L] of the stack (with skips: x_l = x_{l-1} + F_l(x_{l-1}); without: F_l(x_{l-1}))."""
    xs = [x0]
    for p in blocks:
        xs.append(residual_block(p, xs[-1]) if skips else block_branch(p, xs[-1]))
    return xs



def forget_free_step(params: LSTMParams, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """c_t = c_{t-1} + i_t ⊙ g_t: the cell-state step of the LSTM without a forget gate (1997)."""
    gt = preactivations(params, x, h)
    return c + gt.i * gt.g


def forget_free_jacobian(params: LSTMParams, x: torch.Tensor, c_prev: torch.Tensor, o_prev: torch.Tensor):
    """(I + K' M, K', M) for the forget-free step with h_{t-1} = o_prev ⊙ tanh(c_prev).

    K'_t = diag(g_t ⊙ σ'(a^i)) W_hi + diag(i_t ⊙ tanh'(a^g)) W_hg,  M_{t-1} = diag(o_{t-1} ⊙ tanh'(c_{t-1})).
    """
    h_prev = o_prev * torch.tanh(c_prev)
    gt = preactivations(params, x, h_prev)
    K = (gt.g * dsigmoid(gt.a_i)).unsqueeze(-1) * params.hh_block("i") \
        + (gt.i * _dtanh(gt.a_g)).unsqueeze(-1) * params.hh_block("g")
    M = o_prev * _dtanh(c_prev)
    eye = torch.eye(params.hidden_size, dtype=c_prev.dtype, device=c_prev.device)
    return eye + K * M.unsqueeze(-2), K, M
