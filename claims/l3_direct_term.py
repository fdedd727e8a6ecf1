"""L3 — the direct term is near the identity when f ≈ 1.

Note: "When forget gates are near 1: the direct term is diag(f_t) ≈ I." Precisely:
||diag(f_t) - I||_2 = max_k (1 - f_{t,k}) for f in (0, 1], so it is at most δ iff
min_k f_{t,k} >= 1 - δ. Checked on the cell's own direct term (its ∂c_t/∂c_{t-1} with
h_{t-1} fixed, which L1 shows is diag(f_t)).
"""
from __future__ import annotations

import torch

from lstm_claims.claims import through_cell
from lstm_claims.claims.l1_gates_blind_to_c import direct_term_tolerance
from lstm_claims.claims.low_precision import ALL_DTYPES, on_impl_exact
from lstm_claims.strategies.kernel_problems import JACOBIAN_KERNEL_EXAMPLES
from lstm_claims.strategies.exact import per_dtype
from lstm_claims.claims.registry import Claim, register
from lstm_claims.claims.record import Check, minimum
from lstm_claims.claims.l1_gates_blind_to_c import JACOBIAN_PROBLEMS
from lstm_claims.claims.tolerances import svd_bound
from lstm_claims.claims.violation import ClaimViolation, assert_bound, where
from lstm_claims.reference.cell_state_jacobians import spectral_norm

CLAIM = register(Claim(
    id="L3",
    title="the direct term is near I when f ≈ 1",
    statement="When forget gates are near 1, the direct term is diag(f_t) ≈ I.",
    condition="f_t in (0, 1]; 'near' quantified: ||diag(f_t) - I|| <= δ iff min_k f_t,k >= 1 - δ",
    quantity="the spectral norm of (the cell's direct term - I) against max_k (1 - f_k), and the iff for "
             "δ in 2^-1 .. 2^-30",
    unconditional=False,  # the condition is part of the statement: `holds-under-condition`
))

DELTAS = tuple(2.0 ** -k for k in (1, 2, 4, 8, 12, 16, 20, 24, 30))


def check(cut, problem, device, dtype) -> dict:
    __tracebackhide__ = True
    p = problem
    ctx = f"{where(device, dtype)}, B={p.batch} n={p.hidden_size}"
    D = through_cell.c_jacobian(cut, p, device, dtype, through_h=False)
    f = torch.diagonal(D, dim1=1, dim2=2)
    tol_f = direct_term_tolerance(p, dtype)
    if ((f <= -tol_f) | (f > 1 + tol_f)).any():
        raise ClaimViolation("L3", f"{ctx}: the direct term has a diagonal entry outside (0, 1] "
                                   f"(min {f.min().item():.6g}, max {f.max().item():.6g}); a forget gate is a σ")
    eye = torch.eye(p.hidden_size, dtype=torch.float64)
    dist = spectral_norm(D - eye)  # (B,)
    gap = (1 - f).abs().amax(dim=1)
    # Both sides come from the same float64 matrix; the SVD of an n x n matrix is backward
    # stable (claims.tolerances.svd_bound: 4 n u ||A||), and ||D - I|| <= max(1 - f) + 1 <= gap + 1.
    svd_tol = svd_bound(gap + 1, p.hidden_size)
    for b in range(p.batch):
        assert_bound("L3", f"| ||D - I|| - max_k(1 - f_k) | (example {b})", abs(dist[b] - gap[b]).item(),
                     svd_tol[b].item(), context=ctx, why="SVD rounding of an n x n float64 matrix")
        for delta in DELTAS:
            if abs(gap[b].item() - delta) <= 2 * svd_tol[b].item():
                continue  # δ on the boundary within rounding: the iff is not decidable there
            near = dist[b].item() <= delta
            gates = f[b].min().item() >= 1 - delta
            if near != gates:
                raise ClaimViolation("L3", f"{ctx}: ||D - I|| = {dist[b].item():.6g} <= δ = {delta:g} is {near} but "
                                           f"min f = {f[b].min().item():.10g} >= 1 - δ is {gates}")
    return {"max_distance_from_I": dist.max().item(), "min_distance_from_I": dist.min().item()}


# --- the record's checks ----------------------------------------------------------------------

CLAIM.define_checks(
    Check("distance-from-identity", on_impl_exact(check), per_dtype(JACOBIAN_PROBLEMS), dtypes=ALL_DTYPES,
          through_impl=True, examples=JACOBIAN_KERNEL_EXAMPLES,
          aggregate=minimum("min_distance_from_I")),
)
