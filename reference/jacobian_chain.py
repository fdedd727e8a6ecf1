"""Closed-form long-range Jacobians of an unrolled LSTM (CLAIMS.md L6, L7, L8), batched.

The note writes the long-range cell-state Jacobian as a product of one-step factors,

    ∂c_T/∂c_0 = J_T ⋯ J_1,    J_t = D_t + E_t,  D_t = diag(f_t),  E_t = K_t M_{t-1}      (note)

with K_t and M_{t-1} as in L2 and h_0 held fixed (so E_1 = 0, J_1 = D_1). That product is
the true total derivative only when c_t depends on c_{t-1} alone, i.e. when o_t does not
read h_{t-1} (W_ho = 0). For a general LSTM the state is (h, c) and the true total
derivative dc_T/dc_0 (h_0 and the inputs fixed) is a block of the product of the 2n x 2n
state Jacobians S_t = ∂(h_t, c_t)/∂(h_{t-1}, c_{t-1}):

    ∂c_t/∂c_{t-1} = diag(f_t)                ∂c_t/∂h_{t-1} = K_t
    ∂h_t/∂c_{t-1} = diag(o_t ⊙ tanh'(c_t) ⊙ f_t)
    ∂h_t/∂h_{t-1} = diag(tanh(c_t) ⊙ σ'(a^o_t)) W_ho + diag(o_t ⊙ tanh'(c_t)) K_t

(L6: equal to the note's product when W_ho = 0, different in general.) Everything here is
closed form, no autograd, in float64 unless told otherwise (`dtype=None` keeps the
inputs' dtype); `log_forget_products` gives L8's Π_t f_t in log space.

Shapes: xs (T, B, m); h0, c0 (B, n); per-step vectors (T, B, n); per-step matrices
(T, B, n, n); products (B, n, n).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lstm_claims.reference.cell_state_jacobians import gate_path
from lstm_claims.reference.lstm_step import Gates, LSTMParams, check_step_inputs, dsigmoid, dtanh

__all__ = [
    "Unrolled", "CellStateFactors", "unroll", "cell_state_factors", "cell_state_product",
    "state_transition_jacobians",
    "ordered_product", "ordered_product_chain", "ordered_product_tree", "full_state_jacobian",
    "log_forget_products",
]


@dataclass(frozen=True)
class Unrolled:
    """The forward pass of an unrolled LSTM: every step's pre-activations and state."""

    a_i: torch.Tensor  # (T, B, n) pre-activations a^i_t, t = 1..T (torch's gate order i, f, g, o)
    a_f: torch.Tensor  # (T, B, n)
    a_g: torch.Tensor  # (T, B, n)
    a_o: torch.Tensor  # (T, B, n)
    h: torch.Tensor  # (T, B, n) h_1..h_T
    c: torch.Tensor  # (T, B, n) c_1..c_T
    h0: torch.Tensor  # (B, n)
    c0: torch.Tensor  # (B, n)

    @property
    def gates(self) -> Gates:
        """All steps' gates at once (fields (T, B, n))."""
        return Gates(self.a_i, self.a_f, self.a_g, self.a_o)

    def gates_at(self, steps: slice) -> Gates:
        """The gates of the given steps (fields (T', B, n))."""
        return Gates(self.a_i[steps], self.a_f[steps], self.a_g[steps], self.a_o[steps])

    @property
    def c_prev(self) -> torch.Tensor:
        """c_0..c_{T-1}, (T, B, n)."""
        return torch.cat([self.c0.unsqueeze(0), self.c[:-1]])

    @property
    def h_prev(self) -> torch.Tensor:
        """h_0..h_{T-1}, (T, B, n)."""
        return torch.cat([self.h0.unsqueeze(0), self.h[:-1]])


@dataclass(frozen=True)
class CellStateFactors:
    """The one-step factors of the note's product, J_t = D_t + E_t, t = 1..T."""

    f: torch.Tensor  # (T, B, n) forget gates: D_t = diag(f_t)
    E: torch.Tensor  # (T, B, n, n) indirect terms K_t M_{t-1}; E_1 = 0 (h_0 held fixed)
    J: torch.Tensor  # (T, B, n, n) D_t + E_t

    @property
    def D(self) -> torch.Tensor:
        return torch.diag_embed(self.f)


def _prepare(params: LSTMParams, xs, h0, c0, dtype):
    if not isinstance(params, LSTMParams):
        raise TypeError(f"params must be an LSTMParams, got {type(params).__name__}")
    if not isinstance(xs, torch.Tensor) or xs.dim() != 3:
        raise ValueError(f"xs must be a tensor of shape (T, B, m), got "
                         f"{tuple(xs.shape) if isinstance(xs, torch.Tensor) else type(xs).__name__}")
    if xs.shape[0] < 1:
        raise ValueError("xs must hold at least one step (T >= 1)")
    if dtype is not None:
        params = params.to(dtype=dtype)
        xs, h0, c0 = (t.to(dtype) if isinstance(t, torch.Tensor) else t for t in (xs, h0, c0))
    check_step_inputs(params, xs[0], h0, c0)  # shapes, dtypes, finiteness of h0, c0, params
    if xs.dtype != params.weight_hh.dtype:
        raise TypeError(f"xs has dtype {xs.dtype} but the parameters have {params.weight_hh.dtype}")
    if not torch.isfinite(xs).all():
        raise ValueError("xs contains NaN or inf")
    return params, xs, h0, c0


def unroll(params: LSTMParams, xs: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, *,
           dtype: torch.dtype | None = torch.float64) -> Unrolled:
    """Run the standard LSTM of CLAIMS.md over xs (T, B, m) from (h0, c0) and keep every step.

    The equations are those of `reference.lstm_step.lstm_step`; the input half of the
    pre-activations is one GEMM for all steps, so values agree with a loop of lstm_step up
    to the rounding of a different summation order, not bit for bit.
    """
    return _unroll(*_prepare(params, xs, h0, c0, dtype))


def _unroll(params: LSTMParams, xs, h0, c0) -> Unrolled:
    T, B, m = xs.shape
    n = params.hidden_size
    # The input half of every step's pre-activations at once; step t adds W_hh h_{t-1} in place.
    A = (xs.reshape(T * B, m) @ params.weight_ih.T + params.bias_ih + params.bias_hh).reshape(T, B, 4 * n)
    S, H, C = torch.empty_like(A), xs.new_empty(T, B, n), xs.new_empty(T, B, n)
    G, tanh_C = torch.empty_like(H), torch.empty_like(C)
    # Per-step views made once (unbind), and every result written into its slot (out=): the
    # loop is T x 7 small kernels, and at n = 64 their dispatch, not arithmetic, is the cost.
    a_t, s_t, g_t, h_t, c_t, tc_t = (X.unbind(0) for X in (A, S, G, H, C, tanh_C))
    a_g_t = A[..., 2 * n:3 * n].unbind(0)
    i_t, f_t, o_t = (S[..., k * n:(k + 1) * n].unbind(0) for k in (0, 1, 3))
    w_hh_t = params.weight_hh.T
    h, c = h0, c0
    for t in range(T):
        a_t[t].addmm_(h, w_hh_t)  # a_t = W_ih x_t + b + W_hh h_{t-1}
        torch.sigmoid(a_t[t], out=s_t[t])  # i, f, o (the g slot is computed and unused)
        torch.tanh(a_g_t[t], out=g_t[t])
        c = torch.mul(f_t[t], c, out=c_t[t]).addcmul_(i_t[t], g_t[t])  # c_t = f ⊙ c_{t-1} + i ⊙ g
        h = torch.mul(o_t[t], torch.tanh(c, out=tc_t[t]), out=h_t[t])  # h_t = o ⊙ tanh(c_t)
    a_i, a_f, a_g, a_o = A.chunk(4, dim=2)
    return Unrolled(a_i, a_f, a_g, a_o, H, C, h0, c0)


def _write_indirect_terms(out: torch.Tensor, params: LSTMParams, run: Unrolled, steps: slice) -> torch.Tensor:
    """E_t = K_t M_{t-1} for t in `steps` (0-based; steps.start >= 1), written into out (T', B, n, n).

    K_t from cell_state_jacobians.gate_path, built in place; M_{t-1} = diag(o_{t-1} ⊙
    tanh'(c_{t-1})) scales K_t's columns.
    """
    prev = slice(steps.start - 1, steps.stop - 1)
    gate_path(params, run.gates_at(steps), run.c[prev], out=out)
    return out.mul_((torch.sigmoid(run.a_o[prev]) * dtanh(run.c[prev])).unsqueeze(-2))


def _gate_path_all(params: LSTMParams, run: Unrolled, steps: slice) -> torch.Tensor:
    """K_t = ∂c_t/∂h_{t-1} for the given steps, via cell_state_jacobians.gate_path."""
    K, _ = gate_path(params, run.gates_at(steps), run.c_prev[steps])
    return K


def _factors(params: LSTMParams, run: Unrolled) -> CellStateFactors:
    T, B, n = run.c.shape
    f = torch.sigmoid(run.a_f)
    E = run.c.new_empty(T, B, n, n)
    E[0] = 0  # h_0 is held fixed: no indirect path at t = 1
    if T > 1:
        _write_indirect_terms(E[1:], params, run, slice(1, T))
    J = E.clone()
    J.diagonal(dim1=-2, dim2=-1).add_(f)  # J_t = D_t + E_t
    return CellStateFactors(f=f, E=E, J=J)


def cell_state_factors(params: LSTMParams, xs: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, *,
                       dtype: torch.dtype | None = torch.float64) -> CellStateFactors:
    """The note's one-step factors J_t = D_t + K_t M_{t-1} (L2, L7), t = 1..T.

    h_0 is held fixed, so J_1 = D_1 = diag(f_1); for t >= 2, K_t is L2's ∂c_t/∂h_{t-1}
    (reference.cell_state_jacobians.gate_path) and M_{t-1} = diag(o_{t-1} ⊙ tanh'(c_{t-1})).
    `ordered_product(result.J)` is the note's ∂c_T/∂c_0, which is the true one only when
    W_ho = 0 (L6; see `full_state_jacobian`).
    """
    params, xs, h0, c0 = _prepare(params, xs, h0, c0, dtype)
    return _factors(params, _unroll(params, xs, h0, c0))


def cell_state_product(params: LSTMParams, xs: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, *,
                       dtype: torch.dtype | None = torch.float64, chunk: int = 32) -> torch.Tensor:
    """The note's ∂c_T/∂c_0 = J_T ⋯ J_1 (B, n, n), without keeping all T factors.

    The same product as `ordered_product(cell_state_factors(...).J)`, rounded in a different
    order: the factors are built `chunk` steps at a time into one reused buffer, each chunk
    is multiplied out by `ordered_product_tree` (batched matmuls), and the chunk products
    are chained in time order. Memory is O(chunk n^2) instead of O(T n^2), which at T = 100,
    n = 64 also keeps the working set in cache. J_1 = diag(f_1) (h_0 fixed) is applied as a
    column scaling. The true total derivative only when W_ho = 0 (L6; `full_state_jacobian`).
    """
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive int, got {chunk!r}")
    params, xs, h0, c0 = _prepare(params, xs, h0, c0, dtype)
    run = _unroll(params, xs, h0, c0)
    T, B, n = run.c.shape
    f = torch.sigmoid(run.a_f)
    P = torch.diag_embed(f[0])  # J_1
    buffer = run.c.new_empty(min(chunk, T - 1), B, n, n) if T > 1 else None
    for start in range(1, T, chunk):
        stop = min(T, start + chunk)
        J = _write_indirect_terms(buffer[:stop - start], params, run, slice(start, stop))
        J.diagonal(dim1=-2, dim2=-1).add_(f[start:stop])  # J_t = D_t + E_t
        Q = ordered_product_tree(J)
        P = Q * f[0].unsqueeze(-2) if start == 1 else Q @ P
    return P


def state_transition_jacobians(params: LSTMParams, xs: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, *,
                               dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
    """S_t = ∂(h_t, c_t)/∂(h_{t-1}, c_{t-1}) of the full LSTM, (T, B, 2n, 2n), blocks [[hh, hc], [ch, cc]].

    Includes o_t's dependence on h_{t-1} through W_ho, which the note's product leaves out.
    """
    params, xs, h0, c0 = _prepare(params, xs, h0, c0, dtype)
    run = _unroll(params, xs, h0, c0)
    T, B, n = run.c.shape
    f, o = torch.sigmoid(run.a_f), torch.sigmoid(run.a_o)
    tanh_c = torch.tanh(run.c)
    out_gain = o * (1 - tanh_c * tanh_c)  # o_t ⊙ tanh'(c_t) = ∂h_t/∂c_t
    K = _gate_path_all(params, run, slice(0, T))  # K_1..K_T, (T, B, n, n)
    w_ho = params.hh_block("o")
    S = run.c.new_empty(T, B, 2 * n, 2 * n)
    S[..., :n, :n] = (tanh_c * dsigmoid(run.a_o)).unsqueeze(-1) * w_ho + out_gain.unsqueeze(-1) * K
    S[..., :n, n:] = torch.diag_embed(out_gain * f)
    S[..., n:, :n] = K
    S[..., n:, n:] = torch.diag_embed(f)
    return S


def ordered_product_chain(J: torch.Tensor) -> torch.Tensor:
    """J_T ⋯ J_1 of J (T, ..., n, n), left to right in time: P <- J_t P, T - 1 batched matmuls in sequence."""
    _check_factors(J)
    P = J[0]
    for t in range(1, J.shape[0]):
        P = J[t] @ P
    return P


def ordered_product_tree(J: torch.Tensor) -> torch.Tensor:
    """J_T ⋯ J_1 by pairwise products in log2(T) rounds of one batched matmul each.

    Round k multiplies neighbours (J_{2j+1} J_{2j}); an odd last factor waits for the next
    round. Same product as the chain (matrix multiplication is associative), rounded in a
    different order.
    """
    _check_factors(J)
    while J.shape[0] > 1:
        even = J.shape[0] - J.shape[0] % 2
        paired = J[1:even:2] @ J[0:even:2]
        J = torch.cat([paired, J[even:]]) if even < J.shape[0] else paired
    return J[0]


def ordered_product(J: torch.Tensor, *, method: str = "tree") -> torch.Tensor:
    """J_T ⋯ J_1 (time-ordered, latest factor on the left); method 'tree' (log depth) or 'chain'."""
    if method == "tree":
        return ordered_product_tree(J)
    if method == "chain":
        return ordered_product_chain(J)
    raise ValueError(f"method must be 'tree' or 'chain', got {method!r}")


def _check_factors(J) -> None:
    if not isinstance(J, torch.Tensor) or J.dim() < 3 or J.shape[-1] != J.shape[-2] or J.shape[0] < 1:
        raise ValueError("J must be a tensor of shape (T, ..., n, n) with T >= 1, got "
                         f"{tuple(J.shape) if isinstance(J, torch.Tensor) else type(J).__name__}")


def full_state_jacobian(params: LSTMParams, xs: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, *,
                        dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
    """The true total derivative dc_T/dc_0 of the unrolled LSTM, h_0 and inputs fixed, (B, n, n).

    The c_0-columns, c_T-rows block of S_T ⋯ S_1 (`state_transition_jacobians`). Equal to the
    note's product of `cell_state_factors` exactly when W_ho = 0 (L6).
    """
    S = state_transition_jacobians(params, xs, h0, c0, dtype=dtype)
    n = S.shape[-1] // 2
    cols = S[0][..., :, n:]  # ∂(h_1, c_1)/∂c_0: h_0 is fixed, so its columns are never needed
    if S.shape[0] > 1:
        cols = ordered_product_tree(S[1:]) @ cols
    return cols[..., n:, :]


def log_forget_products(a_f: torch.Tensor | None = None, *, f: torch.Tensor | None = None, dim: int = 0,
                        dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
    """log Π_t f_{t,k} per coordinate (L8), summed in log space over `dim` (time).

    Pass the pre-activations a_f (preferred): the log is Σ_t logsigmoid(a^f_t), accurate for
    any a^f (σ(a) rounds to 1 for a > ~37 in float64, yet log σ(a) ≈ -e^{-a} is kept), and
    for spans of 10^5 steps and more where Π f itself underflows. Or pass the gate values
    f = σ(a^f) (keyword): Σ_t log f_t, where f_t = 0 gives -inf, the honest log of 0.

    Returns the log. Its exp may underflow to 0 (e.g. σ(1)^T for T >= ~1800 in float64):
    that 0 is the honest floating-point value of the product, not an error; compare logs.
    """
    if (a_f is None) == (f is None):
        raise ValueError("pass exactly one of a_f (pre-activations, positional) or f= (gate values)")
    x = a_f if a_f is not None else f
    name = "a_f" if a_f is not None else "f"
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got "
                         f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}")
    if dtype is not None:
        x = x.to(dtype)
    if a_f is not None:
        if not torch.isfinite(x).all():
            raise ValueError("a_f contains NaN or inf")
        return F.logsigmoid(x).sum(dim=dim)
    if torch.isnan(x).any() or (x < 0).any() or (x > 1).any():
        raise ValueError("f must lie in [0, 1] (gate values), and contain no NaN")
    return torch.log(x).sum(dim=dim)
