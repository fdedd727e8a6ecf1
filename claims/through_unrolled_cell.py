"""Running an LSTMSequence through the cell under test, step by step, and differentiating the loop.

The G-claims look at many steps at once: long-range Jacobians (G1, G3), parameter gradients
(G1, G2, G3), the dependence of h_t on x_s (G4). Here the cell under test is called once per
step, in time order, from (h_0, c_0); autograd differentiates that loop. The reference is
`reference.unrolled_backward.unrolled_vjp` evaluated on the cell's own trajectory, and the
allowed difference is carried backwards step by step from the kit's one-step bound:

    e_{t-1} = vjp_tolerance(step t, |v_t| + e_t)  +  |J_t|ᵀ e_t

— the rounding of step t's VJP (cell's and float64 reference's, claims/tolerances.py, which
is monotone in the cotangent's magnitude, so evaluating it at |v_t| + e_t covers the
cotangent the cell actually has), plus the error already in the cotangent carried through
the step (|J_t|ᵀ e_t, `step_vjp_magnitudes`). Gradients with respect to x_t and the
parameters pick up the same two terms at their step; the parameter gradients are then
summed over T steps by autograd in the cell's dtype, which adds γ_T of the sum of the
magnitudes. A cotangent injected at a step where one also arrives from later steps is
added once more: u |v| + η.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from claims.cell_under_test import PARAM_NAMES, CellUnderTest
from claims.tolerances import gamma, smallest_subnormal, unit_roundoff, vjp_tolerance
from claims.violation import assert_within
from reference.lstm_step import lstm_step_vjp
from reference.unrolled_backward import LSTMSequence, UnrolledGrads, previous_states, step_vjp_magnitudes


@dataclass(frozen=True)
class CellRun:
    """What the cell did: its trajectory (float64 copies of its dtype values) and its autograd gradients."""

    hs: torch.Tensor  # (T, B, n) h_1..h_T
    cs: torch.Tensor  # (T, B, n) c_1..c_T
    grads: UnrolledGrads | None


def _leaf(t, device, dtype):
    return t.to(device=device, dtype=dtype).detach().requires_grad_(True)


def run(cut: CellUnderTest, seq: LSTMSequence, device, dtype, *, inject: dict | None = None,
        steps: int | None = None) -> CellRun:
    """Call the cell T times from (h_0, c_0); with `inject` ({t: (v_h, v_c)}), also backpropagate.

    Without inject the forward runs under no_grad (the trajectory only). With it, the run
    stops at the last injected step and the gradients with respect to h_0, c_0, every x_t
    and the cell's four parameters come back as float64 on the CPU (zero where the cell's
    graph does not reach).
    """
    T = steps or (max(inject) if inject else seq.steps)
    cell = cut.with_params(seq.params, device, dtype)
    if inject is None:
        with torch.no_grad():
            h, c = (t.to(device=device, dtype=dtype) for t in (seq.h0, seq.c0))
            xs = seq.xs[:T].to(device=device, dtype=dtype)
            hs, cs = [], []
            for t in range(T):
                h, c = cut.step(cell, xs[t], h, c)
                hs.append(h)
                cs.append(c)
        return CellRun(torch.stack(hs).to("cpu", torch.float64), torch.stack(cs).to("cpu", torch.float64), None)
    xs = _leaf(seq.xs[:T], device, dtype)
    h0, c0 = _leaf(seq.h0, device, dtype), _leaf(seq.c0, device, dtype)
    h, c = h0, c0
    hs, cs, outs, cots = [], [], [], []
    for t in range(1, T + 1):
        h, c = cut.step(cell, xs[t - 1], h, c)
        hs.append(h)
        cs.append(c)
        for out, v in zip((h, c), inject.get(t, ())):
            if out.requires_grad and bool((v != 0).any()):
                outs.append(out)
                cots.append(v.to(device=device, dtype=dtype))
    wrt = {"h0": h0, "c0": c0, "xs": xs, **{name: getattr(cell, name) for name in PARAM_NAMES}}
    got = torch.autograd.grad(outs, list(wrt.values()), cots, allow_unused=True) if outs else [None] * len(wrt)
    grads = {name: (torch.zeros_like(t) if g is None else g).detach().to("cpu", torch.float64)
             for (name, t), g in zip(wrt.items(), got)}
    cell.zero_grad(set_to_none=True)
    as64 = lambda ts: torch.stack(ts).detach().to("cpu", torch.float64)  # noqa: E731
    return CellRun(as64(hs), as64(cs), UnrolledGrads(**grads))


def reference_with_tolerance(seq: LSTMSequence, hs, cs, inject: dict, dtype) -> tuple[UnrolledGrads, UnrolledGrads]:
    """(the closed-form gradients along the trajectory hs, cs; the allowed |cell - closed form|).

    See the module docstring for the recursion. Values and bounds are float64.
    """
    T = max(inject)
    if not 1 <= min(inject) <= T <= hs.shape[0]:
        raise ValueError(f"inject steps must lie in 1..{hs.shape[0]}, got {sorted(inject)}")
    p = seq.params
    u, eta = unit_roundoff(dtype), smallest_subnormal(dtype)
    h_prev, c_prev = previous_states(seq.h0, seq.c0, hs, cs)
    zeros = torch.zeros_like(seq.h0)
    v_h, v_c, e_h, e_c = zeros, zeros, zeros, zeros
    ref_x, allowed_x = torch.zeros_like(seq.xs[:T]), torch.zeros_like(seq.xs[:T])
    ref_p = {name: torch.zeros_like(t) for name, t in p.as_dict().items()}
    allowed_p = {name: torch.zeros_like(t) for name, t in p.as_dict().items()}
    magnitude_p = {name: torch.zeros_like(t) for name, t in p.as_dict().items()}
    for t in range(T, 0, -1):
        if t in inject:
            w_h, w_c = inject[t]
            v_h, v_c = v_h + w_h, v_c + w_c
            # autograd adds the injected cotangent to the one arriving from step t+1: one rounding
            e_h, e_c = e_h + u * (v_h.abs() + e_h) + eta, e_c + u * (v_c.abs() + e_c) + eta
        x, h, c = seq.xs[t - 1], h_prev[t - 1], c_prev[t - 1]
        tol = vjp_tolerance(p, x, h, c, v_h.abs() + e_h, v_c.abs() + e_c, dtype)
        carried = step_vjp_magnitudes(p, x, h, c, e_h, e_c)
        r = lstm_step_vjp(p, x, h, c, v_h, v_c)
        ref_x[t - 1], allowed_x[t - 1] = r.x, tol["x"] + carried["x"]
        for name in allowed_p:
            ref_p[name] += getattr(r, name)
            allowed_p[name] += tol[name] + carried[name]
            magnitude_p[name] += getattr(r, name).abs() + tol[name] + carried[name]
        e_h, e_c = tol["h"] + carried["h"], tol["c"] + carried["c"]
        v_h, v_c = r.h, r.c
    # Autograd sums the T per-step parameter gradients in the cell's dtype (any order: γ_T),
    # the reference in float64.
    for name in allowed_p:
        allowed_p[name] += (gamma(T, dtype) + gamma(T, torch.float64)) * magnitude_p[name] + T * eta
    ref = UnrolledGrads(h0=v_h, c0=v_c, xs=ref_x, **ref_p)  # the same chain as reference.unrolled_backward.unrolled_vjp
    return ref, UnrolledGrads(h0=e_h, c0=e_c, xs=allowed_x, **allowed_p)


WHY = ("one-step rounding bounds of claims/tolerances.py carried backwards through |J_t| step by step "
       "(claims/through_unrolled_cell.py)")


def checked_gradients(claim_id: str, cut: CellUnderTest, seq: LSTMSequence, inject: dict, device, dtype, *,
                      context: str, compare=("c0", "h0", "xs", *PARAM_NAMES)) -> tuple[CellRun, UnrolledGrads, UnrolledGrads]:
    """Run the cell with `inject`, and check its gradients against the closed form within the carried bound.

    Returns (the cell's run, the closed form, the allowed difference) for the claim to measure on.
    """
    __tracebackhide__ = True
    got = run(cut, seq, device, dtype, inject=inject)
    ref, allowed = reference_with_tolerance(seq, got.hs, got.cs, inject, dtype)
    g, r, a = got.grads.as_dict(), ref.as_dict(), allowed.as_dict()
    for name in compare:
        assert_within(claim_id, f"d/d{name} of the unrolled cell", g[name], r[name], a[name],
                      context=context, why=WHY)
    return got, ref, allowed


@dataclass(frozen=True)
class CellJacobians:
    """dc_T/dc_0 (h_0 and the inputs fixed) for several T, from one forward and one backward of the cell."""

    cell: dict  # T -> (B, n, n) the cell's autograd Jacobian
    reference: dict  # T -> (B, n, n) the closed form along the cell's trajectory
    allowed: dict  # T -> (B, n, n) the allowed |cell - reference|
    run: CellRun  # the replicated run (rows: example b, copy (g, k) at b·G·n + g·n + k)


def c_jacobians(claim_id: str, cut: CellUnderTest, seq: LSTMSequence, steps, device, dtype, *,
                context: str) -> CellJacobians:
    """dc_T/dc_0 of the unrolled cell for every T in `steps`, checked against the closed form.

    Each example is repeated G·n times along the batch (G = len(steps)); copy (g, k) gets
    the cotangent e_k on c_T for T = steps[g], so one backward pass gives row k of every
    Jacobian (rows of a batch never mix in an LSTM; a cell that mixes them gets wrong rows,
    which the check catches).
    """
    __tracebackhide__ = True
    steps = sorted(set(int(T) for T in steps))
    if steps[0] < 1 or steps[-1] > seq.steps:
        raise ValueError(f"steps must lie in 1..{seq.steps}, got {steps}")
    n, B, G = seq.hidden_size, seq.batch, len(steps)
    rep = seq.replicated(G * n)
    eye = torch.eye(n, dtype=torch.float64)
    inject = {}
    for g, T in enumerate(steps):
        v_c = torch.zeros(B, G, n, n, dtype=torch.float64)
        v_c[:, g] = eye  # copy (g, k) of example b gets e_k
        inject[T] = (torch.zeros(B * G * n, n, dtype=torch.float64), v_c.reshape(B * G * n, n))
    got, ref, allowed = checked_gradients(claim_id, cut, rep, inject, device, dtype, context=context,
                                          compare=("c0",))
    shape = lambda t: t.reshape(B, G, n, n)  # noqa: E731  [b, g, k, :] = row k of dc_T/dc_0 for T = steps[g]
    c, r, a = shape(got.grads.c0), shape(ref.c0), shape(allowed.c0)
    return CellJacobians({T: c[:, g] for g, T in enumerate(steps)}, {T: r[:, g] for g, T in enumerate(steps)},
                         {T: a[:, g] for g, T in enumerate(steps)}, got)
