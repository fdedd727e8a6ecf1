"""Tolerances of the vanilla-RNN claims (V1, V2): one tanh-RNN step's backward, and its accumulation.

Its one job: rounding bounds for h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh) and its
backward, derived as claims/tolerances.py derives the LSTM's (the pre-activation is the same
sum, preactivation_error), and carried through T steps by the recursion of
claims/long_range_tolerances.py (|d_(t-1)| <= |J_t|ᵀ |d_t| + |e_t|, on the RNN's own trajectory).
"""
from __future__ import annotations

import torch

from lstm_claims.claims.tolerances import ACTIVATION_ULPS, gamma, preactivation_error, smallest_subnormal, unit_roundoff


def rnn_step_vjp_error(params, x, h, v_abs, dtype) -> torch.Tensor:
    """Bound on |computed vᵀ ∂h_t/∂h_{t-1} - exact| for one tanh-RNN step in `dtype`, (B, n).

    The backward is (v ⊙ (1 - y²)) W_hh with y = tanh(z) the saved output:
      z = W_ih x + b_ih + W_hh h + b_hh: a sum of K = m + n + 2 products, off by γ_K Σ|terms| + 2Kη
        (claims.tolerances.preactivation_error);
      y off by |Δz| (tanh is 1-Lipschitz) + ACTIVATION_ULPS u |y|; 1 - y² off by 2|Δy| + |Δy|² + 2u;
      v ⊙ (1 - y²) rounds once; the product with W_hh sums n terms: γ_(n+1) of the magnitudes.
    """
    u, eta = unit_roundoff(dtype), smallest_subnormal(dtype)
    n = params.hidden_size
    err_z = preactivation_error(params, x, h, dtype)  # the LSTM's pre-activation bound, with n rows
    y = torch.tanh(x @ params.weight_ih.T + params.bias_ih + h @ params.weight_hh.T + params.bias_hh)
    err_y = err_z + ACTIVATION_ULPS * (u * y.abs() + eta)
    d = 1 - y * y
    err_d = 2 * err_y + err_y ** 2 + 2 * u
    Wabs = params.weight_hh.abs()
    return (v_abs * err_d) @ Wabs + gamma(n + 1, dtype) * ((v_abs * (d + err_d)) @ Wabs) + (n + 1) * eta


def rnn_backward_bound(params, xs, hs, J: torch.Tensor, v: torch.Tensor, dtype) -> torch.Tensor:
    """Bound on |computed rows of ∂h_T/∂h_0 - float64 reference rows| along the RNN's own trajectory.

    xs (T, R, m); hs (T + 1, R, n) the trajectory h_0..h_T; J (T, R, n, n) the exact step Jacobians;
    v (T + 1, R, n) the reference cotangents (v[T] the seeds). Local error: the step bound in
    `dtype` plus the same bound in float64 (the reference also rounds).
    """
    T, R, n = xs.shape[0], xs.shape[1], hs.shape[-1]
    err = torch.zeros(R, n, dtype=torch.float64)
    for t in range(T - 1, -1, -1):
        va = v[t + 1].abs() + err
        loc = rnn_step_vjp_error(params, xs[t], hs[t], va, dtype) + rnn_step_vjp_error(params, xs[t], hs[t], va,
                                                                                        torch.float64)
        err = (err.unsqueeze(1) @ J[t].abs()).squeeze(1) + loc
    return err


__all__ = ["rnn_step_vjp_error", "rnn_backward_bound"]
