"""L8 — per-coordinate memory over arbitrary spans, computed in log space.

Note: "If the k-th forget gate is near 1 at every step (f_t,k ≈ 1), then Π_t f_t,k ≈ 1 — the
gradient through coordinate k is preserved over arbitrary time spans." Precisely (CLAIMS.md
L8): if f_t,k >= 1 - δ for all t then

    (Π_t f_t)_k >= (1 - δ)^T >= 1 - Tδ          (Bernoulli; proved in SymPy for symbolic T)

"Arbitrary time spans" means the products are computed where they cannot underflow: in log
space, log Π_t f_t,k = Σ_t log f_t,k. Checked for T up to 10^5:

- through the cell under test: its forget gates f̂ (its ∂c_t/∂c_{t-1} with h fixed, L1) at
  every step, one batched backward pass for all T steps; Σ log f̂ against the float64
  reference Σ logsigmoid(a^f) (reference.jacobian_chain.log_forget_products), within a bound
  derived from the cell's gate error; finite for every T (no underflow, and a product of
  numbers in (0, 1] cannot overflow);
- exp(Σ logsigmoid) against the direct float64 product Π f wherever that product is a
  normal number (then every partial product is too, since f <= 1), within the rounding of
  both; where it is not, the direct product has underflowed and only the log is meaningful
  (counted, with the float32 direct product's underflows);
- the memory bound Σ log f >= T log(1 - δ) >= log(1 - Tδ) (δ = 1 - min_t f_t,k), on the
  cell's gates and on the reference's.
"""
from __future__ import annotations

from functools import partial

import math

import torch

from lstm_claims.claims.low_precision import ALL_DTYPES, on_impl_exact
from lstm_claims.strategies.exact import per_dtype
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check, minimum
from lstm_claims.strategies.long_range_sequences import forget_gate_sequence, forget_gate_sequences
from lstm_claims.claims.tolerances import ACTIVATION_ULPS, U64, direct_term_error, gamma, smallest_normal, smallest_subnormal
from lstm_claims.claims.unrolled_cell import forget_gates
from lstm_claims.claims.violation import ClaimViolation, assert_bound, assert_within, where
from lstm_claims.reference import symbolic_long_range
from lstm_claims.reference.jacobian_chain import log_forget_products
from lstm_claims.reference.lstm_step import preactivations

CLAIM = register(Claim(
    id="L8",
    title="per-coordinate memory Π f over arbitrary spans (log space)",
    statement="If the k-th forget gate is near 1 at every step, then Π_t f_t,k ≈ 1: the gradient through "
              "coordinate k is preserved over arbitrary time spans.",
    condition="f_t,k >= 1 - δ for every t (then Π f >= (1-δ)^T >= 1 - Tδ); products computed in log space",
    quantity="Σ_t log f_t,k of the cell's gates vs the float64 logsigmoid sum, finite for T up to 10^5; "
             "exp(Σ log f) vs the direct float64 product where representable; Σ log f >= T log(1-δ) >= log(1-Tδ)",
    unconditional=False,  # the condition is part of the statement: `holds-under-condition`
))

NORMAL_MIN_LOG = math.log(smallest_normal(torch.float64))  # below this a float64 product is subnormal or 0


def check(cut, seq, device, dtype) -> dict:
    __tracebackhide__ = True
    p = seq.params
    T, B, n = seq.steps, seq.batch, seq.hidden_size
    ctx = f"{where(device, dtype)}, T={T} B={B} n={n}, forget shift {seq.drawn.get('forget_shift')}"
    x, h = seq.xs.flatten(0, 1), seq.hs.flatten(0, 1)
    f_cell = forget_gates(cut, p, x, h, device, dtype)
    a_f = preactivations(p, x, h).a_f
    f_ref = torch.sigmoid(a_f)
    # The cell's f is its dc_t/dc_(t-1) with h fixed (L1): the forget gate's forward error bound.
    tol_f = direct_term_error(p, x, h, dtype)
    assert_within("L8", "the cell's forget gates (∂c_t/∂c_(t-1) with h fixed) vs σ(a^f)", f_cell, f_ref, tol_f,
                  context=ctx, why="rounding bound of the f gate in the cell's dtype and in float64 "
                                   "(claims/tolerances.py: direct_term_error)")
    f_cell, f_ref, tol_f, a_f = (t.view(T, B, n) for t in (f_cell, f_ref, tol_f, a_f))

    # Log space. Reference: Σ logsigmoid(a^f) in float64; logsigmoid within ACTIVATION_ULPS u of
    # |log f| (plus the smallest normal, for a^f so large that log f underflows), summed: γ_T.
    log_ref = log_forget_products(a_f)  # (B, n)
    abs_log = -torch.nn.functional.logsigmoid(a_f)
    err_ref = (ACTIVATION_ULPS * U64 + gamma(T, torch.float64)) * abs_log.sum(0) + T * smallest_normal(torch.float64)
    if not torch.isfinite(log_ref).all():
        raise ClaimViolation("L8", f"{ctx}: the log-space product Σ logsigmoid(a^f) is not finite "
                                   f"(min {log_ref.min().item():.6g}): log space must not underflow")
    # The cell's gates: |log f̂ - log f| <= |f̂ - f| / min(f̂, f) <= tol_f / (f - tol_f) where f > tol_f;
    # log of a float64 number within 1 ulp, summed in float64: (1 + γ_T) Σ |log f̂|.
    usable = (f_ref > 2 * tol_f).all(0)  # coordinates whose gates all exceed their rounding error
    with torch.no_grad():
        log_cell = torch.log(f_cell).sum(0)
        err_log_f = (tol_f / (f_ref - tol_f).clamp_min(torch.finfo(torch.float64).tiny)).sum(0)
        err_cell = err_log_f + (U64 + gamma(T, torch.float64)) * (-torch.log(f_cell)).sum(0) + err_ref
    if usable.any():
        assert_within("L8", "Σ_t log f̂_t of the cell vs Σ_t logsigmoid(a^f_t)", log_cell[usable], log_ref[usable],
                      err_cell[usable], context=ctx,
                      why="Σ_t tol_f / (f - tol_f) for the cell's gates, plus γ_T of both sums and logsigmoid's ulps")
        if not torch.isfinite(log_cell[usable]).all():
            raise ClaimViolation("L8", f"{ctx}: Σ log f̂ of the cell is not finite although every gate is positive")

    # Direct float64 products, where they are normal numbers (then no partial product underflowed).
    direct = torch.prod(f_ref, dim=0)
    representable = log_ref - err_ref > NORMAL_MIN_LOG
    if representable.any():
        # Π f: T - 1 multiplications of gates each within ACTIVATION_ULPS u: γ_((ACT + 1) T) relative.
        # exp(Σ): e^(err_ref) - 1 relative from the sum, plus exp's own ulps.
        rel = gamma((ACTIVATION_ULPS + 1) * T, torch.float64) + math.expm1(err_ref[representable].max().item()) \
            + ACTIVATION_ULPS * U64
        assert_within("L8", "exp(Σ log f) vs the direct float64 product Π f", torch.exp(log_ref[representable]),
                      direct[representable], rel * direct[representable] * (1 + rel), context=ctx,
                      why="γ_((ACT+1)T) of the direct product, e^(log-sum error) - 1 and exp's rounding")
    # The naive float32 product: below the smallest normal it is wrong (gates > 1/2 leave it stuck at
    # the smallest subnormal 2^-149, since 2^-149 f rounds back to 2^-149; smaller gates flush it to 0).
    direct32 = torch.prod(f_cell.to(torch.float32), dim=0).to(torch.float64)

    # The memory bound on the reference's and on the cell's gates.
    worst_slack = 0.0
    for name, logs, f, err in (("reference", log_ref, f_ref, err_ref), ("cell", log_cell, f_cell, err_cell)):
        f_min = f.amin(0)
        delta = 1 - f_min  # exact for f >= 1/2 (Sterbenz); else one rounding, u
        mem = T * torch.log1p(-delta.clamp(max=1.0))  # log (1 - δ)^T
        mem_err = (ACTIVATION_ULPS + 2) * U64 * mem.abs() + T * U64
        # What the memory bound's two sides do not share. Where f_min < 1/2, δ = (1 - f_min)(1 + θ), |θ| <= u,
        # moves log(1 - δ) by up to -log(1 - u δ/f_min) per step (u per step above is too little for small f).
        r = torch.where(f_min < 0.5, U64 * delta / f_min.clamp_min(torch.finfo(torch.float64).tiny),
                        torch.zeros_like(f_min))
        side_err = T * r / (1 - r).clamp_min(torch.finfo(torch.float64).tiny)
        if name == "reference":
            # Its left side is Σ logsigmoid(a^f), while δ comes from f = σ(a^f) rounded to within
            # ACTIVATION_ULPS u of itself: log f_min is off the exact log min σ by -log(1 - ACT u) <= γ_ACT
            # per step. (The cell's left side is the log of the very f its δ comes from.)
            side_err = side_err + T * gamma(ACTIVATION_ULPS, torch.float64)
        ok = torch.isfinite(mem) & torch.isfinite(logs) & (r < 1)
        for idx in ok.nonzero().tolist():
            i = tuple(idx)
            worst_slack = max(worst_slack, assert_bound(
                "L8", f"-Σ log f ({name}, coordinate {i})", -logs[i].item(),
                -mem[i].item() + err[i].item() + mem_err[i].item() + side_err[i].item(), context=ctx,
                why="f_t >= 1 - δ at every step gives Σ log f >= T log(1 - δ), plus rounding of both, and of "
                    "the gate the reference's δ is read from"))
            td = T * delta[i].item()
            if td < 1:  # Bernoulli: T log(1 - δ) >= log(1 - Tδ)
                assert_bound("L8", f"-T log(1-δ) ({name}, coordinate {i})", -mem[i].item(),
                             -math.log1p(-td) * (1 + 4 * U64 * T) + mem_err[i].item(), context=ctx,
                             why="(1-δ)^T >= 1 - Tδ (Bernoulli), plus rounding of T δ and log1p")
    return {"steps": T, "min_log_product": log_ref.min().item(), "max_log_product": log_ref.max().item(),
            "direct_float64_underflows": int((~representable).sum()),
            "direct_float32_not_normal": int((direct32 < torch.finfo(torch.float32).tiny).sum()),
            "direct_float32_stuck_at_smallest_subnormal": int((direct32 == smallest_subnormal(torch.float32)).sum()),
            "log_space_finite": int(torch.isfinite(log_ref).sum()),
            "max_memory_bound_tightness": worst_slack}


def proofs() -> list[dict]:
    return [symbolic_long_range.prove_log_space_products()]


# --- the record's checks ----------------------------------------------------------------------

def _symbolic(ctx):
    ctx.figures(symbolic=[p["identity"] for p in proofs()])


CLAIM.define_checks(
    # Always reach T = 10^5: Π f = σ(-3 ± ..)^T ~ e^(-3 10^5) (underflows ~1000 times over) and σ(20 ± ..)^T ≈ 1.
    Check("log-space-products", on_impl_exact(check), per_dtype(partial(forget_gate_sequences, max_log10_steps=5)),
          examples=(forget_gate_sequence(10 ** 5, 2, 2, 1, -1, -3.0, 7),
                    forget_gate_sequence(10 ** 5, 2, 2, 1, -1, 20.0, 8)),
          dtypes=ALL_DTYPES, through_impl=True, aggregate=minimum("min_log_product")),
    Check("symbolic", _symbolic, dtypes=(), devices=()),
)
