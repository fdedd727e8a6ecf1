"""Running the cell under test over a sequence, step by step, and differentiating the loop.

Every claim that looks at many steps at once goes through here: L6, L7, L9 (dc_T/dc_0 and
the trajectory), G1 and G3 (long-range Jacobians, parameter gradients), G4 (the dependence
of h_t on x_s, the loop against a scan). The cell under test is called once per step, in
time order, from (h_0, c_0) (`unroll`, the one loop); `run` returns its trajectory and,
when cotangents are injected, its autograd gradients with respect to h_0, c_0, every x_t
and its four parameters, all as float64 on the CPU.

When the implementation under test is a sequence module (torch.nn.LSTM's contract, a
SequenceAdapter), `run` and `parameter_gradient` go through its own forward over the whole
sequence instead (claims/unrolled_sequence.py).

The closed forms the claims compare against are evaluated along the cell's own trajectory,
so rounding in the cell's forward does not separate the two (claims/long_range_tolerances.py
explains why, and derives the allowed differences).

Jacobians are batched instead of computed one row per backward pass: each example is
repeated n times along the batch (G n times for G spans), copy k is seeded with e_k on
c_T, and one backward pass gives all n rows of every example (rows of a batch never mix in
a correct cell; a cell that mixes them gets wrong rows, which the checks catch).

- `c_jacobians` (G1, G3): dc_T/dc_0 for several T, checked here against the closed form
  within claims.long_range_tolerances.unrolled_vjp_bound;
- `unrolled_c_jacobian` (L6, L9): dc_T/dc_0 for one T with the trajectory it was taken along,
  unchecked: those claims check it against reference.long_range.true_backward within
  claims.long_range_tolerances.lstm_backward_bound themselves;
- `checked_gradients` (G1, G4): any injected cotangents, gradients checked;
- `parameter_gradient` (G2, G3): the cell itself with .grad on its parameters, in its dtype;
- `forget_gates` (L8, L9): one step, the cell's forget gate read off its backward.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lstm_claims.claims.cell_under_test import PARAM_NAMES, CellUnderTest, is_sequence_module
from lstm_claims.claims.long_range_tolerances import unrolled_vjp_bound
from lstm_claims.claims.violation import assert_within
from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.reference.unrolled_backward import LSTMSequence, UnrolledGrads


@dataclass(frozen=True)
class CellRun:
    """What the cell did: its trajectory (float64 copies of its dtype values) and its autograd gradients."""

    h0: torch.Tensor  # (B, n) the initial state as the cell received it
    c0: torch.Tensor  # (B, n)
    hs: torch.Tensor  # (T, B, n) h_1..h_T
    # (T, B, n) c_1..c_T; of a sequence module, c_1..c_(T-1) are reconstructed (claims/unrolled_sequence.py)
    cs: torch.Tensor
    grads: UnrolledGrads | None

    def states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(h_0..h_T, c_0..c_T), each (T + 1, B, n)."""
        return torch.cat([self.h0.unsqueeze(0), self.hs]), torch.cat([self.c0.unsqueeze(0), self.cs])


def _leaf(t, device, dtype):
    return t.to(device=device, dtype=dtype).detach().requires_grad_(True)


def unroll(cut: CellUnderTest, cell, xs, h, c) -> tuple[list, list]:
    """([h_1..h_T], [c_1..c_T]): the cell stepped over xs (T, B, m) from (h, c), in the tensors' device and dtype."""
    hs, cs = [], []
    for x in xs:
        h, c = cut.step(cell, x, h, c)
        hs.append(h)
        cs.append(c)
    return hs, cs


def run(cut: CellUnderTest, seq: LSTMSequence, device, dtype, *, inject: dict | None = None,
        steps: int | None = None, layout: str = "time_first") -> CellRun:
    """Call the cell T times from (h_0, c_0); with `inject` ({t: (v_h, v_c)}), also backpropagate.

    Without inject the forward runs under no_grad (the trajectory only). With it, the run
    stops at the last injected step and the gradients with respect to h_0, c_0, every x_t
    and the cell's four parameters come back as float64 on the CPU (zero where the cell's
    graph does not reach).
    """
    T = steps or (max(inject) if inject else seq.steps)
    cell = cut.with_params(seq.params, device, dtype)
    if is_sequence_module(cell):  # its own forward over the whole sequence, not a loop of the kit's
        from lstm_claims.claims.unrolled_sequence import run_sequence
        return run_sequence(cut, cell, seq, T, device, dtype, inject, layout=layout)
    as64 = lambda t: t.detach().to("cpu", torch.float64)  # noqa: E731
    if inject is None:
        with torch.no_grad():
            h0, c0 = (t.to(device=device, dtype=dtype) for t in (seq.h0, seq.c0))
            hs, cs = unroll(cut, cell, seq.xs[:T].to(device=device, dtype=dtype), h0, c0)
        return CellRun(as64(h0), as64(c0), as64(torch.stack(hs)), as64(torch.stack(cs)), None)
    xs = _leaf(seq.xs[:T], device, dtype)
    h0, c0 = _leaf(seq.h0, device, dtype), _leaf(seq.c0, device, dtype)
    hs, cs = unroll(cut, cell, xs, h0, c0)
    outs, cots = [], []
    for t in sorted(k for k in inject if k <= T):
        for out, v in zip((hs[t - 1], cs[t - 1]), inject[t]):
            if out.requires_grad and bool((v != 0).any()):
                outs.append(out)
                cots.append(v.to(device=device, dtype=dtype))
    return CellRun(as64(h0), as64(c0), as64(torch.stack(hs)), as64(torch.stack(cs)),
                   injected_gradients(cell, outs, cots, h0, c0, xs))


def injected_gradients(cell, outs, cots, h0, c0, xs) -> UnrolledGrads:
    """Σ cotᵀ d(out)/d(h_0, c_0, xs, the four parameters) by one autograd pass, float64 on the CPU; zero where
    the graph does not reach (a cell and a sequence module alike, claims/unrolled_sequence.py)."""
    wrt = {"h0": h0, "c0": c0, "xs": xs, **{name: getattr(cell, name) for name in PARAM_NAMES}}
    got = torch.autograd.grad(outs, list(wrt.values()), cots, allow_unused=True) if outs else [None] * len(wrt)
    grads = {name: (torch.zeros_like(t) if g is None else g).detach().to("cpu", torch.float64)
             for (name, t), g in zip(wrt.items(), got)}
    cell.zero_grad(set_to_none=True)
    return UnrolledGrads(**grads)


WHY = ("one-step rounding bounds of claims/tolerances.py carried backwards through the step's absolute-value "
       "backward (claims.long_range_tolerances.unrolled_vjp_bound)")


def checked_gradients(claim_id: str, cut: CellUnderTest, seq: LSTMSequence, inject: dict, device, dtype, *,
                      context: str, compare=("c0", "h0", "xs", *PARAM_NAMES),
                      layout: str = "time_first") -> tuple[CellRun, UnrolledGrads, UnrolledGrads]:
    """Run the cell with `inject`, and check its gradients against the closed form within the carried bound.

    Returns (the cell's run, the closed form, the allowed difference) for the claim to measure on.
    """
    __tracebackhide__ = True
    got = run(cut, seq, device, dtype, inject=inject, layout=layout)
    # A sequence module's c_1..c_(T-1) are reconstructed from its h's: it differentiates along its own
    # states, within the forward's carried E_t of them (claims/sequence_tolerances.py, as L0's backward).
    c_error = None
    if cut.runs_sequences:
        from lstm_claims.claims.sequence_tolerances import sequence_forward_bound
        c_error = sequence_forward_bound(seq.params, seq.xs[:got.hs.shape[0]], seq.h0, seq.c0, got.hs, dtype).c_allowed
    ref, allowed = unrolled_vjp_bound(seq, got.hs, got.cs, inject, dtype, c_error=c_error)
    g, r, a = got.grads.as_dict(), ref.as_dict(), allowed.as_dict()
    for name in compare:
        assert_within(claim_id, f"d/d{name} of the unrolled cell", g[name], r[name], a[name],
                      context=context, why=WHY)
    return got, ref, allowed


def _c_T_seeds(seq: LSTMSequence, steps) -> tuple[LSTMSequence, dict]:
    """(seq replicated G·n times, the injected cotangents): copy (g, k) of example b, at row
    b·G·n + g·n + k, gets e_k on c_T for T = steps[g] (G = len(steps), steps sorted)."""
    n, B, G = seq.hidden_size, seq.batch, len(steps)
    eye = torch.eye(n, dtype=torch.float64)
    inject = {}
    for g, T in enumerate(steps):
        v_c = torch.zeros(B, G, n, n, dtype=torch.float64)
        v_c[:, g] = eye  # copy (g, k) of example b gets e_k
        inject[T] = (torch.zeros(B * G * n, n, dtype=torch.float64), v_c.reshape(B * G * n, n))
    return seq.replicated(G * n), inject


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

    One forward and one backward of the batch replicated G·n times (`_c_T_seeds`): the
    cotangent of copy (g, k) gives row k of dc_T/dc_0 for T = steps[g].
    """
    __tracebackhide__ = True
    steps = sorted(set(int(T) for T in steps))
    if steps[0] < 1 or steps[-1] > seq.steps:
        raise ValueError(f"steps must lie in 1..{seq.steps}, got {steps}")
    n, B, G = seq.hidden_size, seq.batch, len(steps)
    rep, inject = _c_T_seeds(seq, steps)
    got, ref, allowed = checked_gradients(claim_id, cut, rep, inject, device, dtype, context=context,
                                          compare=("c0",))
    shape = lambda t: t.reshape(B, G, n, n)  # noqa: E731  [b, g, k, :] = row k of dc_T/dc_0 for T = steps[g]
    c, r, a = shape(got.grads.c0), shape(ref.c0), shape(allowed.c0)
    return CellJacobians({T: c[:, g] for g, T in enumerate(steps)}, {T: r[:, g] for g, T in enumerate(steps)},
                         {T: a[:, g] for g, T in enumerate(steps)}, got)


@dataclass(frozen=True)
class UnrolledJacobian:
    """dc_T/dc_0 of the unrolled cell and the trajectory it was taken along (all float64, CPU)."""

    J: torch.Tensor  # (B, n, n)
    xs: torch.Tensor  # (T, R, m), R = B n: the inputs, each example repeated n times
    hs: torch.Tensor  # (T + 1, R, n): h_0..h_T as the cell computed them
    cs: torch.Tensor  # (T + 1, R, n)
    seeds: torch.Tensor  # (R, n): e_k for copy k of each example


def unrolled_c_jacobian(cut: CellUnderTest, seq: LSTMSequence, device, dtype) -> UnrolledJacobian:
    """dc_T/dc_0 (T = seq.steps) by the cell's autograd through T steps, h_0 and the inputs held fixed.

    Unchecked: the caller compares it with its own closed form (L6, L9).
    """
    T, B, n = seq.steps, seq.batch, seq.hidden_size
    rep, inject = _c_T_seeds(seq, (T,))
    got = run(cut, rep, device, dtype, inject=inject)
    hs, cs = got.states()
    return UnrolledJacobian(got.grads.c0.view(B, n, n), rep.xs, hs, cs, inject[T][1])


def parameter_gradient(cut: CellUnderTest, seq: LSTMSequence, device, dtype):
    """The cell, in `dtype` on `device`, with .grad on its parameters: backward of L = Σ c_T through T steps.

    A parameter the cell's graph does not reach gets a zero gradient (as in `run`), not None:
    a cell that ignores bias_hh reaches G2's and G3's checks with that (wrong) gradient
    instead of crashing them with an AttributeError.
    """
    cell = cut.with_params(seq.params, device, dtype)
    h, c = (t.to(device=device, dtype=dtype) for t in (seq.h0, seq.c0))
    _, (_, c_T) = cut.sequence(cell, seq.xs.to(device=device, dtype=dtype), h, c)
    c_T.sum().backward()
    for p in cell.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    return cell


def forget_gates(cut: CellUnderTest, params: LSTMParams, x, h, device, dtype) -> torch.Tensor:
    """The cell's forget gate f for each row of (x (N, m), h (N, n)), float64 (N, n).

    L1 (checked in its own right) makes ∂c_t/∂c_{t-1} with h fixed equal to diag(f_t): one
    backward pass with v_c = 1, v_h = 0 returns f. The c fed in is 0 (f does not depend on c).
    """
    cell = cut.with_params(params, device, dtype)
    c = torch.zeros(h.shape, device=device, dtype=dtype, requires_grad=True)
    _, c_next = cut.step(cell, x.to(device=device, dtype=dtype), h.to(device=device, dtype=dtype), c)
    if not c_next.requires_grad:
        return torch.zeros(h.shape, dtype=torch.float64)
    (g,) = torch.autograd.grad(c_next, c, torch.ones_like(c_next), allow_unused=True)
    return torch.zeros(h.shape, dtype=torch.float64) if g is None else g.detach().to("cpu", torch.float64)
