"""The references themselves: closed forms against SymPy and against autograd; clear input errors."""
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings

from lstm_claims.reference import symbolic
from lstm_claims.reference.cell_state_jacobians import cell_state_jacobian, indirect_term_bounds
from lstm_claims.reference.lstm_step import LSTMParams, lstm_step, lstm_step_vjp
from lstm_claims.strategies import step_problems

# float64 closed forms vs float64 SymPy evaluation / autograd: different summation orders
# of the same sums; 1e-12 relative to (1 + magnitude) is ~2^13 u for sums of <= 14 terms
# of magnitude <= 2^9 (the strategies' largest weights times inputs), with room for the
# transcendental functions' own rounding.
REL = 1e-12


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(p=step_problems(max_hidden=3, max_input=2))
def test_lstm_step_matches_sympy_cell(p):
    f = symbolic.lambdified_step(p.input_size, p.hidden_size)
    h_ref, c_ref = lstm_step(p.params, p.x, p.h, p.c)
    for b in range(p.batch):
        args = [p.params.weight_ih.flatten().tolist(), p.params.weight_hh.flatten().tolist(),
                p.params.bias_ih.tolist(), p.params.bias_hh.tolist(), p.x[b].tolist(), p.h[b].tolist(),
                p.c[b].tolist()]
        h_sym, c_sym = (np.array(v, dtype=np.float64) for v in f(*args))
        np.testing.assert_allclose(h_ref[b].numpy(), h_sym, rtol=REL, atol=REL)
        np.testing.assert_allclose(c_ref[b].numpy(), c_sym, rtol=REL, atol=REL * (1 + p.c.abs().max().item()))


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(p=step_problems())
def test_hand_written_vjp_matches_autograd(p):
    leaves = [t.clone().requires_grad_(True) for t in (p.x, p.h, p.c)]
    params = p.params.map(lambda t: t.clone().requires_grad_(True))
    h, c = lstm_step(params, *leaves)
    grads = torch.autograd.grad([h, c], [*leaves, *params.as_dict().values()], [p.v_h, p.v_c])
    ref = lstm_step_vjp(p.params, p.x, p.h, p.c, p.v_h, p.v_c).as_dict()
    for (name, r), g in zip(ref.items(), grads):
        scale = 1 + r.abs().max().item()
        assert (r - g).abs().max().item() <= REL * scale * 10, name


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(p=step_problems(max_hidden=5))
def test_closed_form_jacobian_matches_autograd_and_bounds_hold(p):
    def c_next(b, c):  # one example: h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}) differentiated too
        x, o = p.x[b:b + 1], p.o_prev[b:b + 1]
        return lstm_step(p.params, x, o * torch.tanh(c), c)[1]

    for b in range(p.batch):
        J = torch.autograd.functional.jacobian(lambda c: c_next(b, c.unsqueeze(0))[0], p.c[b])
        jac = cell_state_jacobian(p.params, p.x[b:b + 1], p.c[b:b + 1], p.o_prev[b:b + 1])
        assert torch.allclose(jac.J[0], J, rtol=REL, atol=REL * (1 + J.abs().max().item()))
    jac = cell_state_jacobian(p.params, p.x, p.c, p.o_prev)
    b1, b2 = indirect_term_bounds(p.params, jac, p.c)
    E = torch.linalg.matrix_norm(jac.E, ord=2)
    assert (E <= b1 * (1 + 1e-12)).all() and (b1 <= b2 * (1 + 1e-12)).all()


def test_sympy_prover_rejects_a_wrong_closed_form():
    S = symbolic.symbolic_cell(1, 2)
    o = sp.Matrix([sp.Symbol("o0"), sp.Symbol("o1")])
    J_closed, h_prev = symbolic.decomposition_closed_form(S, o)
    c_next = S["c_next"].subs(dict(zip(S["h"], h_prev)))
    wrong = J_closed - sp.diag(*S["f"]) + sp.eye(2)  # the direct term replaced by I
    with pytest.raises(symbolic.ProofFailure):
        symbolic._assert_zero_matrix(c_next.jacobian(S["c"]) - wrong, "deliberately wrong")


@pytest.mark.parametrize("n", [1, 2])
def test_symbolic_proofs_pass(n):
    assert "identity" in symbolic.prove_decomposition(n)
    assert "identity" in symbolic.prove_gates_blind_to_c(n)


def _params(n=2, m=3, dtype=torch.float64):
    return LSTMParams(torch.zeros(4 * n, m, dtype=dtype), torch.zeros(4 * n, n, dtype=dtype),
                      torch.zeros(4 * n, dtype=dtype), torch.zeros(4 * n, dtype=dtype))


@pytest.mark.parametrize("make,error,needle", [
    (lambda: LSTMParams(torch.zeros(8, 3), torch.zeros(8, 3), torch.zeros(8), torch.zeros(8)), ValueError, "weight_hh"),
    (lambda: LSTMParams(torch.zeros(8, 3), torch.zeros(8, 2), torch.zeros(7), torch.zeros(8)), ValueError, "bias_ih"),
    (lambda: LSTMParams(torch.zeros(8, 3), torch.zeros(8, 2, dtype=torch.float64), torch.zeros(8), torch.zeros(8)),
     TypeError, "share one dtype"),
    (lambda: lstm_step(_params(), torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64),
                       torch.zeros(4, 2, dtype=torch.float64)), ValueError, "x must have shape"),
    (lambda: lstm_step(_params(), torch.zeros(4, 3, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64),
                       torch.zeros(4, 2, dtype=torch.float64)), ValueError, "h must have shape"),
    (lambda: lstm_step(_params(), torch.zeros(4, 3), torch.zeros(4, 2), torch.zeros(4, 2)), TypeError, "dtype"),
    (lambda: lstm_step(_params(), torch.full((4, 3), float("nan"), dtype=torch.float64),
                       torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64)),
     ValueError, "x contains NaN"),
])
def test_bad_input_gets_one_clear_error(make, error, needle):
    with pytest.raises(error, match=needle):
        make()
