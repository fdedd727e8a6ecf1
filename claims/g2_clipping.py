"""G2 — clipping bounds the gradient.

Note: "Gating does not eliminate exploding gradients. [...] Gradient clipping is still
useful for LSTMs." CLAIMS.md G2: torch.nn.utils.clip_grad_norm_(params, max_norm) leaves a
total norm <= max_norm (within float tolerance) with the direction unchanged; applied to
the exploding case of G1.

What torch does (2.x, `error_if_nonfinite=False`, the default): N = ||(||g_1||, ..., ||g_k||)||
with each norm a plain square root of a sum of squares in the gradients' dtype;
c = min(1, max_norm / (N + 1e-6)); every gradient is multiplied in place by c. Hence:

- finite gradients whose squares do not overflow: exactly the claim (checked below with
  derived bounds; c is a single scalar, so the direction is kept elementwise);
- finite gradients whose sum of squares overflows — norm above about 2^64 (float32) or
  2^512 (float64), e.g. one element that large: N = inf although the gradient is finite, c = max_norm / inf = 0 and every element becomes
  ±0: the norm bound holds trivially, the direction is lost. G1's exploding gradient
  reaches this in float32 after about 100 steps. That is a counterexample to the claim as
  stated, and the suite records it;
- gradients holding inf or NaN: N = inf or NaN, c = 0 or NaN, and torch writes 0 and NaN
  into the gradients without complaint (error_if_nonfinite=True raises instead). Outside
  the claim (a NaN has no direction), but the kit reports it as a ClaimViolation rather
  than passing silently.

(torch also multiplies by max_norm / (N + 1e-6) < 1 gradients whose norm is already below
max_norm when both are of order 1e-6 or less; harmless for the claim, reported as a figure.)
"""
from __future__ import annotations

import math

import torch

from lstm_claims.claims import low_precision as LP
from lstm_claims.strategies.exact import exact_for
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check
from hypothesis import strategies as st
from lstm_claims.strategies.gradients import gradient_sets, max_norms
from lstm_claims.claims.tolerances import gamma, smallest_subnormal, unit_roundoff
from lstm_claims.claims.violation import ClaimViolation, assert_bound, assert_within, where

CLAIM = register(Claim(
    id="G2",
    title="clipping bounds the gradient",
    statement="Gradient clipping is still useful for LSTMs: clip_grad_norm_(params, max_norm) leaves a total "
              "norm <= max_norm with the direction unchanged, also on the exploding gradients of G1.",
    condition="finite gradients whose sum of squares is finite in their dtype (norm below about 2^64 in float32, "
              "2^512 in float64) and max_norm > 0; beyond, torch's norm overflows and clip_grad_norm_ zeroes finite "
              "gradients (the counterexample recorded); NaN/inf gradients are reported, not clipped",
    quantity="torch's total norm against the exact norm; the clipped gradient against c·g elementwise with "
             "c = min(1, max_norm/(N + 1e-6)); the clipped norm against max_norm; all within derived bounds",
    unconditional=False,  # the condition is part of the statement: `holds-under-condition`
))

TORCH_EPS = 1e-6  # the constant torch.nn.utils.clip_grad_norm_ adds to the norm before dividing


def exact_norm(ts) -> float:
    """The 2-norm of all elements of the float64 tensors ts, scaled by a power of two so that
    no square over- or underflows in float64 (relative error γ_(N+2) in float64)."""
    flat = torch.cat([t.reshape(-1) for t in ts]).to(torch.float64)
    big = flat.abs().max().item() if flat.numel() else 0.0
    if big == 0.0:
        return 0.0
    _, e = math.frexp(big)
    # Scaling by 2^-e is exact (ldexp: 2^-e itself overflows a float when big is subnormal).
    return math.ldexp(torch.linalg.vector_norm(torch.ldexp(flat, torch.tensor(-e, dtype=torch.int64))).item(), e)


def _described(before, after) -> str:
    nan = sum(int(torch.isnan(t).sum()) for t in after)
    zero = sum(int((t == 0).sum()) for t in after)
    was_zero = sum(int((t == 0).sum()) for t in before)
    numel = sum(t.numel() for t in after)
    return f"afterwards {nan} of {numel} elements are NaN and {zero} are 0 ({was_zero} were 0 before)"


def _raises_with_error_if_nonfinite(parameters, before, max_norm) -> bool:
    saved = [p.grad.detach().clone() for p in parameters]
    try:
        for p, b in zip(parameters, before):
            p.grad.copy_(b.to(p.grad.dtype))
        torch.nn.utils.clip_grad_norm_(parameters, max_norm, error_if_nonfinite=True)
        return False
    except RuntimeError:
        return True
    finally:
        for p, s in zip(parameters, saved):
            p.grad.copy_(s)


def parameters_with_grads(grads, device, dtype) -> list[torch.nn.Parameter]:
    """One nn.Parameter per gradient, on `device` in `dtype`, with .grad = the gradient rounded to dtype."""
    params = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros(g.shape, device=device, dtype=dtype))
        p.grad = g.to(device=device, dtype=dtype)
        params.append(p)
    return params


def check_clip(parameters, max_norm: float, device, dtype) -> dict:
    """clip_grad_norm_(parameters, max_norm) on their current .grad; returns figures or raises ClaimViolation.

    The violation's figures["case"] says which: "non-finite gradient", "norm overflow" (a
    finite gradient zeroed: the counterexample), or a plain failure of the bounds.
    """
    __tracebackhide__ = True
    parameters = [p for p in parameters if p.grad is not None]
    before = [p.grad.detach().to("cpu", torch.float64).clone() for p in parameters]
    numel, k = sum(t.numel() for t in before), len(before)
    ctx = f"{where(device, dtype)}, {k} gradients, {numel} elements, max_norm = {max_norm:.6g}"
    if max_norm <= 0 or not math.isfinite(max_norm):
        raise ValueError(f"max_norm must be positive and finite (the claim's condition), got {max_norm!r}")
    finite = all(bool(torch.isfinite(t).all()) for t in before)
    total = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    total = float(total)
    after = [p.grad.detach().to("cpu", torch.float64) for p in parameters]
    if not finite:
        raises = _raises_with_error_if_nonfinite(parameters, before, max_norm)
        raise ClaimViolation("G2", f"{ctx}: the gradient is not finite (it holds inf or NaN). clip_grad_norm_ "
                                   f"returned total norm {total} and multiplied every gradient by max_norm/(N + 1e-6) "
                                   f"= {max_norm / (total + TORCH_EPS)}: {_described(before, after)}. With "
                                   f"error_if_nonfinite=True torch {'raises' if raises else 'does NOT raise'}.",
                             figures={"case": "non-finite gradient", "total_norm": total,
                                      "raises_with_error_if_nonfinite": raises})
    N = exact_norm(before)
    if not math.isfinite(total):
        raises = _raises_with_error_if_nonfinite(parameters, before, max_norm)
        biggest = max(t.abs().max().item() for t in before)
        raise ClaimViolation("G2", f"{ctx}: torch's total norm is {total} for a finite gradient of norm {N:.6g} "
                                   f"(largest |g| = {biggest:.6g}; its square overflows {str(dtype)[6:]}). "
                                   f"clip_grad_norm_ multiplied every gradient by max_norm/(inf + 1e-6) = 0: "
                                   f"{_described(before, after)}; the direction is lost. error_if_nonfinite=True "
                                   f"{'raises' if raises else 'does NOT raise'} here.",
                             figures={"case": "norm overflow", "max_norm": max_norm, "exact_norm": N, "total_norm": total,
                                      "largest_element": biggest, "raises_with_error_if_nonfinite": raises})
    u, eta = unit_roundoff(dtype), smallest_subnormal(dtype)
    largest = max(t.numel() for t in before)
    # torch's N: per-tensor sums of squares (γ_(numel) of the sum, all terms positive), square roots,
    # then the same over the k norms: relative error γ_(largest + k + 3). Squares below the
    # normal range lose up to η/2 each: sqrt(numel η) per tensor norm, sqrt(k η) at the end,
    # and the outer norm is 1-Lipschitz in the inner ones.
    dN = gamma(largest + k + 3, dtype) * N + k * math.sqrt(largest * eta) + math.sqrt(k * eta)
    dN64 = gamma(numel + 2, torch.float64) * N  # exact_norm's own rounding
    assert_bound("G2", "|torch's total norm - exact norm|", abs(total - N), dN + dN64, context=ctx,
                 why="γ_(numel+k+3) N + underflow of the squares, plus the float64 reference's γ_(N+2)")
    # c = max_norm / fl(N + 1e-6), clamped to 1: with d = N + 1e-6 the computed denominator is
    # d(1 + φ), φ <= (ΔN + u 1e-6)/d + u; torch evaluates the quotient as
    # fl(fl(1 / denominator) · fl(max_norm)) (Tensor.__rtruediv__ is reciprocal() * other), three
    # roundings: relative error of c at most (1 + u)³ / (1 - φ) - 1; clamping at 1 does not increase it.
    d = N + TORCH_EPS
    phi = (dN + dN64 + u * TORCH_EPS) / d + u
    # Written so that no u is lost: in float64, 1 + 2^-53 rounds to 1, and (1 + u)**3 - 1 would be 0.
    rho_c = (3 * u + 3 * u * u + u ** 3 + phi) / (1 - phi)  # (1 + u)³ / (1 - φ) - 1
    rho_el = rho_c + u + rho_c * u  # (1 + ρ_c)(1 + u) - 1: c's error and the rounding of g·c
    c = min(1.0, max_norm / d)
    # Below the normal range the relative bounds do not hold: a result there is off by up to η/2
    # absolutely. That happens to 1 / denominator when N > ~2^125 (float32), and to c itself when
    # max_norm / N < 2^-126 (a tiny max_norm against an exploded gradient). Counted where the exact
    # value is within a factor 2 of the normal range (the relative bound covers the rest).
    tiny = torch.finfo(dtype).tiny
    c_abs = (max_norm * (1 + 2 * u) * eta / 2 if 1 / d < 2 * tiny else 0.0) + (eta / 2 if c < 2 * tiny else 0.0)
    expected = [c * b for b in before]
    # One more rounding of g·c per element, and η/2 when it lands below the normal range.
    # The float64 reference c·g is itself rounded: N (dN64), N + 1e-6, the division and the product.
    U64 = unit_roundoff(torch.float64)
    ref_rel = (dN64 / d + 3 * U64) * (1 + 4 * U64)
    allowed = [b.abs() * (c * (rho_el + ref_rel) + c_abs + c_abs * u) + eta / 2 for b in before]
    worst = 0.0
    for j, (a, e, al) in enumerate(zip(after, expected, allowed)):
        worst = max(worst, assert_within("G2", f"clipped gradient {j} vs c·g (c = {c:.6g})", a, e, al, context=ctx,
                                         why="one scalar c for all gradients: relative error of c from the norm's "
                                             "bound, then one rounding per element; plus the float64 reference's "
                                             "own rounding"))
    N_after = exact_norm(after)
    # c N <= max_norm exactly (c = max_norm/(N + 1e-6) < max_norm/N, or c = 1 iff N <= max_norm - 1e-6).
    bound = (max_norm + max_norm * rho_el + N * c_abs * (1 + 2 * u) + math.sqrt(numel) * eta / 2) * (
        1 + gamma(numel + 2, torch.float64))
    tight = assert_bound("G2", "total norm after clipping", N_after, bound, context=ctx,
                         why="c N <= max_norm, plus c's relative error (and absolute, below the normal range), "
                             "one rounding per element and underflow")
    flat_b, flat_a = torch.cat([b.reshape(-1) for b in before]), torch.cat([a.reshape(-1) for a in after])
    cos = 1.0
    if N > 0 and N_after > 0:
        _, e1 = math.frexp(N)
        _, e2 = math.frexp(N_after)
        # Scaled by exact powers of two first (ldexp: 2^-e itself overflows for a subnormal norm).
        scaled_b = torch.ldexp(flat_b, torch.tensor(-e1, dtype=torch.int64))
        scaled_a = torch.ldexp(flat_a, torch.tensor(-e2, dtype=torch.int64))
        cos = float(scaled_b @ scaled_a) / (math.ldexp(N, -e1) * math.ldexp(N_after, -e2))
    return {"norm_after_over_max_norm": tight, "worst_error_over_allowed": worst,
            "max_one_minus_cosine": 1.0 - cos,
            "shrunk_although_within_max_norm": float(N <= max_norm and c < 1.0)}


# --- the record's checks ----------------------------------------------------------------------

def _overflowed(exc) -> bool:
    """A finite gradient whose norm overflows is zeroed by clip_grad_norm_: the note's 'clipping bounds
    the gradient' fails there (a counterexample, not a failure of the code under test)."""
    return getattr(exc, "figures", {}).get("case") == "norm overflow"


def _drawn(regime):
    # Significands exact in the case's dtype (float32-exact for float64 and float32, as always).
    return lambda device, dtype: st.tuples(gradient_sets(dtype=dtype, regime=regime, exact_in=exact_for(dtype)),
                                           max_norms(exact_in=exact_for(dtype)))


def _finite(ctx, drawn):
    grads, max_norm = drawn
    return check_clip(parameters_with_grads(grads, ctx.device, ctx.dtype), max_norm, ctx.device, ctx.dtype)


def _non_finite(ctx, drawn):
    grads, max_norm = drawn
    try:
        check_clip(parameters_with_grads(grads, ctx.device, ctx.dtype), max_norm, ctx.device, ctx.dtype)
    except ClaimViolation as exc:
        if exc.figures.get("case") != "non-finite gradient":
            raise
        ctx.figures(non_finite_gradients_reported=1.0,
                    torch_raises_with_error_if_nonfinite=float(exc.figures["raises_with_error_if_nonfinite"]))
        return None
    raise AssertionError(f"[G2] {ctx.where}: a non-finite gradient was clipped without being reported (kit bug)")


# Steps of G1's stored example after which ||dL/dθ|| passes 2^64 (float32) / 2^512 (float64): rate ≈ 1.56.
OVERFLOW_STEPS = {torch.float32: 112, torch.float64: 840}


def _clip_exploding(regime: str):
    def run(ctx):
        from lstm_claims.claims.g1_exploding import exploding_parameter_gradient

        steps = OVERFLOW_STEPS[ctx.dtype] if regime == "overflowing" else int(regime)
        cell = exploding_parameter_gradient(ctx.cut, steps, ctx.device, ctx.dtype)
        grads = [p.grad for p in cell.parameters() if p.grad is not None]
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            raise ClaimViolation("G2", f"{ctx.where}: G1's gradient at T = {steps} is not finite")
        if regime == "overflowing":
            norm = exact_norm([g.to("cpu", torch.float64) for g in grads])
            assert norm >= 2.0 ** (64 if ctx.dtype == torch.float32 else 512), (
                f"G1's gradient at T = {steps} has norm {norm:.3g}: the construction no longer reaches the regime")
        return check_clip(list(cell.parameters()), 1.0, ctx.device, ctx.dtype)
    return run


CLAIM.define_checks(
    # In the four dtypes: float16's squares overflow from an element of 2^8 on (bfloat16: 2^64, as float32).
    Check("clipping-bounds-finite-gradients", _finite, _drawn("representable"), dtypes=LP.ALL_DTYPES[:3],
          dtypes_why_not="float16 not yet: on a float16 gradient below its normal range (one element, max_norm 0.5) "
                         "the bound on the clipped norm comes out negative (-1.0e-3): check_clip's underflow terms "
                         "are not derived for float16's range (issue 12, open)"),
    Check("non-finite-gradients-are-reported", _non_finite, _drawn("non-finite"), dtypes=LP.ALL_DTYPES),
    # Finite gradients with an element >= 2^64 (float32) / 2^512 (float64): their squares overflow.
    Check("finite-gradients-whose-squares-overflow", _finite, _drawn("overflowing"), refuted_by=_overflowed,
          dtypes=LP.ALL_DTYPES),
    Check("clip-G1-gradient-T16", _clip_exploding("16"), through_impl=True, refuted_by=_overflowed,
          dtypes_why_not=LP.FIXED_FLOAT32_EXAMPLE),
    Check("clip-G1-gradient-T64", _clip_exploding("64"), through_impl=True, refuted_by=_overflowed,
          dtypes_why_not=LP.FIXED_FLOAT32_EXAMPLE),
    Check("clip-G1-gradient-overflowing", _clip_exploding("overflowing"), through_impl=True, refuted_by=_overflowed,
          not_in_catalogue="840 steps in float64; a refutation about torch's clip_grad_norm_, not the cell",
          dtypes_why_not=LP.FIXED_FLOAT32_EXAMPLE),
)
