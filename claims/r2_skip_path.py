"""R2 — no vanishing through the skip path.

Note: "In both cases the Jacobian has the form I + something, ensuring a direct path for
gradients." Precisely (CLAIMS.md R2), for a stack x_l = x_(l-1) + F_l(x_(l-1)) with block
Jacobians A_l = J_(F_l)(x_(l-1)) and ||A_l|| < 1:

    σ_min(Π_l (I + A_l)) >= Π_l (1 - ||A_l||)                 (Weyl: σ_min(I + A) >= 1 - ||A||;
                                                               σ_min(XY) >= σ_min(X) σ_min(Y))
    ||Π_l (I + A_l) - I|| <= Π_l (1 + ||A_l||) - 1 <= exp(Σ_l ||A_l||) - 1
                                                              (the expansion of L7 with D = I, and 1 + ε <= e^ε,
                                                               both proved in SymPy)

on every example, while the same blocks without skips give Π_l A_l, of norm <= Π ||A_l||: it
vanishes geometrically. Checked on stacks run in the dtype under test: block Jacobians by
torch.func (jacrev under vmap) at the activations the stack computed, checked against their
closed form; the stack's own autograd Jacobian (one backward pass for all rows) against the
float64 product Π (I + A_l) along the same activations; then both bounds, and the plain
stack's norm beside σ_min.
"""
from __future__ import annotations

import math

import torch
from torch.func import jacrev, vmap

from lstm_claims.claims.long_range_tolerances import product_bound
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check, drawn_from, minimum
from hypothesis import target
from lstm_claims.strategies.residual_stacks import residual_stacks
from lstm_claims.claims.residual_tolerances import branch_jacobian_error
from lstm_claims.claims.tolerances import U64, exp_of_sum_error, frobenius, gamma, smallest_subnormal, svd_bound, unit_roundoff
from lstm_claims.claims.violation import ClaimViolation, assert_within, where
from lstm_claims.reference import symbolic_long_range
from lstm_claims.reference.jacobian_chain import ordered_product_chain
from lstm_claims.reference.residual import block_branch, branch_jacobian, residual_block

CLAIM = register(Claim(
    id="R2",
    title="no vanishing through the skip path",
    statement="The additive identity path — Jacobian I + something — ensures a direct path for gradients "
              "(residual connections solve the depth-direction analog of vanishing gradients).",
    condition="||A_l|| < 1 for every block (A_l the branch Jacobian at the block's input)",
    quantity="σ_min(Π(I + A_l)) >= Π(1 - ||A_l||) and ||Π(I + A_l) - I|| <= exp(Σ||A_l||) - 1 on every example, "
             "within float64 rounding; the stack's autograd Jacobian vs the product (derived bound); ||Π A_l|| "
             "of the plain stack beside σ_min",
    unconditional=False,  # the condition is part of the statement: `holds-under-condition`
))


def _vjp_error(block, x, v_abs, dtype) -> torch.Tensor:
    """Bound on |computed vᵀ (I + J_F(x)) - exact| for one block's backward in `dtype`, rows of x (R, n).

    vᵀ J_F = ((vᵀ W2) ⊙ (1 - y²)) W1: the errors of 1 - y² (as in branch_jacobian_error) times
    |v|ᵀ|W2| and |W1|; the two reductions (n then k terms) γ_(n+k+2) of the magnitudes; the sum
    with the skip path's v rounds once.
    """
    u, eta = unit_roundoff(dtype), smallest_subnormal(dtype)
    k, n = block.w1.shape
    E = branch_jacobian_error(block, x, dtype)  # (R, n, n): entries of J_F
    JF = branch_jacobian(block, x).abs()
    err = (v_abs.unsqueeze(1) @ (E + gamma(n + k + 2, dtype) * JF)).squeeze(1)
    return err + u * (v_abs + (v_abs.unsqueeze(1) @ JF).squeeze(1)) + (n + k + 3) * eta


def check(stack, device, dtype, *, autograd_depth: int = 8) -> dict:
    __tracebackhide__ = True
    s = stack
    L, n, B = s.depth, s.width, s.batch
    ctx = f"{where(device, dtype)}, residual stack L={L} n={n} B={B} ρ={s.drawn.get('contraction')}"
    blocks = [b.to(dtype=dtype, device=device) for b in s.blocks]
    # The stack, each example repeated n times (copy k seeded with e_k), activations kept.
    seeds = torch.eye(n, dtype=torch.float64).repeat(B, 1)
    x0 = s.x0.repeat_interleave(n, 0).to(device=device, dtype=dtype)
    with_grad = L <= autograd_depth
    if with_grad:
        x0.requires_grad_(True)
    xs = [x0]
    with torch.set_grad_enabled(with_grad):
        for b in blocks:
            xs.append(residual_block(b, xs[-1]))
    J_stack = None
    if with_grad:
        (g,) = torch.autograd.grad(xs[-1], x0, seeds.to(device=device, dtype=dtype))
        J_stack = g.detach().to("cpu", torch.float64).view(B, n, n)
    acts = [x.detach().to("cpu", torch.float64) for x in xs]  # (R, n) each
    # Block Jacobians by torch.func at the stack's own activations (copy 0 of each example).
    A = []
    worst = 0.0
    for l, (b64, bd) in enumerate(zip(s.blocks, blocks)):
        x_in = acts[l][::n]
        J = vmap(jacrev(lambda v: block_branch(bd, v)))(x_in.to(device=device, dtype=dtype)).detach().to("cpu",
                                                                                                        torch.float64)
        tol = branch_jacobian_error(b64, x_in, dtype) + branch_jacobian_error(b64, x_in, torch.float64)
        worst = max(worst, assert_within("R2", f"A_{l + 1} by torch.func vs its closed form", J,
                                         branch_jacobian(b64, x_in), tol, context=ctx,
                                         why="rounding bound of the branch's backward"))
        A.append(J)
    A = torch.stack(A)  # (L, B, n, n)
    if with_grad:
        # Reference rows of Π(I + A_l) along the stack's activations, float64, and the accumulated bound.
        v, err = seeds, torch.zeros_like(seeds)
        for l in range(L - 1, -1, -1):
            x_in = acts[l]
            M = torch.eye(n, dtype=torch.float64) + branch_jacobian(s.blocks[l], x_in)
            va = v.abs() + err
            loc = _vjp_error(s.blocks[l], x_in, va, dtype) + _vjp_error(s.blocks[l], x_in, va, torch.float64)
            err = (err.unsqueeze(1) @ M.abs()).squeeze(1) + loc
            v = (v.unsqueeze(1) @ M).squeeze(1)
        worst = max(worst, assert_within("R2", "the stack's autograd Jacobian vs Π (I + A_l)", J_stack, v.view(B, n, n),
                                         err.view(B, n, n), context=ctx,
                                         why="one-block backward bounds accumulated through |I + A_l|ᵀ"))
    # The bounds, on the matrices A_l as computed (a theorem for any matrices with ||A_l|| < 1).
    eye = torch.eye(n, dtype=torch.float64)
    eps = torch.linalg.matrix_norm(A, ord=2)  # (L, B)
    eps_up = eps + 2 * svd_bound(eps, n)
    P = ordered_product_chain(eye + A)
    P_abs = ordered_product_chain((eye + A).abs())
    Q = ordered_product_chain(A)
    figures = {"worst_error_over_allowed": worst, "depth": L, "max_eps": eps.max().item()}
    ratios_low, ratios_up, plain, smin_all = [], [], [], []
    for b in range(B):
        if (eps_up[:, b] >= 1).any():
            raise ClaimViolation("R2", f"{ctx}, example {b}: a block has ||A_l|| = {eps[:, b].max().item():.6g} >= 1; "
                                       f"the strategy guarantees ||W2|| ||W1|| < 1 (the kit is wrong)")
        perr = frobenius(product_bound(P_abs[b], L, n)).item()
        sv = torch.linalg.svdvals(P[b])
        smin, smax = sv[-1].item(), sv[0].item()
        smin_err = perr + svd_bound(smax, n)
        # Π(1 - ε) at ε raised by its SVD error, evaluated in float64 in log space (exp_of_sum_error).
        logs_low = torch.log1p(-eps_up[:, b])
        lower = math.exp(logs_low.sum().item()) / (1 + exp_of_sum_error(logs_low))
        if smin + smin_err < lower:
            raise ClaimViolation("R2", f"{ctx}, example {b}: σ_min(Π(I + A_l)) = {smin:.10g} < Π(1 - ||A_l||) = "
                                       f"{lower:.10g} (beyond rounding {smin_err:.3g}): Weyl's bound fails?")
        dist = torch.linalg.matrix_norm(P[b] - eye, ord=2).item()
        dist_err = perr + U64 * frobenius(P[b]).item() + svd_bound(dist + 1, n)
        sum_eps = eps_up[:, b].sum().item()
        logs_up = torch.log1p(eps_up[:, b])
        upper_prod = math.expm1(logs_up.sum().item())
        upper_exp = math.expm1(sum_eps)
        # Both in log space (expm1 of a sum); Σ ε summed like the logs, so one bound serves both.
        slack = (exp_of_sum_error(eps_up[:, b]) + exp_of_sum_error(logs_up) + gamma(2 * L + 2, torch.float64)) * (
            upper_exp + 1)
        if dist - dist_err > upper_prod + slack or upper_prod > upper_exp + slack:
            raise ClaimViolation("R2", f"{ctx}, example {b}: ||Π(I + A_l) - I|| = {dist:.10g}, Π(1 + ||A_l||) - 1 = "
                                       f"{upper_prod:.10g}, exp(Σ||A_l||) - 1 = {upper_exp:.10g}: not in this order")
        q = torch.linalg.matrix_norm(Q[b], ord=2).item()
        logs_q = torch.log(eps_up[:, b])
        q_bound = math.exp(logs_q.sum().item()) if (eps_up[:, b] > 0).all() else 0.0
        q_err = frobenius(product_bound(ordered_product_chain(A[:, b].abs()), L, n)).item() + svd_bound(q, n)
        if q - q_err > q_bound * (1 + (exp_of_sum_error(logs_q) if q_bound > 0 else 0.0)):
            raise ClaimViolation("R2", f"{ctx}, example {b}: the plain stack's ||Π A_l|| = {q:.10g} exceeds "
                                       f"Π||A_l|| = {q_bound:.10g} beyond the rounding of both")
        ratios_low.append(smin / lower if lower > 0 else math.inf)
        ratios_up.append(dist / upper_exp if upper_exp > 0 else 0.0)
        plain.append(q)
        smin_all.append(smin)
    figures.update({"min_sigma_min_over_lower_bound": min(ratios_low), "max_distance_over_exp_bound": max(ratios_up),
                    "min_sigma_min_residual": min(smin_all), "max_norm_plain_stack": max(plain),
                    "min_log10_gap_residual_vs_plain": min(math.log10(sm / max(pq, 1e-300))
                                                           for sm, pq in zip(smin_all, plain))})
    return figures


def proofs() -> list[dict]:
    return [symbolic_long_range.prove_telescoping_expansion(3), symbolic_long_range.prove_exp_bound()]


# --- the record's checks ----------------------------------------------------------------------

def _bounds(ctx, stack):
    figures = check(stack, ctx.device, ctx.dtype)
    target(figures["max_distance_over_exp_bound"], label="||Π(I+A) - I|| / (exp(Σ||A||) - 1)")
    target(-figures["min_sigma_min_over_lower_bound"], label="-σ_min / Π(1 - ||A||)")
    return figures


def _symbolic(ctx):
    ctx.figures(symbolic=[p["identity"] for p in proofs()])


CLAIM.define_checks(
    Check("skip-path-bounds", _bounds, drawn_from(residual_stacks(max_depth=32)),
          aggregate=minimum("min_sigma_min_over_lower_bound", "min_sigma_min_residual",
                            "min_log10_gap_residual_vs_plain")),
    Check("symbolic", _symbolic, dtypes=(), devices=()),
)
