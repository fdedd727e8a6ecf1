"""The gate-free cell-state recurrence, as a loop and as a parallel scan (CLAIMS.md G4).

When the gates do not depend on h, the cell-state update c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
is an affine map of c_{t-1} with coefficients fixed in advance:

    c_t = a_t ⊙ c_{t-1} + b_t        (elementwise; a_t = f_t, b_t = i_t ⊙ g_t)

Affine maps compose associatively, (a2, b2) ∘ (a1, b1) = (a2 ⊙ a1, a2 ⊙ b1 + b2), so every
c_t can be computed by a parallel scan in O(log T) depth instead of T sequential steps,
and it is the same c_t as the loop up to rounding. That is the half of G4 this module
encodes; the other half (with h-dependent gates no such scan applies) is not a property
of code and is shown by the benchmarks and the claim suite, not here.

The scan is *blocked* (reduce-then-scan, Blelloch's work-efficient scheme with sequential
leaves): the T steps are cut into blocks of `block` steps; one pass composes each block's
maps into one affine map (all blocks at once, `block` batched ops), the carries between
blocks are the same recurrence on T/block steps (solved recursively), and a second pass
re-runs each block from its carry-in. Depth is about 2·block·log_block(T) batched ops,
O(log T) for a fixed block; work is O(T). Only products and sums of the inputs are
formed, never quotients: a naive scan that divides cumulative products out
(c_t = P_t (c_0 + Σ_s b_s / P_s), P_t = Π_{r<=t} a_r) turns into 0/0 or inf as soon as
some a_t is 0 or a product underflows; here an underflowing product is just 0 (or
subnormal), which is the honest value of that coefficient, and no NaN or inf appears.

Both functions accept a and b of shape (T, ...) and c0 of shape (...), float32 or float64
(any floating dtype), on any device (CPU or CUDA), and return all c_t, shape (T, ...).
"""
from __future__ import annotations

import torch

__all__ = ["linear_recurrence_loop", "linear_recurrence_scan", "default_block"]


def _all_finite(t: torch.Tensor) -> bool:
    # A float sum is finite only if every term is (NaN and inf propagate through +), so a
    # finite sum proves the tensor finite at the cost of one reduction; only when the sum is
    # not finite (a bad value, or an overflowing sum of finite values) is the exact
    # elementwise test run. torch.isfinite(t).all() alone costs ~50x the sum on large CPU inputs.
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def _check_inputs(a, b, c0, *, who: str) -> None:
    """One clear ValueError naming the argument for wrong types, shapes, dtypes, devices, NaN/inf."""
    for name, t in (("a", a), ("b", b), ("c0", c0)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{who}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{who}: {name} must be floating point, got {t.dtype}")
    if a.dim() < 1:
        raise ValueError(f"{who}: a must have shape (T, ...), got a 0-d tensor")
    if b.shape != a.shape:
        raise ValueError(f"{who}: b must have the shape of a {tuple(a.shape)}, got {tuple(b.shape)}")
    if c0.shape != a.shape[1:]:
        raise ValueError(f"{who}: c0 must have shape a.shape[1:] = {tuple(a.shape[1:])}, got {tuple(c0.shape)}")
    if not (a.dtype == b.dtype == c0.dtype):
        raise ValueError(f"{who}: a, b, c0 must share one dtype, got {a.dtype}, {b.dtype}, {c0.dtype}")
    if not (a.device == b.device == c0.device):
        raise ValueError(f"{who}: a, b, c0 must be on one device, got {a.device}, {b.device}, {c0.device}")
    for name, t in (("a", a), ("b", b), ("c0", c0)):
        if not _all_finite(t):
            raise ValueError(f"{who}: {name} contains NaN or inf")


def linear_recurrence_loop(a: torch.Tensor, b: torch.Tensor, c0: torch.Tensor) -> torch.Tensor:
    """The reference: c_t = a_t ⊙ c_{t-1} + b_t for t = 1..T, one step at a time.

    a, b: (T, ...); c0: (...). Returns (c_1, ..., c_T) stacked, shape (T, ...). T torch ops
    in sequence (the cost the scan removes); differentiable with autograd.
    """
    _check_inputs(a, b, c0, who="linear_recurrence_loop")
    c, out = c0, []
    for t in range(a.shape[0]):
        c = torch.addcmul(b[t], a[t], c)  # b_t + a_t ⊙ c_{t-1}
        out.append(c)
    return torch.stack(out) if out else b.new_empty(a.shape)


def default_block(T: int, width: int) -> int:
    """The block length `linear_recurrence_scan` uses when block=None.

    Small problems are bound by per-op overhead, so short blocks (fewer sequential ops, more
    recursion levels) win; large ones are bound by memory traffic, where longer blocks make
    the carry levels (each 1/block of the data) cheap. Thresholds measured on a 2-core CPU;
    any block >= 2 gives the same result up to rounding.
    """
    n = T * width
    if n < 2 ** 18:
        return 4
    if n < 2 ** 23:
        return 16
    return 32


def _sequential_into(a, b, c_prev, out) -> None:
    for t in range(a.shape[0]):
        torch.addcmul(b[t], a[t], c_prev, out=out[t])
        c_prev = out[t]


def _scan_into(a: torch.Tensor, b: torch.Tensor, c0: torch.Tensor, out: torch.Tensor, block: int) -> None:
    """Write c_1..c_T of the recurrence (a, b: (T, W); c0: (W,)) into out (T, W)."""
    T, W = a.shape
    if T < 2 * block:  # too short to be worth splitting: the loop, batched over W
        _sequential_into(a, b, c0, out)
        return
    nb = T // block
    main = nb * block
    av, bv = a[:main].view(nb, block, W), b[:main].view(nb, block, W)
    # Reduce: compose each block's maps into one, (A_k, B_k) = (a_L, b_L) ∘ ... ∘ (a_1, b_1).
    # Products only; an A_k that underflows is 0 or subnormal, its true value rounded.
    A, B = av[:, 0].clone(), bv[:, 0].clone()
    for j in range(1, block):
        B.mul_(av[:, j]).add_(bv[:, j])
        A.mul_(av[:, j])
    # The cell state at the end of each block is the same recurrence on nb steps.
    ends = torch.empty_like(B)
    _scan_into(A, B, c0, ends, block)
    # Down-sweep: re-run every block from its carry-in (c0 for the first block).
    outv = out[:main].view(nb, block, W)
    torch.addcmul(bv[0, 0], av[0, 0], c0, out=outv[0, 0])
    torch.addcmul(bv[1:, 0], av[1:, 0], ends[:-1], out=outv[1:, 0])
    for j in range(1, block):
        torch.addcmul(bv[:, j], av[:, j], outv[:, j - 1], out=outv[:, j])
    if main < T:  # the last T mod block steps, from the last block's end
        _sequential_into(a[main:], b[main:], ends[-1], out[main:])


def linear_recurrence_scan(a: torch.Tensor, b: torch.Tensor, c0: torch.Tensor, *,
                           block: int | None = None) -> torch.Tensor:
    """c_t = a_t ⊙ c_{t-1} + b_t for all t by a blocked associative scan (CLAIMS.md G4).

    The same c_t as `linear_recurrence_loop` (up to rounding: each term b_s Π a_r reaches
    c_t through at most ~3t roundings, against 2t in the loop) in O(log T) depth and O(T)
    work; see the module docstring for the scheme. a, b: (T, ...); c0: (...). block: steps
    per sequential leaf (an int >= 2; None picks `default_block`). Forward only: inputs that
    require grad are refused (the scan writes into preallocated outputs).
    """
    _check_inputs(a, b, c0, who="linear_recurrence_scan")
    if any(t.requires_grad for t in (a, b, c0)):
        raise ValueError("linear_recurrence_scan: inputs require grad, but the scan is forward-only; "
                         "use linear_recurrence_loop for gradients")
    T = a.shape[0]
    width = c0.numel()
    if block is None:
        block = default_block(T, width)
    if isinstance(block, bool) or not isinstance(block, int) or block < 2:
        raise ValueError(f"linear_recurrence_scan: block must be an int >= 2 or None, got {block!r}")
    a2, b2 = a.reshape(T, width).contiguous(), b.reshape(T, width).contiguous()
    out = torch.empty_like(b2)
    if T:
        _scan_into(a2, b2, c0.reshape(width), out, block)
    return out.reshape(a.shape)
