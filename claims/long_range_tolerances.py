"""Tolerances of the long-range claims (L6-L9, G1-G4, V1-V3, R1-R2), derived, never tuned.

Built on claims/tolerances.py (unit roundoff u, γ_k, the smallest subnormal η, and the
one-step LSTM bounds forward_error / vjp_error / vjp_tolerance), with the same method:
worst-case rounding bounds in the style of Higham, *Accuracy and Stability of Numerical
Algorithms* (ch. 3), evaluated on magnitudes, for inputs exactly representable in the
dtype. What is new here is how one-step errors *accumulate* along a chain:

- a backward pass through T steps: if step t maps cotangents by the exact linear map S_tᵀ
  and the computed step adds a local error e_t, then the computed and exact cotangents
  differ by d_{t-1} with
      |d_{t-1}| <= |S_t|ᵀ |d_t| + |e_t|,
  and |e_t| is the one-step VJP bound evaluated at |v_t| + |d_t| >= |computed v_t| (every
  one-step bound is monotone in |v|). The recursion is run on the trajectory the code
  under test computed, so no forward drift enters: each step is exact-input. It is
  evaluated in three variants, which bound different quantities:
  * `lstm_backward_bound` (L6, L9): the rows of dc_T/dc_0 only (an exact seed e_k on c_T
    and nothing added to it, h_0 and the inputs fixed), carried through |S_t| itself: these
    claims form the 2n x 2n state Jacobians along the trajectory anyway, and |S_t|ᵀ d is
    the tightest propagation the recursion allows;
  * `unrolled_vjp_bound` (G1-G4): cotangents injected at any steps, and the gradients with
    respect to every x_t and the four parameters too, which S_t (state to state) does not
    map. It carries the error through reference.unrolled_backward.step_vjp_magnitudes, the
    step's backward with every factor in absolute value: an upper bound on |J_t|ᵀ d for all
    of the step's outputs, equal to |S_t|ᵀ d on the c part and larger on the h part (|Σ| <=
    Σ|.|), so it cannot replace the first variant without loosening L6's and L9's bounds,
    nor the first replace it. It also adds what only injection and parameter gradients
    incur: the rounding of adding an injected cotangent to the arriving one, and autograd's
    sum of T per-step parameter gradients;
  * `rnn_backward_bound` (V1, V2): the same recursion for the vanilla RNN's step.
- a product of T matrices computed in floating point (`product_bound`): Higham's Lemma 3.7,
  |fl(A_T ⋯ A_1) - A_T ⋯ A_1| <= γ_{(T-1)n} |A_T| ⋯ |A_1| (any order, any blocking);
- a spectral norm by SVD (`svd_bound`): backward stable, |σ̂ - σ| <= 4 n u ||A|| (LAPACK's
  bidiagonalisation constant, as in claims/l3_direct_term.py).

|S_t| is evaluated in float64 from the computed trajectory; it differs from the exact |S_t|
by O(u) relatively, which changes the bound by O(u) times an error that is itself O(u):
second order, and dropped like every second-order term of Higham's first-order bounds.
"""
from __future__ import annotations

import torch

from lstm_claims.claims.tolerances import ACTIVATION_ULPS, gamma, smallest_subnormal, unit_roundoff, vjp_error, vjp_tolerance
from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.reference.unrolled_backward import LSTMSequence, UnrolledGrads, backward_steps, step_vjp_magnitudes

U64 = 2.0 ** -53


# --- generic -----------------------------------------------------------------------------

def product_bound(abs_product: torch.Tensor, steps: int, n: int, dtype=torch.float64) -> torch.Tensor:
    """Elementwise bound on |fl(A_T ⋯ A_1) - A_T ⋯ A_1| given |A_T| ⋯ |A_1| (Higham Lemma 3.7)."""
    return gamma(max(steps - 1, 0) * n, dtype) * abs_product + max(steps - 1, 0) * n * smallest_subnormal(dtype)


def svd_bound(norm, n: int, dtype=torch.float64):
    """Bound on |computed ||A||_2 - ||A||_2| for an n x n matrix (backward-stable SVD, constant 4n)."""
    return 4 * n * unit_roundoff(dtype) * norm


def frobenius(A: torch.Tensor) -> torch.Tensor:
    """||A||_F per matrix: a bound on ||A||_2, used to turn elementwise bounds into norm bounds."""
    return torch.linalg.matrix_norm(A, ord="fro")


# --- LSTM: backward through T steps (L6, L9 through |S_t|; G1-G4 through the step magnitudes) --

def lstm_backward_bound(params: LSTMParams, inp, S: torch.Tensor, v_h: torch.Tensor, v_c: torch.Tensor,
                        dtype) -> torch.Tensor:
    """Bound on |cell's rows of dc_T/dc_0 - reference rows|, (R, n), along the cell's trajectory.

    inp: reference.long_range.StepInputs of the trajectory; S: its state Jacobians (T, R, 2n, 2n);
    v_h, v_c: the reference backward's cotangents (T + 1, R, n). Each step's local error is
    claims.tolerances.vjp_tolerance (the cell's VJP bound in `dtype` plus the float64
    reference's), so the bound covers both the cell's rounding and the reference's. The
    recursion of `unrolled_vjp_bound`, carried through |S_t| (module docstring: why both).
    """
    T, R, n = inp.c_prev.shape
    err_h = torch.zeros(R, n, dtype=torch.float64)
    err_c = torch.zeros(R, n, dtype=torch.float64)
    absS = S.abs()
    for t in range(T - 1, -1, -1):
        tol = vjp_tolerance(params, inp.x[t], inp.h_prev[t], inp.c_prev[t], v_h[t + 1].abs() + err_h,
                            v_c[t + 1].abs() + err_c, dtype)
        prop = torch.cat([err_h, err_c], dim=1).unsqueeze(1) @ absS[t]  # |S_t|ᵀ |d_t| as a row vector
        err_h = prop[:, 0, :n] + tol["h"]
        err_c = prop[:, 0, n:] + tol["c"]
    return err_c


def unrolled_vjp_bound(seq: LSTMSequence, hs, cs, inject: dict, dtype) -> tuple[UnrolledGrads, UnrolledGrads]:
    """(the closed-form gradients along the trajectory hs, cs; the allowed |cell - closed form|), float64.

    The closed form is reference.unrolled_backward.unrolled_vjp (the same chain, `backward_steps`,
    summed in the same order); the allowed difference is carried backwards step by step:

        e_{t-1} = vjp_tolerance(step t, |v_t| + e_t)  +  |J_t|ᵀ e_t

    — the rounding of step t's VJP (the cell's and the float64 reference's, claims/tolerances.py,
    monotone in the cotangent's magnitude, so evaluating it at |v_t| + e_t covers the cotangent
    the cell actually has), plus the error already in the cotangent carried through the step
    (|J_t|ᵀ e_t <= step_vjp_magnitudes: see the module docstring for why not |S_t|ᵀ e_t here).
    Gradients with respect to x_t and the parameters pick up the same two terms at their step;
    the parameter gradients are then summed over T steps by autograd in the cell's dtype (any
    order), which adds γ_T of the sum of the magnitudes, and by the reference in float64. A
    cotangent injected at a step where one also arrives from later steps is added once more:
    u |v| + η.
    """
    T = max(inject)
    p = seq.params
    u, eta = unit_roundoff(dtype), smallest_subnormal(dtype)
    zeros = torch.zeros_like(seq.h0)
    e_h, e_c = zeros, zeros
    ref_x, allowed_x = torch.zeros_like(seq.xs[:T]), torch.zeros_like(seq.xs[:T])
    ref_p = {name: torch.zeros_like(t) for name, t in p.as_dict().items()}
    allowed_p = {name: torch.zeros_like(t) for name, t in p.as_dict().items()}
    magnitude_p = {name: torch.zeros_like(t) for name, t in p.as_dict().items()}
    for step in backward_steps(seq, hs, cs, inject):
        v_h, v_c, r = step.v_h, step.v_c, step.vjp
        if step.injected:
            # autograd adds the injected cotangent to the one arriving from step t+1: one rounding
            e_h, e_c = e_h + u * (v_h.abs() + e_h) + eta, e_c + u * (v_c.abs() + e_c) + eta
        tol = vjp_tolerance(p, step.x, step.h, step.c, v_h.abs() + e_h, v_c.abs() + e_c, dtype)
        carried = step_vjp_magnitudes(p, step.x, step.h, step.c, e_h, e_c)
        ref_x[step.t - 1], allowed_x[step.t - 1] = r.x, tol["x"] + carried["x"]
        for name in allowed_p:
            ref_p[name] += getattr(r, name)
            allowed_p[name] += tol[name] + carried[name]
            magnitude_p[name] += getattr(r, name).abs() + tol[name] + carried[name]
        e_h, e_c = tol["h"] + carried["h"], tol["c"] + carried["c"]
    # Autograd sums the T per-step parameter gradients in the cell's dtype (any order: γ_T),
    # the reference in float64.
    for name in allowed_p:
        allowed_p[name] += (gamma(T, dtype) + gamma(T, torch.float64)) * magnitude_p[name] + T * eta
    ref = UnrolledGrads(h0=r.h, c0=r.c, xs=ref_x, **ref_p)
    return ref, UnrolledGrads(h0=e_h, c0=e_c, xs=allowed_x, **allowed_p)


def _preactivation_magnitude(params: LSTMParams, x, h):
    return x.abs() @ params.weight_ih.abs().T + params.bias_ih.abs() + h.abs() @ params.weight_hh.abs().T \
        + params.bias_hh.abs()


def note_product_bound(params: LSTMParams, inp, S: torch.Tensor, note) -> torch.Tensor:
    """Bound on |float64 rows of the note's product J_T ⋯ J_1 - exact rows|, (R, n).

    The computed step is u' = fl(g.c + M ⊙ g.h) with (g.h, g.c) = lstm_step_vjp(v_h = 0, v_c = u)
    in float64 and M = o_{t-1} ⊙ tanh'(c_{t-1}) computed in float64:
      - propagation: f ⊙ |d| + M ⊙ |K|ᵀ|d| (the exact J_tᵀ on the incoming error);
      - the VJP: vjp_error(float64) for d/dc and d/dh, the latter scaled by M;
      - M: o = σ(a^o) with a^o off by γ_K Σ|terms| (K = m + n + 2), σ' <= 1/4, plus ACTIVATION_ULPS u;
        tanh'(c) = 1 - tanh² off by (2 ACTIVATION_ULPS + 2) u; the product rounds once;
      - the final product and sum round: γ_2 (|g.c| + M |g.h|).
    inp: the trajectory's StepInputs (o_{t-1} was computed from step t-1's inputs, inp.x[t-1], inp.h_prev[t-1]);
    S: its state Jacobians (K_t and f_t are blocks of S_t); note: reference.long_range.note_backward's result.
    """
    T, R, n = inp.c_prev.shape
    u = U64
    K_terms = params.input_size + n + 2
    r = torch.zeros(R, n, dtype=torch.float64)
    absK = S[:, :, n:, :n].abs()  # ∂c_t/∂h_{t-1} = K_t
    f = torch.diagonal(S[:, :, n:, n:], dim1=-2, dim2=-1)
    zeros = torch.zeros(R, n, dtype=torch.float64)
    for t in range(T - 1, -1, -1):
        uu = note.v_c[t + 1].abs() + r
        loc = vjp_error(params, inp.x[t], inp.h_prev[t], inp.c_prev[t], zeros, uu, torch.float64)
        gh = note.v_h[t].abs() + loc["h"]  # |K_tᵀ u| as computed, enlarged by its own error
        prop_c = f[t] * r
        if t == 0:  # J_1 = D_1 (h_0 is held fixed): u_0 = g.c + 0 ⊙ g.h, the addition of 0 is exact
            r = prop_c + loc["c"]
            continue
        dtc = 1 - torch.tanh(inp.c_prev[t]) ** 2
        M = inp.o_prev[t] * dtc
        a_o_mag = _preactivation_magnitude(params, inp.x[t - 1], inp.h_prev[t - 1])[:, 3 * n:]
        err_o = 0.25 * gamma(K_terms, torch.float64) * a_o_mag + ACTIVATION_ULPS * u * inp.o_prev[t]
        err_M = err_o * dtc + inp.o_prev[t] * (2 * ACTIVATION_ULPS + 2) * u + u * M
        prop_h = M * (r.unsqueeze(1) @ absK[t]).squeeze(1)
        r = prop_c + prop_h + loc["c"] + M * loc["h"] + err_M * gh \
            + gamma(2, torch.float64) * (f[t] * uu + M * gh)
    return r


# --- vanilla RNN (V1, V2) -----------------------------------------------------------------

def rnn_step_vjp_error(params, x, h, v_abs, dtype) -> torch.Tensor:
    """Bound on |computed vᵀ ∂h_t/∂h_{t-1} - exact| for one tanh-RNN step in `dtype`, (B, n).

    The backward is (v ⊙ (1 - y²)) W_hh with y = tanh(z) the saved output:
      z = W_ih x + b_ih + W_hh h + b_hh: a sum of K = m + n + 2 products, off by γ_K Σ|terms| + 2Kη;
      y off by |Δz| (tanh is 1-Lipschitz) + ACTIVATION_ULPS u |y|; 1 - y² off by 2|Δy| + |Δy|² + 2u;
      v ⊙ (1 - y²) rounds once; the product with W_hh sums n terms: γ_(n+1) of the magnitudes.
    """
    u, eta = unit_roundoff(dtype), smallest_subnormal(dtype)
    n, m = params.hidden_size, params.input_size
    K = m + n + 2
    Z = x.abs() @ params.weight_ih.abs().T + params.bias_ih.abs() + h.abs() @ params.weight_hh.abs().T \
        + params.bias_hh.abs()
    err_z = gamma(K, dtype) * Z + 2 * K * eta
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


# --- residual blocks (R1, R2) -------------------------------------------------------------

def branch_jacobian_error(p, x, dtype) -> torch.Tensor:
    """Bound on |autograd J_F(x) in `dtype` - exact|, (..., n, n), for F(x) = W2 tanh(W1 x + b1) + b2.

    Row i of the autograd Jacobian is Σ_k W2[i, k] (1 - y_k²) W1[k, :] with y = tanh(W1 x + b1):
    z off by γ_(n+1) (|W1||x| + |b1|) + 2(n+1)η, y and 1 - y² as in rnn_step_vjp_error; the
    products and the sum over the k hidden units: γ_(k+2) of |W2| diag(|d| + Δd) |W1|.
    """
    u, eta = unit_roundoff(dtype), smallest_subnormal(dtype)
    k, n = p.w1.shape
    z = x @ p.w1.T + p.b1
    err_z = gamma(n + 1, dtype) * (x.abs() @ p.w1.abs().T + p.b1.abs()) + 2 * (n + 1) * eta
    y = torch.tanh(z)
    err_y = err_z + ACTIVATION_ULPS * (u * y.abs() + eta)
    d = 1 - y * y
    err_d = 2 * err_y + err_y ** 2 + 2 * u
    W2a, W1a = p.w2.abs(), p.w1.abs()
    return (W2a * err_d.unsqueeze(-2)) @ W1a + gamma(k + 2, dtype) * ((W2a * (d + err_d).unsqueeze(-2)) @ W1a) \
        + (k + 2) * eta


def forget_gate_error(params: LSTMParams, x, h, dtype) -> torch.Tensor:
    """Bound on |f computed in `dtype` - σ(a^f)| for inputs exact in `dtype`, (N, n).

    claims.tolerances.forward_error's derivation restricted to the forget gate: a^f is a sum of
    K = m + n + 2 products, off by γ_K Σ|terms| + 2Kη; σ moves by at most 1/4 of that and rounds
    within ACTIVATION_ULPS u of its value (plus ACTIVATION_ULPS η near underflow).
    """
    u, eta = unit_roundoff(dtype), smallest_subnormal(dtype)
    n = params.hidden_size
    K = params.input_size + n + 2
    a_f_mag = _preactivation_magnitude(params, x, h)[:, n:2 * n]
    a_f = (x @ params.weight_ih.T + params.bias_ih + h @ params.weight_hh.T + params.bias_hh)[:, n:2 * n]
    return 0.25 * (gamma(K, dtype) * a_f_mag + 2 * K * eta) + ACTIVATION_ULPS * (u * torch.sigmoid(a_f) + eta)


def direct_term_error(params: LSTMParams, x, h, dtype) -> torch.Tensor:
    """Bound on |the cell's ∂c_t/∂c_(t-1) (h fixed, = f by L1) - σ(a^f) in float64|: both gates' errors,
    and the backward's product 1 · f (one rounding of a value <= f + error)."""
    e = forget_gate_error(params, x, h, dtype)
    e64 = forget_gate_error(params, x, h, torch.float64)
    f = torch.sigmoid((x @ params.weight_ih.T + params.bias_ih + h @ params.weight_hh.T
                       + params.bias_hh)[:, params.hidden_size:2 * params.hidden_size])
    return e + e64 + unit_roundoff(dtype) * (f + e)


def lstm_gate_magnitudes(params: LSTMParams, x, h):
    """Pre-activation magnitudes Σ|terms| per gate (dict of (B, n)), for bounds on gate errors."""
    n = params.hidden_size
    A = _preactivation_magnitude(params, x, h)
    return {g: A[:, k * n:(k + 1) * n] for k, g in enumerate("ifgo")}


__all__ = ["product_bound", "svd_bound", "frobenius", "lstm_backward_bound", "unrolled_vjp_bound",
           "note_product_bound", "rnn_step_vjp_error", "rnn_backward_bound", "branch_jacobian_error", "lstm_gate_magnitudes",
           "forget_gate_error", "direct_term_error"]
