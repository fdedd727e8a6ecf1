"""Tolerances of the residual claims (R1, R2): the autograd Jacobian of a residual branch.

Its one job: the rounding bound of J_F for the branch F(x) = W2 tanh(W1 x + b1) + b2 of
reference/residual.py, derived as claims/tolerances.py derives the LSTM step's (the hidden
layer is a sum of products, sum_error). The products of I + J_F over a stack are bounded by
claims.long_range_tolerances.product_bound, their norms by claims.tolerances.svd_bound.
"""
from __future__ import annotations

import torch

from lstm_claims.claims.tolerances import ACTIVATION_ULPS, gamma, smallest_subnormal, sum_error, unit_roundoff


def branch_jacobian_error(p, x, dtype) -> torch.Tensor:
    """Bound on |autograd J_F(x) in `dtype` - exact|, (..., n, n), for F(x) = W2 tanh(W1 x + b1) + b2.

    Row i of the autograd Jacobian is Σ_k W2[i, k] (1 - y_k²) W1[k, :] with y = tanh(W1 x + b1):
    z off by γ_(n+1) (|W1||x| + |b1|) + 2(n+1)η (sum_error), y and 1 - y² as in
    claims.rnn_tolerances.rnn_step_vjp_error; the
    products and the sum over the k hidden units: γ_(k+2) of |W2| diag(|d| + Δd) |W1|.
    """
    u, eta = unit_roundoff(dtype), smallest_subnormal(dtype)
    k, n = p.w1.shape
    z = x @ p.w1.T + p.b1
    err_z = sum_error(x.abs() @ p.w1.abs().T + p.b1.abs(), n + 1, dtype)  # n products and the bias
    y = torch.tanh(z)
    err_y = err_z + ACTIVATION_ULPS * (u * y.abs() + eta)
    d = 1 - y * y
    err_d = 2 * err_y + err_y ** 2 + 2 * u
    W2a, W1a = p.w2.abs(), p.w1.abs()
    return (W2a * err_d.unsqueeze(-2)) @ W1a + gamma(k + 2, dtype) * ((W2a * (d + err_d).unsqueeze(-2)) @ W1a) \
        + (k + 2) * eta


__all__ = ["branch_jacobian_error"]
