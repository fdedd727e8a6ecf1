"""Forget-bias initialisations and ||dc_T/dc_0|| at torch's default initialisation (CLAIMS.md L9).

torch.nn.LSTMCell initialises every weight and both biases uniform in ±1/√n. Its forget gate
sees the *sum* bias_ih + bias_hh, so "b_f = 1" here means bias_ih[f] = 1 and bias_hh[f] = 0
(`with_forget_bias`). The chrono initialisation (Tallec & Ollivier 2018, "Can recurrent
neural networks warp time?") draws b_f = log U(1, T_max - 1) per unit and sets b_i = -b_f.

`jacobian_norm_table` runs P parameter sets at once (one batched matmul per step), carrying
the true total derivative ∂(h_t, c_t)/∂c_0 (h_0 and the inputs fixed; the same closed form
as reference.jacobian_chain.full_state_jacobian, in forward mode) with a running power-of-two
scale, so ||dc_T/dc_0|| is reported as a log10 for T = 1000 and beyond without underflow. It
also carries log Π_t f_t,k, whose max over k is ||diag(Π f)||, the note's approximation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lstm_claims.reference.lstm_step import LSTMParams

RESCALE_EVERY = 8


def default_lstm_params(n: int, m: int, seed: int, dtype=torch.float64) -> LSTMParams:
    """torch.nn.LSTMCell(m, n)'s default initialisation under torch.manual_seed(seed) (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):  # restores the CPU generator; CUDA's is never touched
        torch.default_generator.manual_seed(seed)
        cell = torch.nn.LSTMCell(m, n)
    return LSTMParams(*(getattr(cell, k).detach().to(dtype) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))


def with_forget_bias(params: LSTMParams, b_f, b_i=None) -> LSTMParams:
    """The gate sees b_f (bias_ih[f] = b_f, bias_hh[f] = 0); and b_i likewise if given. b_f: scalar or (n,)."""
    n = params.hidden_size
    b_ih, b_hh = params.bias_ih.clone(), params.bias_hh.clone()
    b_ih[n:2 * n] = torch.as_tensor(b_f, dtype=b_ih.dtype)
    b_hh[n:2 * n] = 0
    if b_i is not None:
        b_ih[:n] = torch.as_tensor(b_i, dtype=b_ih.dtype)
        b_hh[:n] = 0
    return LSTMParams(params.weight_ih, params.weight_hh, b_ih, b_hh)


def chrono_forget_bias(n: int, T_max: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    """b_f = log U(1, T_max - 1), one per unit (Tallec & Ollivier 2018)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.log(1 + (T_max - 2) * torch.rand(n, generator=gen, dtype=dtype))


@dataclass(frozen=True)
class NormTable:
    """Per parameter set p and recorded span T: log10 ||dc_T/dc_0||_2 and log10 max_k Π_t f_t,k."""

    steps: tuple  # the recorded T
    log10_norm: torch.Tensor  # (P, len(steps))
    log10_diag: torch.Tensor  # (P, len(steps))


def _stack(params_list, name):
    return torch.stack([getattr(p, name) for p in params_list])


def jacobian_norm_table(params_list: list[LSTMParams], xs: torch.Tensor, steps: tuple[int, ...]) -> NormTable:
    """||dc_T/dc_0|| (true total derivative, h_0 = c_0 = 0 and xs fixed) for each parameter set.

    xs: (T_max, P, m), one input sequence per parameter set. Forward-mode recursion on
    (P_h, P_c) = ∂(h_t, c_t)/∂c_0 (n x n each), starting from (0, I):
        Q = W_hh P_h (the pre-activations' derivative: x_t and h_0 are fixed)
        P_c <- f ⊙ P_c + (c_(t-1) ⊙ σ'(a^f)) ⊙ Q_f + (g ⊙ σ'(a^i)) ⊙ Q_i + (i ⊙ tanh'(a^g)) ⊙ Q_g
        P_h <- tanh(c_t) ⊙ σ'(a^o) ⊙ Q_o + o ⊙ tanh'(c_t) ⊙ P_c
    (⊙ of a vector with a matrix scales its rows), divided each step by a power of two.
    """
    P = len(params_list)
    T_max = max(steps)
    if xs.shape[0] < T_max or xs.shape[1] != P:
        raise ValueError(f"xs must be (T >= {T_max}, P = {P}, m), got {tuple(xs.shape)}")
    W_ih, W_hh = _stack(params_list, "weight_ih"), _stack(params_list, "weight_hh")  # (P, 4n, m), (P, 4n, n)
    b = _stack(params_list, "bias_ih") + _stack(params_list, "bias_hh")
    n = W_hh.shape[-1]
    dt = W_hh.dtype
    h = torch.zeros(P, n, 1, dtype=dt)
    c = torch.zeros(P, n, 1, dtype=dt)
    Ph = torch.zeros(P, n, n, dtype=dt)
    Pc = torch.eye(n, dtype=dt).repeat(P, 1, 1)
    log_scale = torch.zeros(P, dtype=torch.float64)
    log_f = torch.zeros(P, n, dtype=torch.float64)
    a_x = torch.einsum("pgm,tpm->tpg", W_ih, xs[:T_max].to(dt)) + b  # (T, P, 4n)
    norms, diags = [], []
    for t in range(1, T_max + 1):
        out = torch.bmm(W_hh, torch.cat([h, Ph], dim=2))  # one pass over W_hh: (P, 4n, 1 + n)
        a = a_x[t - 1].unsqueeze(2) + out[:, :, :1]
        Q = out[:, :, 1:]
        a_i, a_f, a_g, a_o = a.split(n, dim=1)
        Q_i, Q_f, Q_g, Q_o = Q.split(n, dim=1)
        i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
        Pc = (f * Pc).addcmul_(c * f * (1 - f), Q_f).addcmul_(g * i * (1 - i), Q_i).addcmul_(i * (1 - g * g), Q_g)
        c = f * c + i * g
        tc = torch.tanh(c)
        Ph = (tc * o * (1 - o) * Q_o).addcmul_(o * (1 - tc * tc), Pc)
        h = o * tc
        log_f += torch.nn.functional.logsigmoid(a_f.squeeze(2)).to(torch.float64)
        # Rescale every RESCALE_EVERY steps: one step multiplies the entries by at most
        # 1 + ||W_hh||_∞-ish (a few units at torch's init), so 8 steps cannot overflow.
        if t % RESCALE_EVERY == 0 or t in steps:
            big = torch.maximum(Ph.abs().flatten(1).amax(1), Pc.abs().flatten(1).amax(1))
            big = torch.where(big > 0, big, torch.ones_like(big))
            s = torch.exp2(torch.floor(torch.log2(big)))  # exact division
            Ph, Pc = Ph / s.view(P, 1, 1), Pc / s.view(P, 1, 1)
            log_scale += torch.log(s).to(torch.float64)
        if t in steps:
            nrm = torch.linalg.matrix_norm(Pc, ord=2).to(torch.float64)
            norms.append((torch.log(nrm) + log_scale) / math.log(10))
            diags.append(log_f.amax(1) / math.log(10))
    return NormTable(tuple(sorted(set(steps))), torch.stack(norms, 1), torch.stack(diags, 1))
