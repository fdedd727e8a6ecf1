"""Tolerances of the long-range LSTM claims (L6-L9, G1-G4): how rounding accumulates along a sequence.

Its one job: errors carried through T steps or T factors, derived, never tuned. The
one-step bounds it carries (forward_error, vjp_error, vjp_tolerance, forget_gate_error)
and the shared derivations (u, γ_k, η, sum_error, svd_bound, frobenius) are
claims/tolerances.py; the vanilla RNN's recursion is claims/rnn_tolerances.py, the residual
branch's bound claims/residual_tolerances.py. Built with the same method:
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
  (claims/rnn_tolerances.py's `rnn_backward_bound` runs the same recursion for the vanilla
  RNN's step.)
- a product of T matrices computed in floating point (`product_bound`): Higham's Lemma 3.7,
  |fl(A_T ⋯ A_1) - A_T ⋯ A_1| <= γ_{(T-1)n} |A_T| ⋯ |A_1| (any order, any blocking; also
  used by V2's and R2's products);
- the forward drift of a float64 unroll and the forget gates along it (`drift_bound`,
  `gate_error_along`, L9): one-step forward errors carried through |S_t|.

Low precision (bfloat16, float16): the one-step bounds carried here (vjp_tolerance,
forward_error, sum_error) are the dtype's, with the accumulation assumption of
claims/tolerances.py (float32 accumulation, one rounding to the dtype). What is new over T
steps is a *sequence of elementwise roundings*, not one accumulation: autograd adds the T
per-step gradients of a parameter one at a time, each addition computed in float32 and
rounded to the dtype. That is T - 1 roundings to the dtype, whose worst case is
(1 + u)^(T-1) - 1 (`compounded`), valid for every T: γ_T = T u / (1 - T u) is its
simplification for T u < 1 and undefined in bfloat16 from T = 256 (and 1.05, a 105%
allowance, at T = 131). The worst case is real: a bfloat16 sum that stagnates (256 + 1 = 256)
loses every later term.

|S_t| is evaluated in float64 from the computed trajectory; it differs from the exact |S_t|
by O(u) relatively, which changes the bound by O(u) times an error that is itself O(u):
second order, and dropped like every second-order term of Higham's first-order bounds.
"""
from __future__ import annotations

import math

import torch

from lstm_claims.claims.tolerances import (
    ACTIVATION_ULPS, U64, forward_error, gamma, preactivation_error, preactivation_magnitude, smallest_subnormal,
    sum_error, unit_roundoff, vjp_error, vjp_tolerance, vjp_tolerance_factors,
)
from lstm_claims.reference.jacobian_chain import state_transition_jacobians
from lstm_claims.reference.lstm_step import LSTMParams, dsigmoid, dtanh, preactivations
from lstm_claims.reference.unrolled_backward import LSTMSequence, UnrolledGrads, backward_steps, step_vjp_magnitudes



# --- generic -----------------------------------------------------------------------------

def compounded(k: int, dtype) -> float:
    """(1 + u)^k - 1: the worst relative error of k successive roundings to `dtype` (a sum of k + 1 terms added
    one at a time, each addition rounded once), valid for every k; <= γ_k where γ_k is defined (k u < 1).

    Higham's Lemma 3.1 bounds |Π(1 + δ_i) - 1| for |δ_i| <= u by γ_k; with factors (1 + δ_i) only (no
    inverses) the exact worst case is (1 + u)^k - 1, which needs no k u < 1.
    """
    return math.expm1(k * math.log1p(unit_roundoff(dtype)))


def product_bound(abs_product: torch.Tensor, steps: int, n: int, dtype=torch.float64) -> torch.Tensor:
    """Elementwise bound on |fl(A_T ⋯ A_1) - A_T ⋯ A_1| given |A_T| ⋯ |A_1| (Higham Lemma 3.7)."""
    return gamma(max(steps - 1, 0) * n, dtype) * abs_product + max(steps - 1, 0) * n * smallest_subnormal(dtype)


# --- LSTM: backward through T steps (L6, L9 through |S_t|; G1-G4 through the step magnitudes) --

def lstm_backward_bound(params: LSTMParams, inp, S: torch.Tensor, v_h: torch.Tensor, v_c: torch.Tensor,
                        dtype, *, c_error=None) -> torch.Tensor:
    """Bound on |cell's rows of dc_T/dc_0 - reference rows|, (R, n), along the cell's trajectory.

    inp: reference.long_range.StepInputs of the trajectory; S: its state Jacobians (T, R, 2n, 2n);
    v_h, v_c: the reference backward's cotangents (T + 1, R, n). Each step's local error is
    claims.tolerances.vjp_tolerance (the cell's VJP bound in `dtype` plus the float64
    reference's), so the bound covers both the cell's rounding and the reference's. The
    recursion of `unrolled_vjp_bound`, carried through |S_t| (module docstring: why both).

    c_error (T, R, n): for a sequence module whose states between the ends are reconstructed, the bound E_t
    on |module's c_t - inp's c_t| (claims/sequence_tolerances.py); each step then adds `trajectory_mismatch`
    at |v| + err, as in unrolled_vjp_bound (the exact VJP at the module's states minus at the reconstructed
    ones; |S_t|ᵀ err carries the rest).
    """
    T, R, n = inp.c_prev.shape
    err_h = torch.zeros(R, n, dtype=torch.float64)
    err_c = torch.zeros(R, n, dtype=torch.float64)
    absS = S.abs()
    factors = vjp_tolerance_factors(params, inp.x, inp.h_prev, inp.c_prev, dtype)  # every step's, at once
    for t in range(T - 1, -1, -1):
        tol = vjp_tolerance(params, inp.x[t], inp.h_prev[t], inp.c_prev[t], v_h[t + 1].abs() + err_h,
                            v_c[t + 1].abs() + err_c, dtype, factors=factors[t])
        prop = torch.cat([err_h, err_c], dim=1).unsqueeze(1) @ absS[t]  # |S_t|ᵀ |d_t| as a row vector
        moved_h = moved_c = 0
        if c_error is not None:
            E_prev = c_error[t - 1] if t >= 1 else torch.zeros_like(err_c)
            moved = trajectory_mismatch(params, inp.x[t], inp.h_prev[t], inp.c_prev[t], v_h[t + 1].abs() + err_h,
                                        v_c[t + 1].abs() + err_c, E_prev, c_error[t])
            moved_h, moved_c = moved["h"], moved["c"]
        err_h = prop[:, 0, :n] + tol["h"] + moved_h
        err_c = prop[:, 0, n:] + tol["c"] + moved_c
    return err_c


def _step_magnitudes(params: LSTMParams, x, h, c_abs, tanh_c, dtanh_c, e_h, e_c) -> dict:
    """reference.unrolled_backward.step_vjp_magnitudes with |c_(t-1)|, |tanh c_t| and tanh'(c_t) given (each
    possibly enlarged): the step's backward on absolute values, a polynomial with non-negative coefficients in
    them (the gates depend on x_t and h_(t-1) only)."""
    gt = preactivations(params, x, h)
    dc = e_c + e_h * gt.o * dtanh_c
    do = e_h * tanh_c
    da = torch.cat([dc * gt.g.abs() * dsigmoid(gt.a_i), dc * c_abs * dsigmoid(gt.a_f),
                    dc * gt.i * dtanh(gt.a_g), do * dsigmoid(gt.a_o)], dim=1)
    db = da.sum(0)
    return {"x": da @ params.weight_ih.abs(), "h": da @ params.weight_hh.abs(), "c": dc * gt.f,
            "weight_ih": da.T @ x.abs(), "weight_hh": da.T @ h.abs(), "bias_ih": db, "bias_hh": db.clone()}


def trajectory_mismatch(params: LSTMParams, x, h, c, v_h, v_c, E_prev, E_next) -> dict:
    """Bound on |J(module's states)ᵀ v - J(reconstructed states)ᵀ v| for one step, |v| <= (v_h, v_c) (>= 0).

    A sequence module's cell states between the ends are reconstructed in float64
    (claims/unrolled_sequence.py); its own c_(t-1) and c_t are within E_prev and E_next of the
    reconstruction (claims/sequence_tolerances.py). The step's VJP is a polynomial in |c_(t-1)|,
    tanh c_t and tanh'(c_t) (the gates read x_t and h_(t-1) only, the module's own), so it moves by at
    most its absolute-value form at the factors enlarged by how far each may move minus at the exact ones
    (|Π F'_i - Π F_i| <= Π(|F_i| + Δ_i) - Π|F_i| for |F'_i - F_i| <= Δ_i): |c_(t-1)| + E_prev, |tanh c_t| +
    min(E_next, 2) (tanh is 1-Lipschitz, within [-1, 1]), tanh'(c_t) + min(2 E_next + E_next^2, 1)
    (|t̂² - t²| = |t̂ - t||t̂ + t|; both within [0, 1]).
    """
    gt = preactivations(params, x, h)
    c_next = gt.f * c + gt.i * gt.g
    tc, dtc = torch.tanh(c_next).abs(), dtanh(c_next)
    exact = _step_magnitudes(params, x, h, c.abs(), tc, dtc, v_h, v_c)
    enlarged = _step_magnitudes(params, x, h, c.abs() + E_prev, tc + E_next.clamp(max=2),
                                dtc + (2 * E_next + E_next ** 2).clamp(max=1), v_h, v_c)
    return {k: enlarged[k] - exact[k] for k in exact}


def unrolled_vjp_bound(seq: LSTMSequence, hs, cs, inject: dict, dtype, *,
                       c_error=None) -> tuple[UnrolledGrads, UnrolledGrads]:
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
    order, one rounding per addition: `compounded(T)`, γ_T where T u < 1), and by the reference
    in float64. A cotangent injected at a step where one also arrives from later steps is added
    once more: u |v| + η.

    c_error (T, B, n), for a sequence module whose cs[:-1] are reconstructed (claims/unrolled_sequence.py):
    the bound E_t on |module's c_t - cs[t - 1]| (claims/sequence_tolerances.py; E_T may be 0, c_T being the
    module's own, but the reference recomputes c_T from c_(T-1)). Each step then also adds
    `trajectory_mismatch` at |v_t| + e_t: the module differentiates along its own states. (The rounding
    bound vjp_tolerance is evaluated at the reconstructed states: moving them by E changes it by its
    relative size, a few u, times the mismatch term, a second-order term dropped as in the module docstring.)
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
    steps = list(backward_steps(seq, hs, cs, inject))
    # Every step's cotangent-free factors of vjp_tolerance at once (steps come last to first).
    factors = vjp_tolerance_factors(p, *(torch.stack([getattr(s, k) for s in steps]) for k in ("x", "h", "c")), dtype)
    for step, step_factors in zip(steps, factors):
        v_h, v_c, r = step.v_h, step.v_c, step.vjp
        if step.injected:
            # autograd adds the injected cotangent to the one arriving from step t+1: one rounding
            e_h, e_c = e_h + u * (v_h.abs() + e_h) + eta, e_c + u * (v_c.abs() + e_c) + eta
        tol = vjp_tolerance(p, step.x, step.h, step.c, v_h.abs() + e_h, v_c.abs() + e_c, dtype, factors=step_factors)
        carried = step_vjp_magnitudes(p, step.x, step.h, step.c, e_h, e_c)
        if c_error is not None:
            E_prev = c_error[step.t - 2] if step.t >= 2 else zeros
            moved = trajectory_mismatch(p, step.x, step.h, step.c, v_h.abs() + e_h, v_c.abs() + e_c, E_prev,
                                        c_error[step.t - 1])
            carried = {k: carried[k] + moved[k] for k in carried}
        ref_x[step.t - 1], allowed_x[step.t - 1] = r.x, tol["x"] + carried["x"]
        for name in allowed_p:
            ref_p[name] += getattr(r, name)
            allowed_p[name] += tol[name] + carried[name]
            magnitude_p[name] += getattr(r, name).abs() + tol[name] + carried[name]
        e_h, e_c = tol["h"] + carried["h"], tol["c"] + carried["c"]
    # Autograd sums the T per-step parameter gradients in the cell's dtype (any order, each addition
    # rounded once: compounded, see the module docstring), the reference in float64.
    for name in allowed_p:
        allowed_p[name] += (compounded(T, dtype) + gamma(T, torch.float64)) * magnitude_p[name] + T * eta
    ref = UnrolledGrads(h0=r.h, c0=r.c, xs=ref_x, **ref_p)
    return ref, UnrolledGrads(h0=e_h, c0=e_c, xs=allowed_x, **allowed_p)


def note_product_bound(params: LSTMParams, inp, S: torch.Tensor, note) -> torch.Tensor:
    """Bound on |float64 rows of the note's product J_T ⋯ J_1 - exact rows|, (R, n).

    The computed step is u' = fl(g.c + M ⊙ g.h) with (g.h, g.c) = lstm_step_vjp(v_h = 0, v_c = u)
    in float64 and M = o_{t-1} ⊙ tanh'(c_{t-1}) computed in float64:
      - propagation: f ⊙ |d| + M ⊙ |K|ᵀ|d| (the exact J_tᵀ on the incoming error);
      - the VJP: vjp_error(float64) for d/dc and d/dh, the latter scaled by M;
      - M: o = σ(a^o) with a^o off by preactivation_error (γ_K Σ|terms| + 2Kη, K = m + n + 2), σ' <= 1/4,
        plus ACTIVATION_ULPS u;
        tanh'(c) = 1 - tanh² off by (2 ACTIVATION_ULPS + 2) u; the product rounds once;
      - the final product and sum round: γ_2 (|g.c| + M |g.h|).
    inp: the trajectory's StepInputs (o_{t-1} was computed from step t-1's inputs, inp.x[t-1], inp.h_prev[t-1]);
    S: its state Jacobians (K_t and f_t are blocks of S_t); note: reference.long_range.note_backward's result.
    """
    T, R, n = inp.c_prev.shape
    u = U64
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
        err_a_o = preactivation_error(params, inp.x[t - 1], inp.h_prev[t - 1], torch.float64)[:, 3 * n:]
        err_o = 0.25 * err_a_o + ACTIVATION_ULPS * u * inp.o_prev[t]
        err_M = err_o * dtc + inp.o_prev[t] * (2 * ACTIVATION_ULPS + 2) * u + u * M
        prop_h = M * (r.unsqueeze(1) @ absK[t]).squeeze(1)
        r = prop_c + prop_h + loc["c"] + M * loc["h"] + err_M * gh \
            + gamma(2, torch.float64) * (f[t] * uu + M * gh)
    return r


# --- forward drift along a float64 unroll (L9) -------------------------------------------

def drift_bound(params: LSTMParams, xs, run, dtype=torch.float64):
    """Bound on |computed (h_t, c_t) - exact| along a float64 unroll, t = 0..T-1 (first order).

    (Δh_t, Δc_t) <= |S_t| (Δh_(t-1), Δc_(t-1)) + the one-step forward error at the computed
    state (claims.tolerances.forward_error), starting from exact h_0, c_0.
    """
    T, B, n = run.c.shape
    S = state_transition_jacobians(params, xs, run.h0, run.c0, dtype=dtype).abs()
    dh, dc = torch.zeros(B, n, dtype=torch.float64), torch.zeros(B, n, dtype=torch.float64)
    out_h = [dh]
    h_prev, c_prev = run.h_prev, run.c_prev
    for t in range(T - 1):
        fe = forward_error(params, xs[t], h_prev[t], c_prev[t], torch.float64)
        prop = (S[t] @ torch.cat([dh, dc], 1).unsqueeze(2)).squeeze(2)
        dh, dc = prop[:, :n] + fe.h_next, prop[:, n:] + fe.c_next
        out_h.append(dh)
    return torch.stack(out_h)  # (T, B, n): the drift of h_(t-1) at step t


def gate_error_along(params: LSTMParams, xs, run) -> torch.Tensor:
    """Bound on |float64 f_t of the unroll - exact f_t|, (T, B, n): rounding of a^f and σ, and h's drift.

    a^f at step t is computed from the drifted h_(t-1): off by its own rounding (sum_error of
    the pre-activation's magnitude, K = m + n + 2 terms) plus |W_hf| times h's drift; σ moves
    by at most 1/4 of that and rounds within ACTIVATION_ULPS u of f.
    """
    T, B, n = run.c.shape
    drift_h = drift_bound(params, xs, run)
    K = params.input_size + n + 2
    W_f = params.hh_block("f").abs()
    A = preactivation_magnitude(params, xs, run.h_prev)[..., n:2 * n]
    f = torch.sigmoid(run.a_f)
    return 0.25 * (sum_error(A, K, torch.float64) + drift_h @ W_f.T) + ACTIVATION_ULPS * U64 * f


__all__ = ["compounded", "product_bound", "trajectory_mismatch", "lstm_backward_bound", "unrolled_vjp_bound", "note_product_bound", "drift_bound",
           "gate_error_along"]
