"""Stored LSTM parameters whose long-range cell-state Jacobian grows exponentially (CLAIMS.md G1).

1. `fixed_point_example()` — the reproducible example, in the note's own regime f ≈ 1.

   Make the state sit at an exact fixed point h = c = 0 while the gates move: the
   candidate's input rows and biases are zero (W_ig = 0, b_g = 0), so with h_{t-1} = 0 its
   pre-activation is exactly 0, g_t = tanh(0) = 0 and c_t = f_t ⊙ 0 + i_t ⊙ 0 = 0, for any
   inputs x_t (they still drive i_t, f_t, o_t). Every dtype computes these zeros exactly.
   At that state the one-step factors of L2 are

       D_t = diag(f_t),   E_t = K_t M_{t-1} = diag(i_t) W_hg diag(o_{t-1})

   (c_{t-1} = 0 kills the W_hf term, g_t = 0 the W_hi term, tanh'(0) = 1; the W_ho term of
   the full state Jacobian carries a factor tanh(c_t) = 0, so the note's product J_T ⋯ J_2 D_1
   *is* the true dc_T/dc_0 here — L6's gap is zero). With W_hg >= 0 entrywise every J_t is a
   non-negative matrix, so (Perron–Frobenius, applied to J_t 1) for every T

       min f_1 · Π_{t=2..T} r_t  <=  ||dc_T/dc_0||_2  <=  √n · max f_1 · Π_{t=2..T} R_t

   with r_t, R_t the smallest and largest row sums of J_t. Here f_t ≈ σ(4) ≈ 0.98 (the
   note's "f ≈ 1"), i_t, o_t ≈ σ(2) ≈ 0.88 and W_hg has row sums 0.75, so r_t ≈ 0.98 +
   0.88² · 0.75 ≈ 1.56 and the norm grows by about 1.5 per step. ||D_t|| = max f_t < 1: the
   direct path alone (Π D_t) decays; the growth is entirely the indirect term's.

   This is the linearisation at an unstable equilibrium: a perturbation of c_0 grows by the
   same factor until the gates saturate. The gradient *at* this point is exact and huge,
   which is what exploding gradients are.

2. `chaotic_example(c0)` — sustained growth off any fixed point. Off an equilibrium the
   trajectory of a bounded system can keep a growing Jacobian product only if it is
   chaotic (positive largest Lyapunov exponent). With W_hg = 12 · (a rotation by 2.5 rad),
   rounded to the dyadic numbers below, b_f = -2, b_i = b_o = 4 and no input, the n = 2
   LSTM has a chaotic attractor: ||dc_T/dc_0||^{1/T} ≈ e^{0.18} ≈ 1.2 per step from any
   of the initial states tried. It is fragile in the parameters (nearby rotations or
   scalings fall into periodic windows with negative exponents), so it illustrates rather
   than carries the claim; the suite measures it with the float64 closed form.

Values are exactly representable in float32 (dyadic, or float32-rounded by construction).
"""
from __future__ import annotations

import torch

from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.reference.unrolled_backward import LSTMSequence

FIXED_POINT_STEPS = 1024  # inputs stored for T up to this (long enough to overflow float64 gradients' norm)
FIXED_POINT_SEED = 20240601  # the inputs are a fixed function of this seed


def _f32(t: torch.Tensor) -> torch.Tensor:
    """float64 tensor holding exactly the float32 rounding of t."""
    return t.to(torch.float32).to(torch.float64)


def _blocks(i, f, g, o) -> torch.Tensor:
    return torch.tensor([*i, *f, *g, *o], dtype=torch.float64)


def fixed_point_example(steps: int = FIXED_POINT_STEPS) -> LSTMSequence:
    """The stored exploding example (module docstring, item 1): n = 2, m = 2, B = 1, h_0 = c_0 = 0."""
    if not 1 <= steps <= FIXED_POINT_STEPS:
        raise ValueError(f"steps must be in 1..{FIXED_POINT_STEPS}, got {steps}")
    n, m = 2, 2
    w_hg = [[0.5, 0.25], [0.25, 0.5]]  # >= 0, row sums 0.75: the feedback that explodes
    # W_hi, W_hf, W_ho are nonzero to show they do not matter at the fixed point (see docstring).
    weight_hh = _blocks(i=[[0.25, -0.5], [0.5, 0.25]], f=[[-0.25, 0.5], [0.125, -0.375]],
                        g=w_hg, o=[[0.375, -0.125], [-0.5, 0.25]])
    # Inputs move i, f, o by at most 0.375 + 0.125 in pre-activation; the g rows are zero.
    weight_ih = _blocks(i=[[0.25, -0.125], [-0.125, 0.25]], f=[[0.125, 0.25], [-0.25, 0.125]],
                        g=[[0.0, 0.0], [0.0, 0.0]], o=[[-0.25, 0.125], [0.125, 0.25]])
    bias_ih = torch.tensor([2.0, 2.0, 4.0, 4.0, 0.0, 0.0, 2.0, 2.0], dtype=torch.float64)  # b_i, b_f, b_g = 0, b_o
    params = LSTMParams(weight_ih, weight_hh, bias_ih, torch.zeros(4 * n, dtype=torch.float64))
    gen = torch.Generator().manual_seed(FIXED_POINT_SEED)
    xs = _f32(2 * torch.rand(FIXED_POINT_STEPS, 1, m, generator=gen, dtype=torch.float64) - 1)[:steps]
    zeros = torch.zeros(1, n, dtype=torch.float64)
    return LSTMSequence(params, xs, zeros, zeros.clone(),
                        drawn={"construction": "fixed point h = c = 0, f ≈ σ(4), i, o ≈ σ(2), W_hg ≥ 0 with row sums 0.75",
                               "seed": FIXED_POINT_SEED})


CHAOTIC_W_HG = [[-9.625, -7.1875], [7.1875, -9.625]]  # ≈ 12 · [[cos 2.5, -sin 2.5], [sin 2.5, cos 2.5]]
CHAOTIC_INITIAL_STATES = ([0.5, -0.25], [0.125, 0.25], [-1.0, 1.0])


def chaotic_example(c0, steps: int) -> LSTMSequence:
    """The chaotic n = 2 LSTM of the module docstring (item 2), no input (m = 1, x = 0), h_0 = 0."""
    n = 2
    z = [[0.0, 0.0], [0.0, 0.0]]
    params = LSTMParams(torch.zeros(4 * n, 1, dtype=torch.float64), _blocks(z, z, CHAOTIC_W_HG, z),
                        torch.tensor([4.0, 4.0, -2.0, -2.0, 0.0, 0.0, 4.0, 4.0], dtype=torch.float64),
                        torch.zeros(4 * n, dtype=torch.float64))
    return LSTMSequence(params, torch.zeros(steps, 1, 1, dtype=torch.float64), torch.zeros(1, n, dtype=torch.float64),
                        _f32(torch.tensor([c0], dtype=torch.float64)),
                        drawn={"construction": "chaotic attractor, W_hg ≈ 12 R(2.5), b_f = -2", "c0": list(c0)})


def nonnegative_row_sums(J: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(smallest, largest) row sum of each matrix in J (..., n, n); J must be entrywise >= 0."""
    if (J < 0).any():
        raise ValueError("row-sum bounds need entrywise non-negative factors")
    s = J.sum(dim=-1)
    return s.amin(dim=-1), s.amax(dim=-1)


def log_cell_jacobian_norms(seq: LSTMSequence, steps) -> dict[int, torch.Tensor]:
    """{T: log ||dc_T/dc_0||_2 per batch row} for each T in `steps`, float64 closed form.

    The true total derivative (the c_0 columns, c_T rows of S_T ⋯ S_1, S_t the full state
    Jacobians of reference.jacobian_chain), accumulated with a running rescaling so that
    spans far beyond float64's range (a Lyapunov exponent over 10^4 steps) stay finite.
    """
    from lstm_claims.reference.jacobian_chain import state_transition_jacobians

    steps = sorted(set(int(T) for T in steps))
    S = state_transition_jacobians(seq.params, seq.xs[:steps[-1]], seq.h0, seq.c0)  # (T, B, 2n, 2n)
    n = seq.hidden_size
    P = S[0][..., :, n:]  # ∂(h_1, c_1)/∂c_0
    log_scale = torch.zeros(S.shape[1], dtype=torch.float64)
    out = {}
    for t in range(1, steps[-1] + 1):
        if t > 1:
            P = S[t - 1] @ P
        if t in steps:
            out[t] = log_scale + torch.log(torch.linalg.matrix_norm(P[..., n:, :], ord=2))
        s = torch.linalg.matrix_norm(P, ord="fro").clamp_min(torch.finfo(torch.float64).tiny)
        P = P / s[:, None, None]
        log_scale = log_scale + torch.log(s)
    return out
