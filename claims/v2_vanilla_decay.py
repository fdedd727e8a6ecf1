"""V2 — the vanilla product decays at least like β^T.

Note: "the vanilla RNN Jacobian product satisfies ||Π_t J_t|| <= Π_t ||J_t|| with each ||J_t|| < 1
generically, so the product norm decays as β^T for some β < 1." Precisely (CLAIMS.md V2):

    ||J_T ⋯ J_1|| <= Π_t ||J_t|| <= (max_{t,k} tanh'(z_t,k) · ||W_hh||)^T

on every example (submultiplicativity and ||diag(d) W|| <= max d ||W||), so ||W_hh|| = β < 1
gives decay at least as fast as β^T (Pascanu, Mikolov & Bengio 2013's sufficient condition).
Whether ||J_t|| < 1 *generically* is V3's measurement, not assumed here.

Checked on torch.nn.RNN: its autograd ∂h_T/∂h_0 through T steps (its own multi-step kernel)
against the closed-form product along its trajectory (V1's chain, exact for the vanilla RNN),
within a bound accumulated step by step; then both inequalities on the float64 product and
on the RNN's own matrix.
"""
from __future__ import annotations

import math

import torch

from lstm_claims.claims import through_rnn
from lstm_claims.claims.long_range_tolerances import product_bound
from lstm_claims.claims.rnn_tolerances import rnn_backward_bound
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check, drawn_from, minimum
from hypothesis import target
from lstm_claims.strategies.vanilla_rnn_problems import rnn_problems
from lstm_claims.claims.tolerances import U64, frobenius, gamma, svd_bound, svd_relative_error
from lstm_claims.claims.violation import ClaimViolation, assert_within, where
from lstm_claims.reference.jacobian_chain import ordered_product_chain
from lstm_claims.reference.vanilla_rnn import dtanh, preactivation, spectral_norm, step_jacobians

CLAIM = register(Claim(
    id="V2",
    title="||Π J_t|| <= Π ||J_t|| <= (max tanh' ||W_hh||)^T",
    statement="The vanilla RNN Jacobian product satisfies ||Π_t J_t|| <= Π_t ||J_t||; with ||J_t|| <= β < 1 the "
              "product norm decays as β^T.",
    condition="always (the inequalities); decay when β = max tanh' · ||W_hh|| < 1, in particular when ||W_hh|| < 1",
    quantity="torch.nn.RNN's autograd ∂h_T/∂h_0 vs the closed-form product (derived bound); log ||Π J_t|| <= "
             "Σ log ||J_t|| <= T log(max tanh' ||W_hh||) within float64 rounding; the per-step ratio "
             "(||Π J|| / β^T)^(1/T)",
    unconditional=True,  # an identity or theorem: its verdict reads `holds`
))


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def check(problem, device, dtype) -> dict:
    __tracebackhide__ = True
    p = problem
    T, B, n = p.steps, p.batch, p.hidden_size
    ctx = f"{where(device, dtype)}, torch.nn.RNN, T={T} B={B} m={p.input_size} n={n}"
    J_rnn, hs_r = through_rnn.unrolled_jacobian(p.params, p.xs, p.h0, device, dtype)
    xs_r = p.xs.repeat_interleave(n, 1)
    z = preactivation(p.params, xs_r, hs_r[:-1])  # (T, R, n) at the RNN's own states
    J = step_jacobians(p.params, z)  # (T, R, n, n)
    v = [through_rnn.rows_of(B, n)]
    for t in range(T - 1, -1, -1):
        v.append((v[-1].unsqueeze(1) @ J[t]).squeeze(1))
    v = torch.stack(v[::-1])  # (T + 1, R, n)
    tol = rnn_backward_bound(p.params, xs_r, hs_r, J, v, dtype).view(B, n, n)
    worst = assert_within("V2", "torch.nn.RNN's ∂h_T/∂h_0 vs the closed-form product J_T ⋯ J_1", J_rnn,
                          v[0].view(B, n, n), tol, context=ctx,
                          why="one-step backward bounds accumulated through |J_t|ᵀ (claims/rnn_tolerances.py)")
    # The inequalities, per example, on the float64 factors of copy 0 (the trajectory of example b).
    Jb, zb = J[:, ::n], z[:, ::n]  # (T, B, n, n), (T, B, n)
    P = ordered_product_chain(Jb)
    P_abs = ordered_product_chain(Jb.abs())
    w = spectral_norm(p.params.weight_hh).item()
    step_norms = spectral_norm(Jb)  # (T, B)
    d_max = dtanh(zb).amax(dim=(0, 2))  # (B,)
    out = {"worst_error_over_allowed": worst, "steps": T}
    ratios, rates = [], []
    for b in range(B):
        prod_norm = spectral_norm(P[b]).item()
        # ||fl(Π J) - Π J||_2 <= ||γ_((T-1)n) Π|J|||_F; the SVD: 4 n u.
        prod_err = frobenius(product_bound(P_abs[b], T, n)).item() + svd_bound(prod_norm, n)
        sum_log = torch.log(step_norms[:, b]).sum().item()
        # each ||J_t|| by SVD within 4 n u; T logs and T - 1 sums: γ_(2T) relative of Σ|log|, plus T(4 n u)
        sum_log_slack = T * svd_relative_error(n) + gamma(2 * T, torch.float64) * torch.log(step_norms[:, b]).abs().sum().item()
        if _log(max(prod_norm - prod_err, 0.0)) > sum_log + sum_log_slack:
            raise ClaimViolation("V2", f"{ctx}, example {b}: ||Π J_t|| = {prod_norm:.10g} exceeds Π ||J_t|| = "
                                       f"e^{sum_log:.10g} (submultiplicativity)")
        beta = d_max[b].item() * w
        # ||fl(diag(d) W)|| <= max d ||W|| + u ||diag(d) W||_F per step; ||W|| and each ||J_t|| by SVD within 4 n u.
        per_step = torch.log1p(U64 * frobenius(Jb[:, b]) / (beta if beta > 0 else 1.0)).sum().item()
        bound_log = T * _log(beta) + per_step + 2 * T * svd_relative_error(n) + gamma(2 * T, torch.float64) * abs(T * _log(beta))
        if sum_log > bound_log + sum_log_slack:
            raise ClaimViolation("V2", f"{ctx}, example {b}: Π ||J_t|| = e^{sum_log:.10g} exceeds (max tanh' ||W_hh||)^T "
                                       f"= e^{T * _log(beta):.10g} (||diag(d) W|| <= max d ||W||)")
        rnn_norm = spectral_norm(J_rnn[b]).item()
        rnn_low = max(rnn_norm - frobenius(tol[b]).item() - svd_bound(rnn_norm, n), 0.0)
        if _log(rnn_low) > bound_log + sum_log_slack + svd_relative_error(n):
            raise ClaimViolation("V2", f"{ctx}, example {b}: torch.nn.RNN's ||∂h_T/∂h_0|| = {rnn_norm:.10g} exceeds "
                                       f"(max tanh' ||W_hh||)^T = e^{T * _log(beta):.10g} beyond its rounding bound")
        ratios.append(math.exp((_log(prod_norm) - T * _log(beta)) / T) if beta > 0 and prod_norm > 0 else 0.0)
        rates.append(prod_norm ** (1 / T))
    out.update({"max_per_step_ratio_to_bound": max(ratios), "max_observed_rate": max(rates),
                "min_observed_rate": min(rates), "norm_W_hh": w})
    if w < 1:
        out["max_rate_when_norm_W_below_1"] = max(rates)
    return out


# --- the record's checks ----------------------------------------------------------------------

def _bounded(ctx, problem):
    figures = check(problem, ctx.device, ctx.dtype)
    target(figures["max_per_step_ratio_to_bound"], label="(||Π J|| / β^T)^(1/T)")
    return figures


CLAIM.define_checks(
    Check("product-bounded-by-beta-pow-T", _bounded, drawn_from(rnn_problems(max_steps=40)),
          aggregate=minimum("min_observed_rate")),
)
