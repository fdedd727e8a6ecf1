"""Running a StepProblem through the cell under test and differentiating it with autograd.

Everything the L-claims measure comes from here: the cell's own forward and its own
backward, on the device and dtype under test, returned as float64 on the CPU.
"""
from __future__ import annotations

import torch

from lstm_claims.claims.cell_under_test import PARAM_NAMES, CellUnderTest
from lstm_claims.strategies.lstm_problems import StepProblem


def _leaf(t, device, dtype):
    return t.to(device=device, dtype=dtype).detach().requires_grad_(True)


def forward(cut: CellUnderTest, problem: StepProblem, device, dtype):
    """(h_next, c_next) of the cell, float64 on CPU."""
    cell = cut.with_params(problem.params, device, dtype)
    with torch.no_grad():
        h_next, c_next = cut.step(cell, *(t.to(device=device, dtype=dtype) for t in (problem.x, problem.h, problem.c)))
    return h_next.to("cpu", torch.float64), c_next.to("cpu", torch.float64)


def vjps(cut: CellUnderTest, problem: StepProblem, device, dtype) -> dict:
    """(v_h, v_c)ᵀ ∂(h_next, c_next)/∂(x, h, c, params) by the cell's autograd.

    An input the cell's graph does not reach has gradient zero (a detached state is a
    wrong gradient, not a crash). An output with an all-zero cotangent is not in the loss.
    """
    cell = cut.with_params(problem.params, device, dtype)
    x, h, c = (_leaf(t, device, dtype) for t in (problem.x, problem.h, problem.c))
    h_next, c_next = cut.step(cell, x, h, c)
    wrt = {"x": x, "h": h, "c": c, **{name: getattr(cell, name) for name in PARAM_NAMES}}
    outs = [(o, v) for o, v in ((h_next, problem.v_h), (c_next, problem.v_c)) if o.requires_grad]
    # An output whose cotangent is all zero is left out of the loss, as claims/unrolled_cell.run does: the same
    # VJP, but the cell's backward then gets no gradient for it (None in a Function that does not materialise
    # gradients), the path a loss on h_t alone takes in training. The strategies draw such cotangents (a zero
    # v_c in about 1 example in 6, a zero v_h in 1 in 12: tests/meta/test_strategies.py), and L0's backward
    # has one of each as explicit examples (strategies/kernel_problems.py: UNREAD_OUTPUT_EXAMPLES).
    read = [(o, v) for o, v in outs if bool(v.ne(0).any())]
    outs = read or outs
    grads = torch.autograd.grad([o for o, _ in outs], list(wrt.values()),
                                [v.to(device=device, dtype=dtype) for _, v in outs], allow_unused=True)
    return {name: (torch.zeros_like(t) if g is None else g).detach().to("cpu", torch.float64)
            for (name, t), g in zip(wrt.items(), grads)}


def c_jacobian(cut: CellUnderTest, problem: StepProblem, device, dtype, *, through_h: bool) -> torch.Tensor:
    """dc_t/dc_{t-1} per batch row, (B, n, n) float64, by the cell's backward (all n rows batched).

    through_h=False: h_{t-1} = problem.h held fixed (L1).
    through_h=True: h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}) computed in `dtype` and
    differentiated too (L2); returns also that h as float64.
    Row k is Σ_b ∂c_t[b, k]/∂c_{t-1}[b, :]; the rows of a batch never mix in a correct
    cell, so this is each example's Jacobian row (and a cell that mixes them is caught).
    """
    cell = cut.with_params(problem.params, device, dtype)
    x = problem.x.to(device=device, dtype=dtype)
    c = _leaf(problem.c, device, dtype)
    if through_h:
        h = problem.o_prev.to(device=device, dtype=dtype) * torch.tanh(c)
    else:
        h = problem.h.to(device=device, dtype=dtype)
    _, c_next = cut.step(cell, x, h, c)
    J = _rows_of(c_next, c, problem.hidden_size).detach().to("cpu", torch.float64)  # (B, n_out, n_in)
    return (J, h.detach().to("cpu", torch.float64)) if through_h else J


def _rows_of(c_next: torch.Tensor, c: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n, n): row k is the cotangent e_k on c_next pulled back to c, by the cell's own backward.

    All n rows in one batched backward (autograd's is_grads_batched, torch.func's vmap over the
    backward): measured with torch.nn.LSTMCell, B = 4, one thread, 0.34 ms against 0.81 ms for n
    backward passes at n = 7, and 0.46 ms against 10.7 ms at n = 128, which is what lets the
    Jacobian claims take tile-tail widths (their explicit examples). torch's batched backward runs
    custom autograd.Functions and TorchScript cells too (tried: tests/cells/raising.py's), falling
    back to a loop for ops without a batching rule; a backward it still cannot run (it raises a
    RuntimeError) is differentiated row by row instead, as the cell is trained.
    """
    if not c_next.requires_grad:
        return torch.zeros(c.shape[0], n, c.shape[1], dtype=c.dtype, device=c.device)
    eye = torch.eye(n, dtype=c_next.dtype, device=c_next.device).unsqueeze(1).expand(n, *c_next.shape)
    try:
        (g,) = torch.autograd.grad(c_next, c, eye, retain_graph=True, allow_unused=True, is_grads_batched=True)
        return torch.zeros(c.shape[0], n, c.shape[1], dtype=c.dtype, device=c.device) if g is None else g.transpose(0, 1)
    except RuntimeError:
        pass  # vmap could not run this backward: one row at a time
    rows = []
    for k in range(n):
        onehot = torch.zeros_like(c_next)
        onehot[:, k] = 1
        (g,) = torch.autograd.grad(c_next, c, onehot, retain_graph=k < n - 1, allow_unused=True)
        rows.append(torch.zeros_like(c) if g is None else g)
    return torch.stack(rows, dim=1)
