"""Long-range Jacobians evaluated along a *given* trajectory (CLAIMS.md L6, L7), float64, no autograd.

reference.jacobian_chain unrolls the float64 reference itself. The claim checks need the
same closed forms along the trajectory that the cell under test computed (its own h_t,
c_t): then the only difference between the cell's autograd and the closed form is the
rounding of each step's backward, which claims/tolerances.py bounds step by step. Here:

- `step_inputs`: the per-step (x_t, h_{t-1}, c_{t-1}) of a trajectory, and o_{t-1};
- `true_backward`: the rows of the true dc_T/dc_0 (h_0 and the inputs fixed) by the
  hand-derived backward of reference.lstm_step.lstm_step_vjp through the full state (h, c);
- `note_backward`: the rows of the note's product J_T ⋯ J_1, J_t = diag(f_t) + K_t M_{t-1},
  J_1 = diag(f_1), by u_{t-1} = f_t ⊙ u_t + M_{t-1} ⊙ (K_tᵀ u_t);
- `scaled_chain`: J_T ⋯ J_1 and D_T ⋯ D_1 with a common running scale, so products of
  hundreds of factors neither overflow nor underflow (L7's relative error).

Shapes: xs (T, R, m); trajectories hs, cs (T + 1, R, n) holding h_0..h_T and c_0..c_T;
per-step vectors (T, R, n).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from lstm_claims.reference.jacobian_chain import state_transition_jacobians
from lstm_claims.reference.lstm_step import LSTMParams, dtanh, lstm_step_vjp, preactivations


@contextlib.contextmanager
def single_threaded():
    """Run torch ops on one thread, restoring the setting after.

    The long loops here apply hundreds of ops to tensors of a few thousand elements each:
    a second thread only adds a synchronisation per op, and on a loaded 2-core machine an
    OpenMP thread waiting for a descheduled peer made such a loop 50x slower (measured:
    1.2 s against 60 s for L9's table).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class StepInputs:
    """What step t (t = 1..T) of a trajectory reads: x_t, h_{t-1}, c_{t-1}, and o_{t-1} (o_0 := 0)."""

    x: torch.Tensor  # (T, R, m)
    h_prev: torch.Tensor  # (T, R, n)
    c_prev: torch.Tensor  # (T, R, n)
    o_prev: torch.Tensor  # (T, R, n); o_0 is unused (h_0 is held fixed) and set to 0

    @property
    def steps(self) -> int:
        return self.x.shape[0]


def step_inputs(params: LSTMParams, xs: torch.Tensor, hs: torch.Tensor, cs: torch.Tensor) -> StepInputs:
    """The per-step inputs of a trajectory (hs, cs: (T + 1, R, n), from h_0, c_0)."""
    T = xs.shape[0]
    if hs.shape[0] != T + 1 or cs.shape[0] != T + 1:
        raise ValueError(f"hs and cs must hold T + 1 = {T + 1} states (h_0..h_T), got {hs.shape[0]} and {cs.shape[0]}")
    o = torch.zeros_like(hs[:T])
    if T > 1:
        # o_{t-1} = σ(a^o_{t-1}), a_{t-1} from (x_{t-1}, h_{t-2}): the gate of the previous step.
        gt = preactivations(params, xs[:T - 1].flatten(0, 1), hs[:T - 1].flatten(0, 1))
        o[1:] = gt.o.unflatten(0, (T - 1, xs.shape[1]))
    return StepInputs(xs, hs[:T], cs[:T], o)


def state_jacobians_along(params: LSTMParams, inp: StepInputs) -> torch.Tensor:
    """S_t = ∂(h_t, c_t)/∂(h_{t-1}, c_{t-1}) at each step's own inputs, (T, R, 2n, 2n)."""
    T, R, m = inp.x.shape
    S = state_transition_jacobians(params, inp.x.reshape(1, T * R, m), inp.h_prev.reshape(T * R, -1),
                                   inp.c_prev.reshape(T * R, -1))
    return S[0].unflatten(0, (T, R))


@dataclass(frozen=True)
class Backward:
    """Cotangents of a backward pass: v_h[t], v_c[t] are those of (h_t, c_t), t = 0..T."""

    v_h: torch.Tensor  # (T + 1, R, n)
    v_c: torch.Tensor  # (T + 1, R, n)

    @property
    def rows(self) -> torch.Tensor:
        """v_c[0]: with seeds e_k, row k of dc_T/dc_0."""
        return self.v_c[0]


def true_backward(params: LSTMParams, inp: StepInputs, seed_c: torch.Tensor) -> Backward:
    """(v_h, v_c) from (0, seed_c) at time T back to time 0 through the full state, by lstm_step_vjp."""
    T = inp.steps
    v_h, v_c = [torch.zeros_like(seed_c)], [seed_c]
    for t in range(T - 1, -1, -1):
        g = lstm_step_vjp(params, inp.x[t], inp.h_prev[t], inp.c_prev[t], v_h[-1], v_c[-1])
        v_h.append(g.h)
        v_c.append(g.c)
    return Backward(torch.stack(v_h[::-1]), torch.stack(v_c[::-1]))


def note_backward(params: LSTMParams, inp: StepInputs, seed_c: torch.Tensor) -> Backward:
    """The note's product, transposed, applied to seed_c: u_{t-1} = f_t ⊙ u_t + M_{t-1} ⊙ (K_tᵀ u_t).

    K_tᵀ u and f ⊙ u are lstm_step_vjp's d/dh and d/dc for v_h = 0, v_c = u (L2's K_t is
    ∂c_t/∂h_{t-1}); M_{t-1} = o_{t-1} ⊙ tanh'(c_{t-1}) for t >= 2, and 0 at t = 1 (h_0 fixed).
    v_h holds K_tᵀ u_t (the part that went through h), for the rounding bound.
    """
    T = inp.steps
    zeros = torch.zeros_like(seed_c)
    u, through_h = [seed_c], [zeros]
    for t in range(T - 1, -1, -1):
        g = lstm_step_vjp(params, inp.x[t], inp.h_prev[t], inp.c_prev[t], zeros, u[-1])
        M = inp.o_prev[t] * dtanh(inp.c_prev[t]) if t > 0 else zeros
        u.append(g.c + M * g.h)
        through_h.append(g.h)
    return Backward(torch.stack(through_h[::-1]), torch.stack(u[::-1]))


@dataclass(frozen=True)
class ScaledChain:
    """J_T ⋯ J_1 = e^log_scale P_J and D_T ⋯ D_1 = e^log_scale P_D, with one scale for both."""

    P_J: torch.Tensor  # (B, n, n)
    P_D: torch.Tensor  # (B, n, n)
    P_absJ: torch.Tensor  # (B, n, n) |J_T| ⋯ |J_1|, same scale: the rounding bound's magnitude
    log_scale: torch.Tensor  # (B,)


def scaled_chain(J: torch.Tensor, f: torch.Tensor) -> ScaledChain:
    """Products of J (T, B, n, n) and D = diag(f) (T, B, n), latest factor on the left.

    After each step all three products are divided by the largest |entry| of the three
    (a power of two, so the division is exact) and its log accumulated: every entry stays
    in [0, 1], nothing overflows, and an entry underflows only if it is 2^-1022 times smaller
    than the largest one, i.e. negligible at the precision of the result.
    """
    T, B, n, _ = J.shape
    P_J, P_absJ = J[0].clone(), J[0].abs()
    P_D = f[0].clone()
    log_scale = torch.zeros(B, dtype=J.dtype, device=J.device)
    for t in range(T):
        if t > 0:
            P_J = J[t] @ P_J
            P_absJ = J[t].abs() @ P_absJ
            P_D = f[t] * P_D
        big = torch.maximum(P_absJ.flatten(1).amax(1), P_D.abs().amax(1))
        big = torch.where(big > 0, big, torch.ones_like(big))
        s = torch.exp2(torch.floor(torch.log2(big)))  # a power of two: exact division
        P_J, P_absJ, P_D = P_J / s.view(B, 1, 1), P_absJ / s.view(B, 1, 1), P_D / s.view(B, 1)
        log_scale = log_scale + torch.log(s)
    return ScaledChain(P_J, torch.diag_embed(P_D), P_absJ, log_scale)
