"""||dc_t/dc_0|| and the vanilla RNN's ||dh_t/dh_0|| at every t, with the forward pass in a low dtype.

The report's central picture (issue 14 item 4) and what bfloat16 / float16 do to the
cell-state path (issue 12 item 3). Two halves, kept apart so each can be checked:

1. `lstm_forward` / `rnn_forward`: the forward pass in `dtype` *as torch's CPU cell kernels
   compute it* (aten's lstm_cell / rnn_tanh_cell): every parameter and input rounded to the
   dtype; gates = (h W_hh^T + b_hh) + (x W_ih^T + b_ih), each GEMM accumulating in float32
   and rounded once to the dtype, their sum rounded; σ, tanh and every product and sum of
   c_t = f ⊙ c_{t-1} + i ⊙ g, h_t = o ⊙ tanh(c_t) rounded to the dtype. So in bfloat16 a
   forget gate is exactly 1 or at most 1 - 2^-8 (float16: 1 - 2^-11), as a kernel's is.
2. `running_log10_norms`: the derivative of that computation's real-arithmetic function at
   the states the low-precision forward produced, in float64: the forward-mode recursion on
   (P_h, P_c) = d(h_t, c_t)/dc_0 (h_0 and the inputs fixed; the same recursion as
   reference.forget_bias.jacobian_norm_table), rescaled by a power of two every 8 steps, so one
   pass gives ||dc_t/dc_0||_2 for every t with no underflow. The product is kept in float64,
   not in the dtype, on purpose: the curve then shows what the *forward's* rounding (the
   quantised gates) does to the path, unmixed with the rounding of a 1000-factor product
   in a 8- or 11-bit significand (relative noise ~ T u, 4 at T = 1000 in bfloat16: no
   digit left) and with float16's range (an unscaled product underflows its 6e-8 within
   a few dozen steps at b_f = 0, which is loss scaling's problem, G2's, not the path's).

The 2-norm at every t: a full SVD per step costs 36 us per 16 x 16 matrix here (4 s for
the picture's 120 000), so each step does power iteration warm-started from the previous
step's right singular vector (the product's top singular direction settles as t grows,
Oseledets), a lower bound of the norm: to convergence up to t = 100, one step per t after.
At the steps in `exact_at` the exact SVD is taken and the largest gap between the two is
returned, so the estimate's quality is measured in every run rather than assumed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.reference.vanilla_rnn import RNNParams

LN10 = math.log(10.0)
# Chosen: stop the power iteration when a step raises the estimate by < 1e-4 relatively (4e-5
# in log10, far below what a plot shows), and after 30 steps whatever happens; the gap to the
# exact norm at `exact_at` is measured and returned, so a slow convergence shows.
POWER_RTOL = 1e-4
POWER_MAX_STEPS = 30
# Chosen: past t = 100 the top right singular vector has settled (one warm step per t keeps the
# estimate within 0.01 in log10 of the SVD at t = 200, 500, 1000: measured, and returned each run),
# so one power step per t there; to t = 100, iterate to POWER_RTOL.
POWER_CONVERGE_UNTIL = 100
# Rescale the running product every 8 steps (as reference.forget_bias does): one step changes its
# entries by a factor between ~1e-3 and a few units at torch's init, so 8 steps stay far inside
# float64's range (1e-308 .. 1e308) between rescalings.
RESCALE_EVERY = 8


@dataclass(frozen=True)
class LSTMForward:
    """The low-precision forward's values per step, (T, P, n) each, in the dtype they were computed in."""

    i: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    o: torch.Tensor
    c: torch.Tensor  # c_1..c_T
    tanh_c: torch.Tensor  # tanh(c_t) as the kernel computed it
    weight_hh: torch.Tensor  # (P, 4n, n): the weights the forward used (rounded to its dtype)


@dataclass(frozen=True)
class RunningNorms:
    """log10 of a Jacobian product's 2-norm at every t = 1..T, per parameter set."""

    log10_norm: torch.Tensor  # (P, T) float64, column t-1 is step t
    exact_at: tuple  # the steps where the norm is an exact SVD's
    max_estimate_gap: float  # max over P and exact_at of log10(exact) - log10(power-iteration estimate)
    gap_at: dict  # step in exact_at -> max over P of that gap

    def max_gap_from(self, t: int) -> float:
        """The largest measured gap at the exact steps >= t (where the estimate is what the curve shows)."""
        return max((g for s, g in self.gap_at.items() if s >= t), default=float("nan"))


def _stack(params_list, name, dtype):
    return torch.stack([getattr(p, name) for p in params_list]).to(dtype)


def _linear(b: torch.Tensor, x: torch.Tensor, W: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """b + x W^T per parameter set, as a low-precision GEMM computes it: accumulated in float32, rounded once.

    The operands are exact in the dtype and a product of two bfloat16 (float16) numbers is exact
    in float32 (8 + 8, 11 + 11 <= 24 significant bits), so a float32 baddbmm of them followed by
    one rounding is the kernel's arithmetic (up to summation order), at a quarter of the time of
    CPU bfloat16 baddbmm (65 against 300 us a call, measured). Bit-equal to torch's lstm_cell
    in bfloat16 and float16 on the tests' sequences (tests/meta/test_central_picture.py).
    """
    if dtype in (torch.bfloat16, torch.float16):
        return torch.baddbmm(b.float(), x.float(), W.float().mT).to(dtype)
    return torch.baddbmm(b, x, W.mT)


def lstm_forward(params_list: list[LSTMParams], xs: torch.Tensor, dtype: torch.dtype) -> LSTMForward:
    """The LSTM over xs (T, P, m), one sequence per parameter set, from h_0 = c_0 = 0, all in `dtype`."""
    T, P, m = xs.shape
    if P != len(params_list):
        raise ValueError(f"xs must be (T, P = {len(params_list)}, m), got {tuple(xs.shape)}")
    W_ih, W_hh = _stack(params_list, "weight_ih", dtype), _stack(params_list, "weight_hh", dtype)
    b_ih, b_hh = _stack(params_list, "bias_ih", dtype), _stack(params_list, "bias_hh", dtype)
    n = W_hh.shape[-1]
    # linear_ih for every step at once: one GEMM per parameter set, each entry rounded once to the dtype.
    a_x = _linear(b_ih.unsqueeze(1), xs.to(dtype).transpose(0, 1), W_ih, dtype).transpose(0, 1)  # (T, P, 4n)
    # Every result written into its step's slot (out=): the loop is T x 9 small kernels whose
    # dispatch, not arithmetic, is the cost. σ over all four blocks then tanh over g's: elementwise,
    # so each value is rounded exactly as aten's per-chunk sigmoid_/tanh_ round it.
    S, G = torch.empty(T, P, 4 * n, dtype=dtype), torch.empty(T, P, n, dtype=dtype)
    C, TC = torch.empty(T, P, n, dtype=dtype), torch.empty(T, P, n, dtype=dtype)
    h = torch.zeros(P, 1, n, dtype=dtype)
    c = torch.zeros(P, n, dtype=dtype)
    for t in range(T):
        gates = _linear(b_hh.unsqueeze(1), h, W_hh, dtype).squeeze(1).add_(a_x[t])  # linear_hh(h).add_(linear_ih(x))
        torch.sigmoid(gates, out=S[t])
        torch.tanh(gates[:, 2 * n:3 * n], out=G[t])
        i, f, o = S[t, :, :n], S[t, :, n:2 * n], S[t, :, 3 * n:]
        c = torch.mul(f, c, out=C[t]).add_(i * G[t])  # aten: (f * c).add_(i * g), each op rounded
        h = torch.mul(o, torch.tanh(c, out=TC[t])).unsqueeze(1)
    out = {"i": S[..., :n], "f": S[..., n:2 * n], "g": G, "o": S[..., 3 * n:], "c": C, "tanh_c": TC}
    return LSTMForward(**out, weight_hh=W_hh)


def rnn_forward(params_list: list[RNNParams], xs: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The tanh RNN's h_1..h_T (T, P, n) over xs (T, P, m) from h_0 = 0 in `dtype` (aten's rnn_tanh_cell)."""
    T, P, m = xs.shape
    W_ih, W_hh = _stack(params_list, "weight_ih", dtype), _stack(params_list, "weight_hh", dtype)
    b_ih, b_hh = _stack(params_list, "bias_ih", dtype), _stack(params_list, "bias_hh", dtype)
    a_x = _linear(b_ih.unsqueeze(1), xs.to(dtype).transpose(0, 1), W_ih, dtype)
    h = torch.zeros(P, 1, W_hh.shape[-1], dtype=dtype)
    hs = torch.empty(T, P, W_hh.shape[-1], dtype=dtype)
    for t in range(T):  # aten: tanh(linear_hh(h).add_(linear_ih(x)))
        h = torch.tanh(_linear(b_hh.unsqueeze(1), h, W_hh, dtype).squeeze(1).add_(a_x[:, t]), out=hs[t]).unsqueeze(1)
    return hs


def _power_step(A: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """||A v|| (a lower bound of ||A||_2 for unit v) and the next iterate A^T A v / ||A^T A v||."""
    u = torch.bmm(A, v)
    s = torch.linalg.vector_norm(u, dim=(1, 2))
    w = torch.bmm(A.mT, u)
    nw = torch.linalg.vector_norm(w, dim=(1, 2), keepdim=True)
    return s, torch.where(nw > 0, w / nw.clamp_min(torch.finfo(w.dtype).tiny), v)


class _Running:
    """Norm bookkeeping shared by both recursions: scale, power iteration, exact SVDs at chosen steps."""

    def __init__(self, P: int, n: int, T: int, exact_at):
        gen = torch.Generator().manual_seed(0)
        v = torch.rand(P, n, 1, generator=gen, dtype=torch.float64) + 0.5  # positive: not orthogonal to diag(f)'s top
        self.v = v / torch.linalg.vector_norm(v, dim=1, keepdim=True)
        self.log_scale = torch.zeros(P, dtype=torch.float64)
        self.out = torch.empty(P, T, dtype=torch.float64)
        self.exact_at = tuple(sorted(t for t in set(exact_at) if 1 <= t <= T))
        self.gap = 0.0
        self.gap_at = {}

    def rescale(self, *mats):
        big = torch.stack([M.abs().flatten(1).amax(1) for M in mats]).amax(0)
        big = torch.where(big > 0, big, torch.ones_like(big))
        s = torch.exp2(torch.floor(torch.log2(big)))  # a power of two: the division is exact
        self.log_scale += torch.log(s)
        return [M / s.view(-1, 1, 1) for M in mats]

    def record(self, t: int, A: torch.Tensor):
        # Power steps until the estimate rises by less than POWER_RTOL (it never falls: ||A v_k||
        # is non-decreasing along the power method on A^T A) up to POWER_CONVERGE_UNTIL; one step after.
        est, self.v = _power_step(A, self.v)
        for _ in range(POWER_MAX_STEPS - 1 if t <= POWER_CONVERGE_UNTIL else 0):
            nxt, self.v = _power_step(A, self.v)
            done = bool(((nxt - est) <= POWER_RTOL * nxt).all())
            est = torch.maximum(est, nxt)
            if done:
                break
        log10_est = (torch.log(est) + self.log_scale) / LN10
        if t in self.exact_at:
            exact = (torch.log(torch.linalg.matrix_norm(A, ord=2)) + self.log_scale) / LN10
            self.gap_at[t] = (exact - log10_est).max().item()
            self.gap = max(self.gap, self.gap_at[t])
            log10_est = exact
        self.out[:, t - 1] = log10_est

    def result(self) -> RunningNorms:
        return RunningNorms(self.out, self.exact_at, self.gap, dict(self.gap_at))


def running_log10_norms(fwds: LSTMForward | list[LSTMForward], exact_at=()) -> RunningNorms:
    """log10 ||dc_t/dc_0||_2 for t = 1..T of each forward's parameter sets (values taken to float64; module doc).

    Several forwards (e.g. one per dtype, same T and n) run as one batch: one pass, rows in order."""
    d = torch.float64
    fwds = [fwds] if isinstance(fwds, LSTMForward) else list(fwds)
    i, f, g, o, c, tc = (torch.cat([getattr(w, k).to(d) for w in fwds], dim=1)
                         for k in ("i", "f", "g", "o", "c", "tanh_c"))
    W = torch.cat([w.weight_hh.to(d) for w in fwds])
    T, P, n = f.shape
    Ph = torch.zeros(P, n, n, dtype=d)
    Pc = torch.eye(n, dtype=d).repeat(P, 1, 1)
    c_prev = torch.cat([torch.zeros(1, P, n, dtype=d), c[:-1]])
    # Row scalings of each step, for all steps at once (cheap elementwise work outside the loop).
    col = lambda x: x.unsqueeze(-1)  # noqa: E731  (T, P, n) -> (T, P, n, 1): scales the rows of an n x n
    s_f, s_cf, s_gi, s_ig = col(f), col(c_prev * f * (1 - f)), col(g * i * (1 - i)), col(i * (1 - g * g))
    s_o, s_oc = col(tc * o * (1 - o)), col(o * (1 - tc * tc))
    run = _Running(P, n, T, exact_at)
    for t in range(T):
        Q = torch.bmm(W, Ph)  # the pre-activations' derivative (x_t and h_0 fixed)
        Q_i, Q_f, Q_g, Q_o = Q.split(n, dim=1)
        Pc = (s_f[t] * Pc).addcmul_(s_cf[t], Q_f).addcmul_(s_gi[t], Q_i).addcmul_(s_ig[t], Q_g)
        Ph = (s_o[t] * Q_o).addcmul_(s_oc[t], Pc)
        if t % RESCALE_EVERY == 0:
            Ph, Pc = run.rescale(Ph, Pc)
        run.record(t + 1, Pc)
    return run.result()


def rnn_running_log10_norms(hs: torch.Tensor, weight_hh: torch.Tensor, exact_at=()) -> RunningNorms:
    """log10 ||dh_t/dh_0||_2 = ||diag(1 - h_t^2) W_hh ⋯ diag(1 - h_1^2) W_hh|| for t = 1..T, in float64.

    hs (T, P, n) from rnn_forward (any dtype); weight_hh (P, n, n) the weights that forward used."""
    d = torch.float64
    s = (1 - hs.to(d) ** 2).unsqueeze(-1)  # tanh'(z_t) from the forward's own h_t
    W = weight_hh.to(d)
    T, P, n = hs.shape
    R = torch.eye(n, dtype=d).repeat(P, 1, 1)
    run = _Running(P, n, T, exact_at)
    for t in range(T):
        R = s[t] * torch.bmm(W, R)
        if t % RESCALE_EVERY == 0:
            (R,) = run.rescale(R)
        run.record(t + 1, R)
    return run.result()
