"""claims/through_cell.c_jacobian: all n rows of dc_t/dc_(t-1) in one batched backward, the same rows as n
separate backward passes, with a row-by-row fallback for a backward vmap cannot run; and the Jacobian
claims reach a tile-tail width (n = 129) in every run through their explicit example."""
import torch

from lstm_claims.claims import through_cell
from lstm_claims.claims.cell_under_test import CellUnderTest
from lstm_claims.claims.registry import all_claims
from lstm_claims.strategies.kernel_problems import JACOBIAN_KERNEL_EXAMPLES, kernel_step_problem


def rows_one_by_one(cut, problem):
    cell = cut.with_params(problem.params, "cpu", torch.float64)
    c = problem.c.clone().requires_grad_(True)
    _, c_next = cut.step(cell, problem.x, problem.h, c)
    rows = []
    for k in range(problem.hidden_size):
        onehot = torch.zeros_like(c_next)
        onehot[:, k] = 1
        rows.append(torch.autograd.grad(c_next, c, onehot, retain_graph=True)[0])
    return torch.stack(rows, dim=1)


def test_batched_rows_equal_one_backward_per_row_at_a_tile_tail():
    cut = CellUnderTest.load("torch.nn:LSTMCell")
    p = kernel_step_problem(9, 17, 129, seed=5)
    J = through_cell.c_jacobian(cut, p, "cpu", torch.float64, through_h=False)
    assert J.shape == (9, 129, 129)
    assert torch.equal(J, rows_one_by_one(cut, p))


def test_a_backward_vmap_cannot_run_is_differentiated_row_by_row(monkeypatch):
    """Where the batched backward raises (torch's legacy vmap runs most backwards, falling back to a loop
    for ops without a batching rule, so the failure is simulated), the rows come one backward at a time."""
    cut = CellUnderTest.load("torch.nn:LSTMCell")
    p = kernel_step_problem(3, 4, 5, seed=1)
    expected = rows_one_by_one(cut, p)
    grad = torch.autograd.grad
    batched_calls = []

    def no_batched(*args, is_grads_batched=False, **kwargs):
        if is_grads_batched:
            batched_calls.append(1)
            raise RuntimeError("vmap: batching rule not implemented (simulated)")
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_batched)
    J = through_cell.c_jacobian(cut, p, "cpu", torch.float64, through_h=False)
    assert batched_calls and torch.equal(J, expected)


def test_the_jacobian_claims_reach_width_129_in_every_run():
    (example,) = JACOBIAN_KERNEL_EXAMPLES
    assert example.hidden_size == 129 and example.batch == 9
    wanted = {("L1", "direct-jacobian"), ("L2", "decomposition"), ("L3", "distance-from-identity"), ("L5", "bound")}
    found = {(c.id, ch.name) for c in all_claims() for ch in c.checks
             if any(getattr(e, "hidden_size", 0) >= 129 for e in ch.examples)}
    assert wanted <= found, wanted - found
