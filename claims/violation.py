"""How a claim check fails: one ClaimViolation naming the claim, the quantity and the bound.

The message reads like a lab-notebook line (STYLE.md): claim ID, device and dtype, the
quantity, how many elements exceed the allowed error, the worst one with its index, the
measured and expected values and the allowance, and why the allowance is what it is.
"""
from __future__ import annotations

import torch


class ClaimViolation(AssertionError):
    """A check of claim `claim_id` did not hold."""

    def __init__(self, claim_id: str, message: str, figures: dict | None = None):
        self.claim_id = claim_id
        self.figures = figures or {}
        super().__init__(f"[{claim_id}] {message}")


def where(device, dtype) -> str:
    return f"{torch.device(device).type} {str(dtype).replace('torch.', '')}"


def assert_within(claim_id: str, what: str, measured: torch.Tensor, expected: torch.Tensor,
                  allowed: torch.Tensor, *, context: str, why: str) -> float:
    """Elementwise |measured - expected| <= allowed, else a ClaimViolation; returns the worst ratio.

    measured is converted to float64 before comparing; NaN or inf in it is a violation.
    """
    __tracebackhide__ = True
    measured = measured.detach().to(torch.float64).cpu()
    expected, allowed = expected.to(torch.float64).cpu(), allowed.to(torch.float64).cpu()
    if measured.shape != expected.shape:
        raise ClaimViolation(claim_id, f"{context}: {what} has shape {tuple(measured.shape)}, "
                                       f"expected {tuple(expected.shape)}")
    if not torch.isfinite(measured).all():
        bad = (~torch.isfinite(measured)).nonzero()[0].tolist()
        raise ClaimViolation(claim_id, f"{context}: {what} is not finite at index {tuple(bad)} "
                                       f"(value {measured[tuple(bad)].item()}, expected {expected[tuple(bad)].item():.6g})")
    diff = (measured - expected).abs()
    excess = diff > allowed
    ratio = (diff / allowed.clamp_min(torch.finfo(torch.float64).tiny))
    worst = float(ratio.max()) if ratio.numel() else 0.0
    if excess.any():
        idx = tuple(torch.nonzero(ratio == ratio.max())[0].tolist())
        raise ClaimViolation(
            claim_id,
            f"{context}: {what} differs from the reference. Mismatched elements: "
            f"{int(excess.sum())} / {excess.numel()}. Worst at index {idx}: measured {measured[idx].item():.10g}, "
            f"reference {expected[idx].item():.10g}, |difference| {diff[idx].item():.3g} > allowed "
            f"{allowed[idx].item():.3g} ({why}).",
            figures={"worst_ratio": worst, "mismatched": int(excess.sum())})
    return worst


def assert_bound(claim_id: str, what: str, value: float, bound: float, *, context: str, why: str) -> float:
    """value <= bound, else a ClaimViolation; returns value / bound (the tightness)."""
    __tracebackhide__ = True
    if not (value <= bound):  # also catches NaN
        raise ClaimViolation(claim_id, f"{context}: {what} = {value:.10g} exceeds its bound {bound:.10g} ({why}).",
                             figures={"value": value, "bound": bound})
    return value / bound if bound > 0 else 0.0
