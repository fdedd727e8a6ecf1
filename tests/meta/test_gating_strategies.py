"""The G-claims' own helpers: strategies reach their regimes and keep their promises; the closed
forms they rest on agree with autograd; the checks catch cells that break them."""
import math

import pytest
import torch
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lstm_claims.claims import g1_exploding as G1
from lstm_claims.claims import g2_clipping as G2
from lstm_claims.claims import g3_anisotropy as G3
from lstm_claims.claims import g4_sequential as G4
from lstm_claims.claims.cell_under_test import CellUnderTest
from lstm_claims.claims.long_range_tolerances import unrolled_vjp_bound
from lstm_claims.claims.violation import ClaimViolation
from lstm_claims.reference.exploding_construction import fixed_point_example, log_cell_jacobian_norms, nonnegative_row_sums
from lstm_claims.reference.jacobian_chain import cell_state_factors, full_state_jacobian, unroll
from lstm_claims.reference.lstm_step import lstm_step, preactivations
from lstm_claims.reference.unrolled_backward import step_vjp_magnitudes, unrolled_vjp
from lstm_claims.strategies.gating_sequences import (fixed_point_sequences, random_sequence, separated_forget_sequences,
                                         sequences)
from lstm_claims.strategies.gradients import gradient_sets, max_norms, rescalings

FIND = settings(max_examples=2000, database=None, derandomize=True, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck))
PROMISE = settings(max_examples=60, database=None, derandomize=True, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
REFERENCE = "lstm_claims.reference.reference_cell:ReferenceLSTMCell"


def _exact32(t):
    return torch.equal(t, t.float().double())


def _perron_rates(seq):
    fac = cell_state_factors(seq.params, seq.xs, seq.h0, seq.c0)
    r, R = nonnegative_row_sums(fac.J[1:])
    return float(r.log().mean().exp()), float(R.log().mean().exp())


# ---- regimes --------------------------------------------------------------------------------

SEQUENCE_REGIMES = {
    "fixed point, provably exploding (geometric mean of smallest row sums > 1.5)":
        (fixed_point_sequences(), lambda s: _perron_rates(s)[0] > 1.5),
    "fixed point, provably decaying (largest row sums < 0.9)":
        (fixed_point_sequences(), lambda s: _perron_rates(s)[1] < 0.9),
    "fixed point, forget gates near 1 and still exploding (min f >= 0.95, rate > 1.2)":
        (fixed_point_sequences(), lambda s: float(cell_state_factors(s.params, s.xs, s.h0, s.c0).f.min()) >= 0.95
         and _perron_rates(s)[0] > 1.2),
    "separated forget gates, no feedback, per-step ratio >= 2":
        (separated_forget_sequences(feedback=False),
         lambda s: float(s.params.bias_ih[s.hidden_size:2 * s.hidden_size].max()
                         - s.params.bias_ih[s.hidden_size:2 * s.hidden_size].min()) >= 6),
    "separated forget gates with feedback, width 4, batch 2":
        (separated_forget_sequences(feedback=True), lambda s: s.hidden_size == 4 and s.batch == 2),
    "sequence, T = 6, batch 2": (sequences(), lambda s: s.steps == 6 and s.batch == 2),
    "sequence, gates free of h, T >= 40": (sequences(max_steps=40, hidden_feedback=False), lambda s: s.steps >= 40),
}


@pytest.mark.parametrize("regime", list(SEQUENCE_REGIMES))
def test_sequence_strategies_reach_regime(regime):
    strategy, condition = SEQUENCE_REGIMES[regime]
    find(strategy, condition, settings=FIND)


def _sum_sq_overflows(grads, dtype):
    return any(not math.isfinite(float((g.to(dtype) ** 2).sum())) for g in grads)


GRADIENT_REGIMES = {
    "float32, squares underflow (a nonzero |g| < 2^-75)":
        (gradient_sets(dtype=torch.float32), lambda gs: any(bool(((g != 0) & (g.abs() < 2.0 ** -75)).any()) for g in gs)),
    "float32, anisotropic (tensor scales 2^40 apart)":
        (gradient_sets(dtype=torch.float32),
         lambda gs: len(gs) > 1 and max(float(g.abs().max()) for g in gs) > 2.0 ** 40 * min(float(g.abs().max()) for g in gs) > 0),
    "float32, large but representable (|g| >= 2^50)":
        (gradient_sets(dtype=torch.float32), lambda gs: any(float(g.abs().max()) >= 2.0 ** 50 for g in gs)),
    "float64, large but representable (|g| >= 2^480)":
        (gradient_sets(dtype=torch.float64), lambda gs: any(float(g.abs().max()) >= 2.0 ** 480 for g in gs)),
    "non-finite: NaN": (gradient_sets(dtype=torch.float32, regime="non-finite"),
                        lambda gs: any(bool(torch.isnan(g).any()) for g in gs)),
    "non-finite: inf only": (gradient_sets(dtype=torch.float64, regime="non-finite"),
                             lambda gs: any(bool(torch.isinf(g).any()) for g in gs)
                             and not any(bool(torch.isnan(g).any()) for g in gs)),
}


@pytest.mark.parametrize("regime", list(GRADIENT_REGIMES))
def test_gradient_strategies_reach_regime(regime):
    strategy, condition = GRADIENT_REGIMES[regime]
    find(strategy, condition, settings=FIND)


def test_max_norms_straddle_torchs_epsilon_and_exceed_any_norm():
    find(max_norms(), lambda m: m < 1e-7, settings=FIND)
    find(max_norms(), lambda m: m > 1e18, settings=FIND)


# ---- promises -------------------------------------------------------------------------------

@PROMISE
@given(seq=fixed_point_sequences())
def test_fixed_point_family_stays_at_zero_in_both_dtypes(seq):
    for dtype in (torch.float64, torch.float32):
        run = unroll(seq.params, seq.xs, seq.h0, seq.c0, dtype=dtype)
        assert bool((run.c == 0).all()) and bool((run.h == 0).all()), f"state left 0 in {dtype}"
    assert bool((seq.params.hh_block("g") >= 0).all())
    for t in (*seq.params.as_dict().values(), seq.xs):
        assert _exact32(t)


@PROMISE
@given(seq=separated_forget_sequences())
def test_separated_family_keeps_its_forget_gates_apart(seq):
    n = seq.hidden_size
    run = unroll(seq.params, seq.xs, seq.h0, seq.c0)
    b_f = seq.params.bias_ih[n:2 * n]
    f = torch.sigmoid(run.a_f)
    assert bool((f[..., int(b_f.argmax())] > f[..., int(b_f.argmin())]).all()), seq.drawn
    for t in (*seq.params.as_dict().values(), seq.xs, seq.h0, seq.c0):
        assert _exact32(t)


@PROMISE
@given(seq=sequences(max_steps=200, hidden_feedback=False))
def test_sequences_without_feedback_have_w_hh_zero_and_exact_inputs(seq):
    assert bool((seq.params.weight_hh == 0).all())
    for t in (*seq.params.as_dict().values(), seq.xs, seq.h0, seq.c0):
        assert _exact32(t)


@PROMISE
@given(data=st.data(), dtype=st.sampled_from([torch.float32, torch.float64, torch.bfloat16, torch.float16]))
def test_gradient_regimes_keep_their_promises(data, dtype):
    rep = data.draw(gradient_sets(dtype=dtype))
    assert all(bool(torch.isfinite(g.to(dtype)).all()) for g in rep) and not _sum_sq_overflows(rep, dtype)
    over = data.draw(gradient_sets(dtype=dtype, regime="overflowing"))
    assert all(bool(torch.isfinite(g.to(dtype)).all()) for g in over) and _sum_sq_overflows(over, dtype)
    bad = data.draw(gradient_sets(dtype=dtype, regime="non-finite"))
    assert not all(bool(torch.isfinite(g).all()) for g in bad)
    d = data.draw(rescalings(7))
    assert bool((d > 0).all()) and _exact32(d) and d.shape == (7,)


def test_random_sequence_is_deterministic_and_exact():
    a, b = random_sequence(3, steps=50), random_sequence(3, steps=50)
    assert torch.equal(a.xs, b.xs) and torch.equal(a.params.weight_hh, b.params.weight_hh)
    assert _exact32(a.xs) and _exact32(a.params.weight_ih)
    assert bool((random_sequence(3, steps=5, hidden_feedback=False).params.weight_hh == 0).all())


@pytest.mark.parametrize("make,needle", [
    (lambda: fixed_point_sequences(steps=1), "steps"),
    (lambda: fixed_point_sequences(feedback_exps=(2, 1)), "feedback_exps"),
    (lambda: separated_forget_sequences(max_hidden=8), "max_hidden"),
    (lambda: separated_forget_sequences(feedback="yes"), "feedback"),
    (lambda: sequences(max_steps=0), "max_steps"),
    (lambda: sequences(hidden_feedback=1), "hidden_feedback"),
    (lambda: gradient_sets(dtype=torch.int32), "dtype"),
    (lambda: gradient_sets(dtype=torch.float32, regime="huge"), "regime"),
    (lambda: gradient_sets(dtype=torch.float32, max_numel=13), "max_numel"),
    (lambda: max_norms(min_exp=5, max_exp=1), "min_exp"),
    (lambda: rescalings(0), "numel"),
])
def test_bad_strategy_arguments_fail_early_naming_the_argument(make, needle):
    with pytest.raises(InvalidArgument, match=needle):
        make()


# ---- the closed forms the G-claims rest on ---------------------------------------------------

def _autograd_unrolled(seq, inject):
    """Autograd through a float64 loop of reference.lstm_step (no cell): the same gradients as unrolled_vjp."""
    p = seq.params.map(lambda t: t.clone().requires_grad_(True))
    xs, h0, c0 = (t.clone().requires_grad_(True) for t in (seq.xs, seq.h0, seq.c0))
    h, c, loss, hs, cs = h0, c0, 0.0, [], []
    for t in range(1, max(inject) + 1):
        h, c = lstm_step(p, xs[t - 1], h, c)
        hs.append(h)
        cs.append(c)
        if t in inject:
            loss = loss + (h * inject[t][0]).sum() + (c * inject[t][1]).sum()
    grads = torch.autograd.grad(loss, [h0, c0, xs, *p.as_dict().values()])
    return dict(zip(["h0", "c0", "xs", *p.as_dict()], grads)), torch.stack(hs).detach(), torch.stack(cs).detach()


@PROMISE
@given(seq=sequences(), data=st.data())
def test_unrolled_vjp_equals_autograd_of_the_reference_loop(seq, data):
    T = seq.steps
    t_inj = data.draw(st.integers(1, T), label="injection step")
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2 ** 16), label="cotangent seed"))
    v = lambda: torch.randn(seq.batch, seq.hidden_size, generator=gen, dtype=torch.float64)  # noqa: E731
    inject = {T: (v(), v()), t_inj: (v(), v())} if t_inj != T else {T: (v(), v())}
    want, hs, cs = _autograd_unrolled(seq, inject)
    got = unrolled_vjp(seq, hs, cs, inject).as_dict()
    # Both float64: allowed difference = the carried bound of the reference with itself.
    _, allowed = unrolled_vjp_bound(seq, hs, cs, inject, torch.float64)
    for name, a in allowed.as_dict().items():
        w = want[name][: got[name].shape[0]] if name == "xs" else want[name]
        assert bool(((got[name] - w).abs() <= a).all()), name


@PROMISE
@given(seq=sequences(max_steps=1), data=st.data())
def test_step_vjp_magnitudes_bound_the_jacobian_in_absolute_value(seq, data):
    x, h, c = seq.xs[0], seq.h0, seq.c0
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2 ** 16)))
    e_h, e_c = (torch.rand(seq.batch, seq.hidden_size, generator=gen, dtype=torch.float64) for _ in range(2))
    mags = step_vjp_magnitudes(seq.params, x, h, c, e_h, e_c)
    # |Jᵀ e| <= |J|ᵀ e <= magnitudes, for every sign pattern s of e (the worst is some pattern).
    for signs in range(4):
        s_h = e_h * (1 if signs & 1 else -1)
        s_c = e_c * (1 if signs & 2 else -1)
        p = seq.params.map(lambda t: t.clone().requires_grad_(True))
        xi, hi, ci = (t.clone().requires_grad_(True) for t in (x, h, c))
        hn, cn = lstm_step(p, xi, hi, ci)
        grads = torch.autograd.grad((hn * s_h).sum() + (cn * s_c).sum(), [xi, hi, ci, *p.as_dict().values()])
        for name, g in zip(["x", "h", "c", *p.as_dict()], grads):
            assert bool((g.abs() <= mags[name] * (1 + 1e-12) + 1e-300).all()), name


def test_log_jacobian_norms_equal_the_closed_form_product():
    seq = fixed_point_example(64)
    logs = log_cell_jacobian_norms(seq, [8, 64])
    for T in (8, 64):
        J = full_state_jacobian(seq.params, seq.xs[:T], seq.h0, seq.c0)
        direct = torch.linalg.matrix_norm(J, ord=2).log()
        assert torch.allclose(logs[T], direct, rtol=0, atol=1e-12 * T), (T, logs[T], direct)


def test_fixed_point_example_growth_is_the_perron_root_at_zero_input():
    """With x = 0 every J_t is the same matrix diag(f) + i o W_hg: the rate must be its spectral radius."""
    seq = fixed_point_example(512)
    still = type(seq)(seq.params, torch.zeros_like(seq.xs), seq.h0, seq.c0)
    logs = log_cell_jacobian_norms(still, [256, 512])
    g = preactivations(seq.params, torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64))
    J = torch.diag(g.f[0]) + g.i[0][:, None] * seq.params.hh_block("g") * g.o[0][None, :]
    rho = float(torch.linalg.eigvals(J).abs().max())
    rate = math.exp(float(logs[512] - logs[256]) / 256)
    assert abs(rate - rho) < 1e-9, (rate, rho)


# ---- the checks catch cells that break the claims -------------------------------------------

def test_G1_check_catches_gradients_cut_through_the_gates():
    """Growth comes from the indirect path through h; a cell that cuts it is caught (its Jacobian is diag Π f)."""
    cut = CellUnderTest.load("tests.cells.mutants:GatesCutFromH")
    with pytest.raises(ClaimViolation, match=r"^\[G1\]"):
        G1.check_cell_jacobian_growth(cut, fixed_point_example(16), "cpu", torch.float64, steps=(8, 16))


def test_G3_check_catches_a_detached_cell_state():
    cut = CellUnderTest.load("tests.cells.mutants:DetachedCellState")
    seq = find(separated_forget_sequences(feedback=False), lambda s: True, settings=FIND)
    with pytest.raises(ClaimViolation, match=r"^\[G3\]"):
        G3.check_forget_conditioning(cut, seq, "cpu", torch.float64)


def test_G4_causality_check_catches_gradients_cut_through_the_gates():
    cut = CellUnderTest.load("tests.cells.mutants:GatesCutFromH")
    with pytest.raises(ClaimViolation, match=r"^\[G4\]"):
        G4.check_causality(cut, random_sequence(1, steps=4, weight_exp=0), "cpu", torch.float64)


def test_G4_scan_check_catches_gates_that_read_c():
    """A peephole cell's step is not affine in c even with W_hh = 0: its loop leaves the scan of its coefficients.
    (A wrong but h- and c-free gate, e.g. a shifted forget bias, is consistent in both and is L0's to catch.)"""
    cut = CellUnderTest.load("tests.cells.mutants:Peephole")
    with pytest.raises(ClaimViolation, match=r"^\[G4\]"):
        G4.check_scan(cut, random_sequence(1, steps=50, hidden_feedback=False), "cpu", torch.float64)


def test_reference_cell_passes_the_G_checks():
    cut = CellUnderTest.load(REFERENCE)
    G1.check_cell_jacobian_growth(cut, fixed_point_example(16), "cpu", torch.float32, steps=(8, 16))
    G4.check_scan(cut, random_sequence(1, steps=50, hidden_feedback=False), "cpu", torch.float32)


@pytest.mark.parametrize("dtype, g, max_norm", [
    # Found by the thorough profile: c = max_norm / N = 3.7e-40 is subnormal in float32, so torch's
    # c carries an absolute error up to 2^-150 (a relative 2e-6), which the relative bound missed.
    (torch.float32, 2.0 ** 64, 6.776195723374779e-21),
    # 1 / N itself subnormal (N > 2^126), c normal.
    (torch.float32, 1.2345678 * 2.0 ** 126, 1.0),
    (torch.float64, 1.2345678 * 2.0 ** 1000, 2.0 ** -60),  # c = 2^-1060: subnormal in float64
])
def test_G2_clip_coefficient_below_the_normal_range(dtype, g, max_norm):
    # One element: torch's norm of a single element is |g| itself, finite however large (with two,
    # the sum of squares overflows and the case is G2's counterexample instead).
    params = G2.parameters_with_grads([torch.tensor([g], dtype=torch.float64)], "cpu", dtype)
    figures = G2.check_clip(params, max_norm, "cpu", dtype)
    assert figures["worst_error_over_allowed"] <= 1 and figures["norm_after_over_max_norm"] <= 1


def test_G2_gradient_with_a_subnormal_norm():
    """Regression (thorough profile): a float64 gradient of norm 2.8e-309; the cosine's rescaling by
    2^-e overflowed (e = -1024) before it was done with ldexp."""
    params = G2.parameters_with_grads([torch.tensor([2.7813e-309], dtype=torch.float64)], "cpu", torch.float64)
    figures = G2.check_clip(params, 0.5, "cpu", torch.float64)
    assert figures["max_one_minus_cosine"] <= 1e-15 and figures["worst_error_over_allowed"] <= 1


def test_G2_bound_keeps_every_unit_roundoff_in_float64():
    """Regression (thorough profile): in float64, 1 + 2^-53 rounds to 1, so (1 + u)**3 - 1 evaluated to
    0 and c's allowance lost its three roundings; torch's c·g was then 3u off against 2u allowed."""
    g = torch.tensor([0.0, 0.0, 2.0 ** -32] + [float.fromhex("0x1.5p-31")] * 8, dtype=torch.float64)
    params = G2.parameters_with_grads([g], "cpu", torch.float64)
    assert G2.check_clip(params, float.fromhex("0x1.11a5bap-21"), "cpu", torch.float64)["worst_error_over_allowed"] <= 1
