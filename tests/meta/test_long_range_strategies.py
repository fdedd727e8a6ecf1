"""The long-range strategies reach the regimes L6-L9, V1-V2 and R1-R2 need, and validate their options;
the long-range references agree with independent computations (autograd, reference.jacobian_chain)."""
import math

import pytest
import torch
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import InvalidArgument

from lstm_claims.claims import l9_forget_bias as L9
from lstm_claims.reference.forget_bias import default_lstm_params, jacobian_norm_table, with_forget_bias
from lstm_claims.reference.jacobian_chain import cell_state_factors, full_state_jacobian, ordered_product, unroll
from lstm_claims.reference.long_range import note_backward, single_threaded, step_inputs, true_backward
from lstm_claims.reference.residual import branch_jacobian, block_branch
from lstm_claims.reference.vanilla_rnn import default_rnn_params, product_growth_rate, rnn_unroll, step_jacobians
from lstm_claims.strategies.long_range_sequences import forget_gate_sequences, sequence_problems
from lstm_claims.strategies.residual_stacks import residual_stacks
from lstm_claims.strategies.vanilla_rnn_problems import rnn_problems

@pytest.fixture(autouse=True)
def _one_thread():
    # Thousands of tiny SVDs and matmuls: one thread (see tests/claims/test_L6_L9_long_range.py).
    with single_threaded():
        yield


# Generate only: the point is that a regime is reached, not its minimal example (shrinking a
# 24-block stack costs minutes).
FIND = settings(max_examples=600, database=None, derandomize=True, phases=[Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def reaches(strategy, condition):
    return find(strategy, condition, settings=FIND)


def _forget(p):
    run = unroll(p.params, p.xs, p.h0, p.c0)
    return torch.sigmoid(run.a_f), run


# --- sequence_problems (L6, L7, L9) --------------------------------------------------------

def test_sequences_reach_short_and_long():
    assert reaches(sequence_problems(), lambda p: p.steps == 1).steps == 1
    assert reaches(sequence_problems(max_steps=200), lambda p: p.steps >= 150).steps >= 150


def test_sequences_reach_both_sides_of_W_ho():
    assert reaches(sequence_problems(), lambda p: p.output_recurrence_is_zero).output_recurrence_is_zero
    assert not reaches(sequence_problems(), lambda p: not p.output_recurrence_is_zero and p.steps >= 3) \
        .output_recurrence_is_zero
    assert reaches(sequence_problems(output_recurrence="nonzero"), lambda p: True).params.hh_block("o").abs().sum() > 0


def test_sequences_without_feedback_have_W_hh_zero():
    p = reaches(sequence_problems(recurrent=False, output_recurrence="zero"), lambda p: p.hidden_size >= 2)
    assert (p.params.weight_hh == 0).all()


def test_sequences_reach_forget_gates_near_one_and_tiny_products():
    near_one = reaches(sequence_problems(), lambda p: p.steps >= 5 and _forget(p)[0].min() > 0.999)
    assert _forget(near_one)[0].min() > 0.999
    tiny = reaches(sequence_problems(max_steps=200), lambda p: torch.log(_forget(p)[0]).sum(0).max() < -50)
    assert torch.log(_forget(tiny)[0]).sum(0).max() < -50  # Π f < e^-50 in every coordinate (L7's regime)


def test_sequences_reach_small_and_large_cell_states():
    def cmax(p):
        return max(p.c0.abs().max().item(), _forget(p)[1].c.abs().max().item())
    assert cmax(reaches(sequence_problems(), lambda p: cmax(p) > 8)) > 8  # past TF's cell_clip=8 (a mutant)
    assert cmax(reaches(sequence_problems(), lambda p: cmax(p) < 0.5)) < 0.5


def test_sequences_reach_saturated_and_unsaturated_gates():
    def amax(p):
        run = _forget(p)[1]
        return max(t.abs().max().item() for t in (run.a_i, run.a_f, run.a_g, run.a_o))
    # |a^g| > 8: tanh'(a^g) < 5e-7, the candidate saturated (not only the forget gate's shift).
    assert reaches(sequence_problems(), lambda p: _forget(p)[1].a_g.abs().max() > 8)
    assert amax(reaches(sequence_problems(), lambda p: amax(p) < 0.5)) < 0.5


def test_sequences_reach_a_gap_between_product_and_true_jacobian():
    def gap(p):
        true = full_state_jacobian(p.params, p.xs, p.h0, p.c0)
        prod = ordered_product(cell_state_factors(p.params, p.xs, p.h0, p.c0).J)
        return (torch.linalg.matrix_norm(true - prod, 2) / torch.linalg.matrix_norm(true, 2).clamp_min(1e-300)).max()
    assert gap(reaches(sequence_problems(), lambda p: gap(p) > 0.1)) > 0.1


def test_sequence_options_fail_early():
    with pytest.raises(InvalidArgument, match="output_recurrence"):
        sequence_problems(output_recurrence="sometimes").example()
    with pytest.raises(InvalidArgument, match="steps"):
        sequence_problems(min_steps=0).example()
    with pytest.raises(InvalidArgument, match="contradicts"):
        sequence_problems(recurrent=False, output_recurrence="nonzero").example()
    with pytest.raises(InvalidArgument, match="forget_shifts"):
        sequence_problems(forget_shifts=(0.5,)).example()


def test_sequence_values_are_float32_exact():
    p = reaches(sequence_problems(max_steps=40), lambda p: p.steps > 20 and p.hidden_size > 2)
    for t in (*p.params.as_dict().values(), p.xs, p.h0, p.c0):
        assert torch.equal(t, t.to(torch.float32).to(torch.float64))


# --- forget_gate_sequences (L8) ------------------------------------------------------------

def test_forget_sequences_reach_every_decade_up_to_1e5():
    assert reaches(forget_gate_sequences(), lambda s: s.steps == 10 ** 5).steps == 10 ** 5
    assert reaches(forget_gate_sequences(), lambda s: s.steps == 1).steps == 1
    assert 100 <= reaches(forget_gate_sequences(), lambda s: 100 <= s.steps < 1000).steps < 1000


def test_forget_sequences_reach_underflow_and_memory():
    def log_prod(s):
        x, h = s.xs.flatten(0, 1), s.hs.flatten(0, 1)
        a = (x @ s.params.weight_ih.T + h @ s.params.weight_hh.T + s.params.bias_ih + s.params.bias_hh)
        a_f = a[:, s.hidden_size:2 * s.hidden_size].view(s.steps, s.batch, -1)
        return torch.nn.functional.logsigmoid(a_f).sum(0)
    assert log_prod(reaches(forget_gate_sequences(), lambda s: log_prod(s).max() < -1000)).max() < -1000
    assert log_prod(reaches(forget_gate_sequences(), lambda s: s.steps >= 10 ** 4 and log_prod(s).min() > -0.01)) \
        .min() > -0.01


def test_forget_sequence_options_fail_early():
    with pytest.raises(InvalidArgument, match="max_log10_steps"):
        forget_gate_sequences(max_log10_steps=9).example()


# --- rnn_problems (V1, V2) and residual_stacks (R1, R2) ------------------------------------

def test_rnn_problems_reach_both_sides_of_norm_one():
    norm = lambda p: torch.linalg.matrix_norm(p.params.weight_hh, 2).item()  # noqa: E731
    assert norm(reaches(rnn_problems(), lambda p: norm(p) < 0.5)) < 0.5
    assert norm(reaches(rnn_problems(), lambda p: norm(p) > 2)) > 2


def test_rnn_problems_reach_saturated_tanh():
    def min_dtanh(p):
        z, _ = rnn_unroll(p.params, p.xs, p.h0)
        return (1 - torch.tanh(z) ** 2).min().item()
    assert min_dtanh(reaches(rnn_problems(), lambda p: min_dtanh(p) < 1e-3)) < 1e-3


def test_residual_stacks_keep_blocks_contracting_and_reach_near_one():
    def eps(s):
        x, out = s.x0, []
        for b in s.blocks:
            out.append(torch.linalg.matrix_norm(branch_jacobian(b, x), 2).max().item())
            x = x + block_branch(b, x)
        return max(out)
    s = reaches(residual_stacks(), lambda s: eps(s) > 0.5)
    assert 0.5 < eps(s) < 1
    assert reaches(residual_stacks(), lambda s: s.depth >= 24).depth >= 24
    for b in reaches(residual_stacks(), lambda s: s.depth >= 8 and s.drawn["contraction"] == 7 / 8).blocks:
        assert (torch.linalg.matrix_norm(b.w1, 2) * torch.linalg.matrix_norm(b.w2, 2)).item() <= 7 / 8


def test_residual_options_fail_early():
    with pytest.raises(InvalidArgument, match="contractions"):
        residual_stacks(contractions=(1.0,)).example()


# --- the references against independent computations -----------------------------------

def test_long_range_chains_match_jacobian_chain():
    p = reaches(sequence_problems(max_steps=8), lambda p: p.steps >= 4 and not p.output_recurrence_is_zero
                and p.hidden_size >= 2)
    run = unroll(p.params, p.xs, p.h0, p.c0)
    hs, cs = torch.cat([p.h0[None], run.h]), torch.cat([p.c0[None], run.c])
    n, B = p.hidden_size, p.batch
    rep = lambda t: t.repeat_interleave(n, dim=-2)  # noqa: E731
    inp = step_inputs(p.params, rep(p.xs), rep(hs), rep(cs))
    seeds = torch.eye(n, dtype=torch.float64).repeat(B, 1)
    true = full_state_jacobian(p.params, p.xs, p.h0, p.c0)
    note = ordered_product(cell_state_factors(p.params, p.xs, p.h0, p.c0).J)
    torch.testing.assert_close(true_backward(p.params, inp, seeds).rows.view(B, n, n), true, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(note_backward(p.params, inp, seeds).rows.view(B, n, n), note, rtol=1e-12, atol=1e-14)


def test_forget_bias_table_matches_full_state_jacobian():
    plist = [with_forget_bias(default_lstm_params(8, 8, s), b) for s, b in ((0, 1.0), (1, 3.0))]
    xs = torch.randn(60, 2, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    tab = jacobian_norm_table(plist, xs, (10, 60))
    z = torch.zeros(1, 8, dtype=torch.float64)
    for k, p in enumerate(plist):
        for j, T in enumerate(tab.steps):
            ref = torch.linalg.matrix_norm(full_state_jacobian(p, xs[:T, k:k + 1], z, z), 2).item()
            assert math.isclose(tab.log10_norm[k, j].item(), math.log10(ref), abs_tol=1e-10)


def test_growth_rate_at_zero_input_is_the_spectral_radius():
    ps = [default_rnn_params(16, 16, s) for s in range(2)]
    W = torch.stack([p.weight_hh for p in ps])
    est = product_growth_rate(W, None, 2000)
    rho = torch.linalg.eigvals(W).abs().amax(1)
    torch.testing.assert_close(est.rate, rho, rtol=2e-2, atol=0)


def test_rnn_step_jacobian_matches_autograd():
    p = reaches(rnn_problems(max_steps=3), lambda p: p.hidden_size >= 3)
    x, h = p.xs[0], p.h0
    z = x @ p.params.weight_ih.T + p.params.bias_ih + h @ p.params.weight_hh.T + p.params.bias_hh
    f = lambda hh: torch.tanh(x[0] @ p.params.weight_ih.T + p.params.bias_ih + hh @ p.params.weight_hh.T  # noqa: E731
                              + p.params.bias_hh)
    torch.testing.assert_close(torch.autograd.functional.jacobian(f, h[0]), step_jacobians(p.params, z)[0])


def test_feedback_construction_is_exact_in_float32():
    p = L9.feedback_construction()
    for t in (*p.params.as_dict().values(), p.xs, p.h0, p.c0):
        assert torch.equal(t, t.to(torch.float32).to(torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_the_forget_bias_shift_never_rounds_away(dtype):
    # L9's monotonicity checks compare the cell at b_f and b_f + Δ; a Δ under half an ulp of b_f (2^-4 on 20 in
    # bfloat16) used to round to b_f + 0, and the check compared the cell with itself.
    p = L9.feedback_construction().params
    n = p.hidden_size
    b = p.bias_ih.clone()
    b[n:2 * n] = torch.tensor([20.0, -20.0, 0.0, 1.0, 3.5, -0.75][:n] + [2.0] * max(0, n - 6), dtype=torch.float64)
    p = type(p)(p.weight_ih, p.weight_hh, b, p.bias_hh)
    for delta in (2.0 ** -4, 1.0, 4.0):
        q = L9.shifted(p, delta, dtype)
        old, new = p.bias_ih[n:2 * n], q.bias_ih[n:2 * n]
        assert (new > old).all(), (delta, old, new)
        assert torch.equal(new, new.to(dtype).to(torch.float64))  # still an exact input in the dtype
        if dtype == torch.float32:  # every b + Δ here is a float32 number: the shift is exactly Δ
            assert torch.equal(new, old + delta)
        assert torch.equal(q.bias_ih[:n], p.bias_ih[:n]) and torch.equal(q.bias_ih[2 * n:], p.bias_ih[2 * n:])
