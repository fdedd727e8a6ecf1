"""Running the cell under test over a whole sequence, and differentiating the unrolled network.

The long-range claims (L6-L9) measure the cell's own forward and backward through T steps
(`cut.with_params`, then `cut.step` T times), on the device and dtype under test, returned
as float64 on the CPU, together with the trajectory the cell computed (the closed forms
are evaluated along it: claims/long_range_tolerances.py explains why).

Jacobians are batched instead of computed one row per backward pass: each example is
repeated n times along the batch, copy k is seeded with e_k, and one backward pass gives
all n rows of every example (rows of a batch never mix in a correct cell; a cell that
mixes them gets wrong rows, which the checks catch).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from claims.cell_under_test import CellUnderTest
from reference.lstm_step import LSTMParams


@dataclass(frozen=True)
class UnrolledJacobian:
    """dc_T/dc_0 of the unrolled cell and the trajectory it was taken along (all float64, CPU)."""

    J: torch.Tensor  # (B, n, n)
    xs: torch.Tensor  # (T, R, m), R = B n: the inputs, each example repeated n times
    hs: torch.Tensor  # (T + 1, R, n): h_0..h_T as the cell computed them
    cs: torch.Tensor  # (T + 1, R, n)
    seeds: torch.Tensor  # (R, n): e_k for copy k of each example


def _dev(t, device, dtype):
    return t.to(device=device, dtype=dtype)


def unrolled_c_jacobian(cut: CellUnderTest, params: LSTMParams, xs, h0, c0, device, dtype) -> UnrolledJacobian:
    """dc_T/dc_0 by the cell's autograd through T steps, h_0 and the inputs held fixed."""
    T, B, _ = xs.shape
    n = params.hidden_size
    cell = cut.with_params(params, device, dtype)
    xs_r, h0_r, c0_r = xs.repeat_interleave(n, dim=1), h0.repeat_interleave(n, dim=0), c0.repeat_interleave(n, dim=0)
    seeds = torch.eye(n, dtype=torch.float64).repeat(B, 1)
    c0_leaf = _dev(c0_r, device, dtype).requires_grad_(True)
    h, c = _dev(h0_r, device, dtype), c0_leaf
    x_dev = _dev(xs_r, device, dtype)
    hs, cs = [h.detach()], [c.detach()]
    for t in range(T):
        h, c = cut.step(cell, x_dev[t], h, c)
        hs.append(h.detach())
        cs.append(c.detach())
    if c.requires_grad:
        (g,) = torch.autograd.grad(c, c0_leaf, _dev(seeds, device, dtype), allow_unused=True)
    else:
        g = None
    g = torch.zeros_like(c0_leaf) if g is None else g
    cpu = lambda t: t.to("cpu", torch.float64)  # noqa: E731
    return UnrolledJacobian(cpu(g.detach()).view(B, n, n), xs_r, cpu(torch.stack(hs)), cpu(torch.stack(cs)), seeds)


def trajectory(cut: CellUnderTest, params: LSTMParams, xs, h0, c0, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(hs, cs), each (T + 1, B, n) float64: h_0..h_T, c_0..c_T as the cell computes them."""
    cell = cut.with_params(params, device, dtype)
    with torch.no_grad():
        h, c = _dev(h0, device, dtype), _dev(c0, device, dtype)
        x_dev = _dev(xs, device, dtype)
        hs, cs = [h], [c]
        for t in range(xs.shape[0]):
            h, c = cut.step(cell, x_dev[t], h, c)
            hs.append(h)
            cs.append(c)
    return torch.stack(hs).to("cpu", torch.float64), torch.stack(cs).to("cpu", torch.float64)


def forget_gates(cut: CellUnderTest, params: LSTMParams, x, h, device, dtype) -> torch.Tensor:
    """The cell's forget gate f for each row of (x (N, m), h (N, n)), float64 (N, n).

    L1 (checked in its own right) makes ∂c_t/∂c_{t-1} with h fixed equal to diag(f_t): one
    backward pass with v_c = 1, v_h = 0 returns f. The c fed in is 0 (f does not depend on c).
    """
    cell = cut.with_params(params, device, dtype)
    c = torch.zeros(h.shape, device=device, dtype=dtype, requires_grad=True)
    _, c_next = cut.step(cell, _dev(x, device, dtype), _dev(h, device, dtype), c)
    if not c_next.requires_grad:
        return torch.zeros(h.shape, dtype=torch.float64)
    (g,) = torch.autograd.grad(c_next, c, torch.ones_like(c_next), allow_unused=True)
    return torch.zeros(h.shape, dtype=torch.float64) if g is None else g.detach().to("cpu", torch.float64)
