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

Low precision (bfloat16, float16; measured on CPU torch 2.13, tests/meta/test_low_precision_findings.py
and test_low_precision_g2_g3.py): the squares accumulate in float32 and each norm is rounded to
the dtype; c's ops compute in float32 and round to the dtype. Hence, beyond float32's cases:

- bfloat16 has float32's range: its norm overflows where float32's does (2^64);
- float16's norm overflows from 65520 (65504 + half an ulp), although no element's square is
  computed in float16: clip_grad_norm_ then zeroes the finite gradient, as in float32 beyond 2^64.
  G1's exploding gradient reaches it at T = 23 (norm 9.6e4, largest element 4.4e4); at T = 24 the
  float16 gradient itself overflows, so float16's window is one step wide (float32 and bfloat16:
  from T = 97, and the elements stay finite far beyond). The check measures the first T by
  bisection in every run and reports it per dtype (overflow_threshold_T_<dtype>);
- float16 also fails at the other end: for a norm below about 1.4e-5, 1/(N + 1e-6) overflows
  float16 (65504), the coefficient is min(1, inf · max_norm) = 1 and nothing is clipped, however
  small max_norm is (the "coefficient overflow" counterexample; an explicit example states it).
"""
from __future__ import annotations

import math

import torch

from lstm_claims.claims import low_precision as LP
from lstm_claims.strategies.exact import exact_for
from lstm_claims.claims.unrolled_cell import parameter_gradient
from lstm_claims.reference.exploding_construction import FIXED_POINT_STEPS, fixed_point_example
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check
from hypothesis import strategies as st
from lstm_claims.strategies.gradients import gradient_sets, max_norms
from lstm_claims.claims.tolerances import (ACCUMULATION_DTYPE, gamma, is_low_precision, largest_finite,
                                           reduction_gamma, smallest_normal, smallest_subnormal, unit_roundoff)
from lstm_claims.claims.violation import ClaimViolation, assert_bound, assert_within, where

CLAIM = register(Claim(
    id="G2",
    title="clipping bounds the gradient",
    statement="Gradient clipping is still useful for LSTMs: clip_grad_norm_(params, max_norm) leaves a total "
              "norm <= max_norm with the direction unchanged, also on the exploding gradients of G1.",
    condition="finite gradients whose norm torch computes finite (below about 2^64 in float32 and bfloat16, 2^512 in "
              "float64, 65520 in float16) and max_norm > 0; beyond, torch's norm overflows and clip_grad_norm_ zeroes "
              "finite gradients (the counterexample recorded); in float16 also a norm above about 1.4e-5, below which "
              "1/(N + 1e-6) overflows and nothing is clipped (recorded too); NaN/inf gradients are reported, not clipped",
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


def _why_inf(dtype) -> str:
    if is_low_precision(dtype):
        # Measured (tests/meta/test_low_precision_findings.py): the squares accumulate in float32, the norm is
        # rounded to the dtype: float16 overflows from a norm of 65520 (65504 + half an ulp), bfloat16 where
        # float32's sum of squares does (a norm of 2^64).
        return (f"torch sums the squares in float32 and rounds the norm to {str(dtype)[6:]}, whose largest finite "
                f"value is {largest_finite(dtype):.6g}; float32's sum of squares overflows from a norm of 2^64")
    return f"the sum of its squares overflows {str(dtype)[6:]}"


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
                                   f"(largest |g| = {biggest:.6g}; {_why_inf(dtype)}). "
                                   f"clip_grad_norm_ multiplied every gradient by max_norm/(inf + 1e-6) = 0: "
                                   f"{_described(before, after)}; the direction is lost. error_if_nonfinite=True "
                                   f"{'raises' if raises else 'does NOT raise'} here.",
                             figures={"case": "norm overflow", "max_norm": max_norm, "exact_norm": N, "total_norm": total,
                                      "largest_element": biggest, "raises_with_error_if_nonfinite": raises})
    u, eta, tiny = unit_roundoff(dtype), smallest_subnormal(dtype), smallest_normal(dtype)
    low = is_low_precision(dtype)
    largest = max(t.numel() for t in before)
    # torch's N: per-tensor norms (a sum of squares and a square root), then the norm of the k norms.
    # float32/float64: in the gradients' dtype, relative error γ_(largest + k + 3). bfloat16/float16: the
    # squares accumulate in float32 and each of the two norms is rounded once to the dtype (measured:
    # tests/meta/test_low_precision_findings.py; the accumulation assumption of claims/tolerances.py):
    # (1 + γ_(largest + k + 3)(float32))(1 + γ_2(dtype)) - 1 = reduction_gamma(..., roundings=2).
    # Squares below the normal range of the accumulating dtype lose up to η_acc/2 each: sqrt(numel η_acc)
    # per tensor norm, sqrt(k η_acc) at the end, the outer norm 1-Lipschitz in the inner ones; in low
    # precision each of the k + 1 norms rounded to the dtype may land below its normal range: η/2 each
    # (float16's normal range starts at 2^-14: a norm of 1e-5 is subnormal there).
    rel_N = reduction_gamma(largest + k + 3, dtype, roundings=2)
    eta_acc = smallest_subnormal(ACCUMULATION_DTYPE) if low else eta
    abs_N = k * math.sqrt(largest * eta_acc) + math.sqrt(k * eta_acc) + ((k + 1) * eta / 2 if low else 0.0)
    dN = rel_N * N + (1 + rel_N) * abs_N
    dN64 = gamma(numel + 2, torch.float64) * N  # exact_norm's own rounding
    assert_bound("G2", "|torch's total norm - exact norm|", abs(total - N), dN + dN64, context=ctx,
                 why="float32 (or the dtype's) accumulation of the squares and the roundings of the norms, plus "
                     "underflow of the squares and of the norms, plus the float64 reference's γ_(N+2)")
    # The coefficient, from torch's own total N_t (just checked against the exact norm):
    # c = min(1, fl(fl(max_norm) · fl(1 / fl(N_t + fl(1e-6))))) (Tensor.__rtruediv__ is reciprocal() * other).
    # Each op computes in float32 for a low-precision dtype and rounds to it (u_op = (1 + u32)(1 + u) - 1),
    # in the dtype itself otherwise (u_op = u); a Python scalar (1e-6, max_norm) enters as a float32 (u_cv).
    u_cv = unit_roundoff(ACCUMULATION_DTYPE) if low else u
    u_op = _grown(u_cv, u) if low else u
    d = total + TORCH_EPS
    # fl(N_t + 1e-6): relative (1 + u_cv)(1 + u_op) - 1, and η/2 where it lands below the normal range
    # (float16: N_t + 1e-6 < 2^-14), counted relative to d.
    eps_d = _grown(u_cv, u_op) + (eta / 2 / d if d < 2 * tiny else 0.0)
    # 1 / fl(N_t + 1e-6) overflows the dtype when the denominator is below 1/finfo.max (float16: 1.5e-5,
    # i.e. a norm below about 1.4e-5): the reciprocal is inf, c = min(1, inf · max_norm) = 1 and nothing is
    # clipped, whatever max_norm is. Possible only in float16 (float32's 1/1e-6 is far inside its range).
    recip_may_overflow = eps_d < 1 and 1 / (d * (1 - eps_d)) >= largest_finite(dtype)
    # c's relative error in the normal range: (1 + u_cv)(1 + u_op)² / (1 - ε_d) - 1 (written without losing
    # a u in float64: 1 + 2^-53 rounds to 1); clamping at 1 does not increase it.
    rho_c = _grown(u_cv, u_op, u_op, eps_d / (1 - eps_d)) if eps_d < 1 else math.inf
    c = min(1.0, max_norm / d)
    # Below the normal range the relative bounds do not hold: a result there is off by up to η/2
    # absolutely. That happens to 1 / denominator when N > ~2^125 (float32; float16: N > 2^14), and to c
    # itself when max_norm / N < 2^-126 (float16: 2^-14). Counted where the exact value is within a factor
    # 2 of the normal range (the relative bound covers the rest).
    c_abs = (max_norm * (1 + 2 * u_op) * eta / 2 if 1 / d < 2 * tiny else 0.0) + (eta / 2 if c < 2 * tiny else 0.0)
    if recip_may_overflow and all(bool(torch.equal(a, b)) for a, b in zip(after, before)):
        # torch's c is 1 through the overflowed reciprocal: the gradient is left as it is.
        if N > max_norm * (1 + gamma(numel + 2, torch.float64)):
            raise ClaimViolation("G2", f"{ctx}: torch's total norm {total:.6g} (exact {N:.6g}) is above max_norm, "
                                       f"but 1/(N + 1e-6) = {1 / d:.6g} overflows {str(dtype)[6:]} (largest finite "
                                       f"{largest_finite(dtype):.6g}): the reciprocal is inf, the coefficient "
                                       f"min(1, inf · max_norm) = 1, and the gradient is not clipped: its norm stays "
                                       f"{N:.6g}, {N / max_norm:.6g} times max_norm",
                                 figures={"case": "coefficient overflow", "max_norm": max_norm, "exact_norm": N,
                                          "total_norm": total, "norm_after_over_max_norm": N / max_norm})
        return {"norm_after_over_max_norm": N / max_norm, "worst_error_over_allowed": 0.0,
                "max_one_minus_cosine": 0.0, "shrunk_although_within_max_norm": 0.0}
    expected = [c * b for b in before]
    # One more rounding of g·c per element (the product of two dtype values is exact in float32, then rounded:
    # u_op covers it), and η/2 when it lands below the normal range.
    # The float64 reference c·g is itself rounded: N_t + 1e-6, the division and the product.
    U64 = unit_roundoff(torch.float64)
    ref_rel = 3 * U64 * (1 + 4 * U64)
    rho_el = _grown(rho_c, u_op)
    allowed = [b.abs() * (c * (rho_el + ref_rel) + c_abs * (1 + u_op)) + eta / 2 for b in before]
    worst = 0.0
    for j, (a, e, al) in enumerate(zip(after, expected, allowed)):
        worst = max(worst, assert_within("G2", f"clipped gradient {j} vs c·g (c = {c:.6g})", a, e, al, context=ctx,
                                         why="one scalar c for all gradients, c = min(1, max_norm/(N_t + 1e-6)) from "
                                             "torch's total N_t: relative error of c from its roundings (absolute "
                                             "below the normal range), then one rounding per element; plus the "
                                             "float64 reference's own rounding"))
    N_after = exact_norm(after)
    # c N <= max_norm q, q = max(1, (N_t + ΔN)/(N_t + 1e-6)) with |N - N_t| <= ΔN (checked above): for c < 1,
    # c N = max_norm N/(N_t + 1e-6); for c = 1, max_norm >= N_t + 1e-6 and N <= N_t + ΔN.
    q = max(1.0, (total + dN + dN64) / d)
    bound = ((max_norm * q * (1 + rho_el) + N * c_abs * (1 + 2 * u_op)) + math.sqrt(numel) * eta / 2) * (
        1 + gamma(numel + 2, torch.float64))
    tight = assert_bound("G2", "total norm after clipping", N_after, bound, context=ctx,
                         why="c N <= max_norm (up to the norm's error), plus c's relative error (and absolute, "
                             "below the normal range), one rounding per element and underflow")
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


def _grown(*rels: float) -> float:
    """Π(1 + r) - 1 for relative errors r, without losing a small r to rounding (1 + 2^-53 is 1 in float64)."""
    out = 0.0
    for r in rels:
        out = out + r + out * r
    return out


# --- the record's checks ----------------------------------------------------------------------

def _overflowed(exc) -> bool:
    """A finite gradient whose norm overflows is zeroed by clip_grad_norm_: the note's 'clipping bounds
    the gradient' fails there (a counterexample, not a failure of the code under test)."""
    return getattr(exc, "figures", {}).get("case") == "norm overflow"


def _not_clipped(exc) -> bool:
    """float16: 1/(N + 1e-6) overflows for a norm below about 1.4e-5, the coefficient is 1 and a gradient above
    max_norm is left as it is: the note's 'clipping bounds the gradient' fails there (torch's, not the cell's)."""
    return getattr(exc, "figures", {}).get("case") == "coefficient overflow"


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


# G1's stored example (reference/exploding_construction.py), rounded to the case's dtype (exact_problem: its
# weights are exact in every dtype, its inputs round; the state stays at the fixed point h = c = 0, so the
# construction explodes in every dtype at about the same rate, ≈ 1.56 per step). Where torch's total norm of
# its dL/dθ overflows (norm_overflow_threshold): float32 and bfloat16 from 2^64, float16 from 65520, float64
# from 2^512. Measured on torch.nn.LSTMCell (CPU, torch 2.13), the first T whose total norm is inf:
# T = 98 in float32 and bfloat16 (exact norm ≈ 2.9e19), T = 23 in float16 (≈ 9.6e4, largest element
# ≈ 4.4e4: still finite), and from T = 24 on float16's gradient itself overflows (elements inf): float16's
# window in which clip_grad_norm_ zeroes a finite gradient is one step wide. The steps below sit inside each
# window, checked by every run (the overflowing check asserts both ends); the threshold is measured again
# by bisection in every run and reported per dtype (figures overflow_threshold_T_<dtype>).
OVERFLOW_STEPS = {torch.float64: 840, torch.float32: 112, torch.bfloat16: 112, torch.float16: 23}


def norm_overflow_threshold(dtype) -> float:
    """The exact norm from which torch's total norm of `dtype` gradients is inf (up to the norm's rounding).

    The squares accumulate in float32 for bfloat16 and float16 (in the dtype otherwise): their sum overflows
    from 2^(emax + 1), a norm of 2^((emax + 1)/2) (2^64 in float32, 2^512 in float64). The norm is then
    rounded to the dtype, which overflows from finfo.max + half an ulp = (2 - 2^-p) 2^emax (float16: 65520).
    """
    acc = ACCUMULATION_DTYPE if is_low_precision(dtype) else dtype
    emax_acc = math.frexp(largest_finite(acc))[1] - 1
    emax = math.frexp(largest_finite(dtype))[1] - 1
    p = round(-math.log2(unit_roundoff(dtype)))
    # finfo.max + 2^(emax - p), in Python floats: inf for float64 (its own max + half an ulp), exact otherwise.
    return min(2.0 ** ((emax_acc + 1) / 2), largest_finite(dtype) + math.ldexp(1.0, emax - p))


def _G1_gradient(ctx, steps):
    """The cell, with .grad on its parameters: backward of L = Σ c_T on G1's example made exact in the dtype.

    The module is the implementation's cached one for the dtype: the next call overwrites its parameters and .grad.
    """
    seq = LP.exact_problem(fixed_point_example(steps), ctx.dtype)
    cell = parameter_gradient(ctx.cut, seq, ctx.device, ctx.dtype)
    return cell, [p.grad for p in cell.parameters() if p.grad is not None]


def _total_norm_is_inf(ctx, steps) -> bool:
    cell, grads = _G1_gradient(ctx, steps)
    return not math.isfinite(float(torch.nn.utils.clip_grad_norm_(list(cell.parameters()), 1.0)))


def _overflow_threshold(ctx, lo: int, hi: int) -> dict:
    """The first T at which torch's total norm of G1's gradient is inf, by bisection between lo (finite) and hi
    (inf), with the exact norms on either side of it, under names that carry the dtype."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _total_norm_is_inf(ctx, mid) else (mid, hi)
    name = str(ctx.dtype)[6:]
    as64 = lambda gs: [g.to("cpu", torch.float64).clone() for g in gs]  # noqa: E731  (copies: the module is reused)
    below = as64(_G1_gradient(ctx, lo)[1])
    cell, at = _G1_gradient(ctx, hi)
    before = as64(at)
    torch.nn.utils.clip_grad_norm_(list(cell.parameters()), 1.0)  # what clip_grad_norm_ does there
    after = as64(g for g in at)
    nonzero = sum(int((b != 0).sum()) for b in before)
    figures = {f"overflow_threshold_T_{name}": float(hi), f"exact_norm_at_threshold_{name}": exact_norm(before),
               f"exact_norm_before_threshold_{name}": exact_norm(below),
               f"largest_element_at_threshold_{name}": max(float(b.abs().max()) for b in before),
               f"norm_overflow_threshold_{name}": norm_overflow_threshold(ctx.dtype),
               f"norm_after_clipping_at_threshold_{name}": exact_norm(after),
               f"fraction_zeroed_at_threshold_{name}": sum(int(((b != 0) & (a == 0)).sum())
                                                            for b, a in zip(before, after)) / max(nonzero, 1)}
    # Where the gradient itself overflows, if within a few steps (float16: the next one; float32 and bfloat16
    # hold it to T ≈ 190, not searched: runs that long cost more than the ci budget allows for a figure).
    for T in range(hi + 1, min(hi + 5, FIXED_POINT_STEPS + 1)):
        if not all(bool(torch.isfinite(g).all()) for g in _G1_gradient(ctx, T)[1]):
            figures[f"gradient_overflow_T_{name}"] = float(T)
            break
    return figures


def _clip_exploding(regime: str):
    def run(ctx):
        steps = OVERFLOW_STEPS[ctx.dtype] if regime == "overflowing" else int(regime)
        if regime == "overflowing" and ctx.dtype != torch.float64:
            # First (the implementation's module is cached per dtype: every run below reuses it and its .grad).
            # float64's threshold lies near T = 800: ten runs of that length, more than the ci budget allows.
            ctx.figures(**_overflow_threshold(ctx, 16, steps))
        cell, grads = _G1_gradient(ctx, steps)
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            raise ClaimViolation("G2", f"{ctx.where}: G1's gradient at T = {steps} is not finite (the cell's backward "
                                       f"returned inf or NaN; every element of a correct cell's gradient at this T is "
                                       f"finite in the dtype: measured, OVERFLOW_STEPS)")
        if regime == "overflowing":
            threshold = norm_overflow_threshold(ctx.dtype)
            norm = exact_norm([g.to("cpu", torch.float64) for g in grads])
            # Certainly inf in torch: the exact norm beyond the threshold by more than the norm's relative error.
            rel = reduction_gamma(max(g.numel() for g in grads) + len(grads) + 3, ctx.dtype, roundings=2)
            assert norm * (1 - rel) >= threshold, (
                f"G1's gradient at T = {steps} has norm {norm:.3g} < {threshold:.6g}: the construction no longer "
                f"reaches the regime")
        return check_clip(list(cell.parameters()), 1.0, ctx.device, ctx.dtype)
    return run


CLAIM.define_checks(
    # In the four dtypes: float16's squares overflow from an element of 2^8 on (bfloat16: 2^64, as float32).
    # In float16, a gradient of norm below about 1.4e-5 is not clipped at all (coefficient overflow, measured):
    # the explicit example states it in every profile (a norm of 1e-5 against max_norm 2^-20; float64, float32
    # and bfloat16 clip it).
    Check("clipping-bounds-finite-gradients", _finite, _drawn("representable"), dtypes=LP.ALL_DTYPES,
          examples=(([torch.tensor([1e-5], dtype=torch.float64)], 2.0 ** -20),), refuted_by=_not_clipped),
    Check("non-finite-gradients-are-reported", _non_finite, _drawn("non-finite"), dtypes=LP.ALL_DTYPES),
    # Finite gradients with an element >= 2^64 (float32) / 2^512 (float64): their squares overflow.
    Check("finite-gradients-whose-squares-overflow", _finite, _drawn("overflowing"), refuted_by=_overflowed,
          dtypes=LP.ALL_DTYPES),
    Check("clip-G1-gradient-T16", _clip_exploding("16"), through_impl=True, refuted_by=_overflowed,
          dtypes=LP.ALL_DTYPES),
    Check("clip-G1-gradient-T64", _clip_exploding("64"), through_impl=True, refuted_by=_overflowed,
          dtypes=LP.ALL_DTYPES[:3],
          dtypes_why_not="float16 left out: G1's gradient at T = 64 has elements of about 4e12 (norm 8.7e12, measured "
                         "in float32 and bfloat16), beyond float16's largest finite value 65504; a correct cell's "
                         "float16 backward returns inf from T = 24 on (measured, torch.nn.LSTMCell), so there is no "
                         "finite gradient to clip. float16 runs T = 16 and its own overflowing case (T = 23)"),
    Check("clip-G1-gradient-overflowing", _clip_exploding("overflowing"), through_impl=True, refuted_by=_overflowed,
          not_in_catalogue="840 steps in float64; a refutation about torch's clip_grad_norm_, not the cell",
          dtypes=LP.ALL_DTYPES),
)
