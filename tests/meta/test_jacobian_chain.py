"""reference.jacobian_chain: closed-form long-range Jacobians against autograd (CLAIMS.md L6, L7, L8).

Tolerances are rounding-error bounds (float64, u = 2^-53, γ_k = k u / (1 - k u); Higham,
*Accuracy and Stability of Numerical Algorithms*, ch. 3), carried through the computation
by interval arithmetic on nonnegative numbers (`Bound`: a magnitude and an error bound,
propagated without cancellation):

* pre-activations: a sum of m + n + 2 terms in any order, within γ_{m+n+2}·s of the exact
  sum, s = |x||W_ih|ᵀ + |h||W_hh|ᵀ + |b_ih| + |b_hh|; plus |W_hh| times h's own error;
* σ, tanh: 1/4- and 1-Lipschitz, each evaluation within ACT = 4 units of u of its value
  (SLEEF's <= 1 ulp kernels plus the roundings of the composition, as claims/tolerances);
* σ' = σ(1 - σ) and tanh' = 1 - tanh²: computed by cancellation, so their error has an
  *absolute* part (ACT u σ², (2 ACT + 2) u tanh²) besides the relative one; and they move
  with the argument by at most a factor e^{Δ} (|d log σ'| <= 1) or e^{2Δ} (|d log tanh'| <= 2);
* each entry of a one-step factor is formed with at most 4 roundings after its inputs;
  each matrix product step rounds like an inner product of at most 4n + 4 terms (autograd's
  backward sums W_hhᵀ da over the 4n gate rows; the closed forms sum over <= 2n).

Each computation (closed form, autograd of the reference loop) is within the propagated
error of the exact Jacobian, so two of them differ by at most the sum of their bounds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lstm_claims.claims.tolerances import U64
from lstm_claims.reference.jacobian_chain import (
    Unrolled, cell_state_factors, cell_state_product, full_state_jacobian, log_forget_products, ordered_product,
    ordered_product_chain, ordered_product_tree, state_transition_jacobians, unroll,
)
from lstm_claims.reference.lstm_step import LSTMParams, lstm_step

F64 = torch.float64
U = U64  # float64's unit roundoff (claims/tolerances.py)
ACT = 4  # activation accuracy, in units of u (see module docstring)
TINY = torch.finfo(F64).tiny


def gamma(k):
    return k * U / (1 - k * U)


# ---------------------------------------------------------------------------- strategies

def _array(shape, lo, hi):
    return arrays(np.float64, shape, elements=st.floats(lo, hi)).map(torch.from_numpy)


@st.composite
def lstm_problems(draw, *, max_T: int = 6, max_n: int = 4, max_m: int = 3, max_B: int = 2,
                  zero_w_ho: bool = False, min_T: int = 1):
    """(params, xs, h0, c0) in float64 at small sizes.

    Weights in [-1.5, 1.5] (gates anywhere from saturated to linear), inputs in [-2, 2],
    |c0| <= 3 (a large cell state makes the forget-gate term of K_t matter), h0 in [-1, 1]
    (an LSTM's h). zero_w_ho: W_ho = 0, the condition of L6.
    """
    T, n = draw(st.integers(min_T, max_T)), draw(st.integers(1, max_n))
    m, B = draw(st.integers(1, max_m)), draw(st.integers(1, max_B))
    w_hh = draw(_array((4 * n, n), -1.5, 1.5))
    if zero_w_ho:
        w_hh[3 * n:] = 0
    params = LSTMParams(draw(_array((4 * n, m), -1.5, 1.5)), w_hh,
                        draw(_array((4 * n,), -1.5, 1.5)), draw(_array((4 * n,), -1.5, 1.5)))
    return params, draw(_array((T, B, m), -2, 2)), draw(_array((B, n), -1, 1)), draw(_array((B, n), -3, 3))


def seeded_problem(T, n, m, B, *, seed, zero_w_ho=False):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: 2 * torch.rand(*s, generator=g, dtype=F64) - 1  # noqa: E731
    w_hh = r(4 * n, n)
    if zero_w_ho:
        w_hh[3 * n:] = 0
    return LSTMParams(r(4 * n, m), w_hh, r(4 * n), r(4 * n)), r(T, B, m) * 2, r(B, n), r(B, n) * 3


# ---------------------------------------------------------------------------- references

def reference_c_T(params, xs, h0):
    """c_0 -> c_T through a loop of reference.lstm_step (h_0 and inputs fixed)."""
    def f(c0):
        h, c = h0, c0
        for t in range(xs.shape[0]):
            h, c = lstm_step(params, xs[t], h, c)
        return c
    return f


def autograd_dcT_dc0(params, xs, h0, c0):
    """(B, n, n) per-example dc_T/dc_0 by torch.autograd.functional.jacobian."""
    jac = torch.autograd.functional.jacobian(reference_c_T(params, xs, h0), c0)  # (B, n, B, n)
    return torch.stack([jac[b, :, b, :] for b in range(c0.shape[0])])


# ---------------------------------------------------------------------------- error bounds

@dataclass(frozen=True)
class Bound:
    """A computed quantity: |value| <= mag (taken from the computed value), |computed - exact| <= err."""

    mag: torch.Tensor
    err: torch.Tensor

    @staticmethod
    def exact(t):
        return Bound(t.abs(), torch.zeros_like(t))

    def __add__(self, o):
        return Bound(self.mag + o.mag, self.err + o.err)

    def __mul__(self, o):  # |x̂ŷ - xy| <= |x̂||ŷ - y| + |y||x̂ - x|
        return Bound(self.mag * o.mag, self.mag * o.err + self.err * (o.mag + o.err))

    def __matmul__(self, o):
        return Bound(self.mag @ o.mag, self.mag @ o.err + self.err @ (o.mag + o.err))

    def rounded(self, k):
        """After k more roundings: a relative γ_k of the value, plus underflow's absolute TINY each."""
        return Bound(self.mag, self.err + gamma(k) * (self.mag + self.err) + k * TINY)

    def __getitem__(self, index):
        return Bound(self.mag[index], self.err[index])

    def col(self):  # v -> v[..., :, None], to scale a matrix's rows
        return Bound(self.mag.unsqueeze(-1), self.err.unsqueeze(-1))

    def row(self):  # v -> v[..., None, :], to scale a matrix's columns
        return Bound(self.mag.unsqueeze(-2), self.err.unsqueeze(-2))

    def diag(self):
        return Bound(torch.diag_embed(self.mag), torch.diag_embed(self.err))


def _sigmoid(a, da):
    s = torch.sigmoid(a)
    return Bound(s, da / 4 + ACT * U * s)


def _tanh(z, dz):
    t = torch.tanh(z).abs()
    return Bound(t, dz + ACT * U * t)


def _dsigmoid(a, da):
    s = torch.sigmoid(a)
    d = s * (1 - s)
    return Bound(d, d * torch.expm1(2 * da) + (ACT + 3) * U * d + ACT * U * s * s)


def _dtanh(z, dz):
    t = torch.tanh(z)
    d = 1 - t * t
    return Bound(d, d * torch.expm1(4 * dz) + (2 * ACT + 2) * U * t * t + U * d)


@dataclass(frozen=True)
class StepBounds:
    """Per step t = 1..T: the pre-activations' error and the state's error bounds (each (T, B, ·))."""

    da: torch.Tensor  # (T, B, 4n)
    dc_prev: torch.Tensor  # (T, B, n) error of c_{t-1}
    dc: torch.Tensor  # (T, B, n) error of c_t
    dh: torch.Tensor  # (T, B, n) error of h_t


def trajectory_bounds(params: LSTMParams, xs, run: Unrolled, dh0=None, dc0=None) -> StepBounds:
    """How far any implementation of the reference's arithmetic can be from the exact trajectory."""
    n, m = params.hidden_size, params.input_size
    p = params.map(torch.abs)
    dh = torch.zeros_like(run.h0) if dh0 is None else dh0
    dc = torch.zeros_like(run.c0) if dc0 is None else dc0
    out = {"da": [], "dc_prev": [], "dc": [], "dh": []}
    for t in range(xs.shape[0]):
        s = xs[t].abs() @ p.weight_ih.T + run.h_prev[t].abs() @ p.weight_hh.T + p.bias_ih + p.bias_hh
        da = gamma(m + n + 2) * s + dh @ p.weight_hh.T
        a = (run.a_i[t], run.a_f[t], run.a_g[t], run.a_o[t])
        da_i, da_f, da_g, da_o = da.chunk(4, dim=-1)
        i, f, o = _sigmoid(a[0], da_i), _sigmoid(a[1], da_f), _sigmoid(a[3], da_o)
        g = _tanh(a[2], da_g)
        c = (f * Bound(run.c_prev[t].abs(), dc) + i * g).rounded(2)
        h = (o * _tanh(run.c[t], c.err)).rounded(1)
        out["da"].append(da)
        out["dc_prev"].append(dc)
        dc, dh = c.err, h.err
        out["dc"].append(dc)
        out["dh"].append(dh)
    return StepBounds(**{k: torch.stack(v) for k, v in out.items()})


def factor_bounds(params: LSTMParams, xs, run: Unrolled):
    """Bounds on the one-step factors: (S_t, the note's J_t), each a Bound of (T, B, ·, ·)."""
    tb = trajectory_bounds(params, xs, run)
    da_i, da_f, da_g, da_o = tb.da.chunk(4, dim=-1)
    W = {k: Bound.exact(params.hh_block(k)) for k in "ifgo"}
    c_prev = Bound(run.c_prev.abs(), tb.dc_prev)
    g, i = _tanh(run.a_g, da_g), _sigmoid(run.a_i, da_i)
    f, o = _sigmoid(run.a_f, da_f), _sigmoid(run.a_o, da_o)
    K = ((c_prev * _dsigmoid(run.a_f, da_f)).col() * W["f"] + (g * _dsigmoid(run.a_i, da_i)).col() * W["i"]
         + (i * _dtanh(run.a_g, da_g)).col() * W["g"]).rounded(4)
    gain = (o * _dtanh(run.c, tb.dc)).rounded(1)  # o_t ⊙ tanh'(c_t): M_t, and ∂h_t/∂c_t
    tanh_c = _tanh(run.c, tb.dc)
    S_hh = ((tanh_c * _dsigmoid(run.a_o, da_o)).col() * W["o"] + gain.col() * K).rounded(4)
    S_hc = (gain * f).rounded(1).diag()
    S = Bound(torch.cat([torch.cat([S_hh.mag, S_hc.mag], -1), torch.cat([K.mag, f.diag().mag], -1)], -2),
              torch.cat([torch.cat([S_hh.err, S_hc.err], -1), torch.cat([K.err, f.diag().err], -1)], -2))
    J = f.diag()
    if xs.shape[0] > 1:
        E = K[1:] * gain[:-1].row()  # K_t M_{t-1}, t >= 2
        J = Bound(J.mag.clone(), J.err.clone())
        J.mag[1:] += E.mag
        J.err[1:] += E.err + gamma(2) * (E.mag + E.err)  # the column scaling and the diagonal add
    return S, J


def product_bound(F: Bound, n_inner: int) -> Bound:
    """F_T ⋯ F_1 with each factor and each matrix product step rounded."""
    P = F_t = None
    for t in range(F.mag.shape[0]):
        F_t = F[t].rounded(4)
        P = F_t if P is None else (F_t @ P).rounded(n_inner)
    return P


def jacobian_errors(params, xs, h0, c0):
    """(error bound of any dc_T/dc_0 computed through S_t, of the note's product through J_t), (B, n, n)."""
    n = params.hidden_size
    run = unroll(params, xs, h0, c0)
    S, J = factor_bounds(params, xs, run)
    inner = 4 * n + 4
    return product_bound(S, inner).err[..., n:, n:], product_bound(J, inner).err


def assert_within(actual, expected, tol, what):
    __tracebackhide__ = True
    diff = (actual - expected).abs()
    excess = diff - tol
    k = int(excess.argmax())
    assert (excess <= 0).all(), (
        f"{what}: |diff| = {diff.flatten()[k]:.3e} > allowed {tol.flatten()[k]:.3e} at flat index {k} "
        f"(value {expected.flatten()[k]:.6e})")


# ---------------------------------------------------------------------------- unroll

@settings(deadline=None)
@given(problem=lstm_problems(max_T=8))
def test_unroll_steps_are_lstm_steps(problem):
    """Every step of `unroll` is the LSTM step from its own (h_{t-1}, c_{t-1}), up to rounding."""
    params, xs, h0, c0 = problem
    run = unroll(params, xs, h0, c0)
    for t in range(xs.shape[0]):
        h_ref, c_ref = lstm_step(params, xs[t], run.h_prev[t], run.c_prev[t])
        one = unroll(params, xs[t:t + 1], run.h_prev[t], run.c_prev[t])
        tb = trajectory_bounds(params, xs[t:t + 1], one)  # from the same, exactly known, state
        # two computations of the same step, each within tb of the exact one
        assert_within(run.c[t], c_ref, 2 * tb.dc[0], f"c_{t + 1}")
        assert_within(run.h[t], h_ref, 2 * tb.dh[0], f"h_{t + 1}")


def test_unroll_shapes_and_dtype():
    params, xs, h0, c0 = seeded_problem(5, 3, 2, 4, seed=0)
    run = unroll(params.to(torch.float32), xs.float(), h0.float(), c0.float())
    assert run.c.dtype == F64  # float64 by default
    for t in (run.a_i, run.a_f, run.a_g, run.a_o, run.h, run.c):
        assert t.shape == (5, 4, 3)
    kept = unroll(params.to(torch.float32), xs.float(), h0.float(), c0.float(), dtype=None)
    assert kept.c.dtype == torch.float32


@pytest.mark.parametrize("bad, match", [
    (lambda p, xs, h0, c0: (p, xs[0], h0, c0), r"xs must be a tensor of shape \(T, B, m\)"),
    (lambda p, xs, h0, c0: (p, xs[:0], h0, c0), "at least one step"),
    (lambda p, xs, h0, c0: (p, xs, h0[:, :2], c0), "h must have shape"),
    (lambda p, xs, h0, c0: (p, xs, h0, c0[:1]), "c must have shape"),
    (lambda p, xs, h0, c0: (p, xs.index_fill(0, torch.tensor([2]), float("nan")), h0, c0), "xs contains NaN"),
    (lambda p, xs, h0, c0: (p.weight_hh, xs, h0, c0), "params must be an LSTMParams"),
], ids=["xs-2d", "T=0", "h0-width", "c0-batch", "xs-nan", "params-type"])
def test_bad_inputs(bad, match):
    args = bad(*seeded_problem(4, 3, 2, 2, seed=1))
    with pytest.raises((ValueError, TypeError), match=match):
        unroll(*args)


# ---------------------------------------------------------------------------- one-step factors

@settings(deadline=None)
@given(problem=lstm_problems())
def test_factor_structure(problem):
    params, xs, h0, c0 = problem
    fac = cell_state_factors(params, xs, h0, c0)
    T, B, n = fac.f.shape
    assert fac.J.shape == fac.E.shape == (T, B, n, n)
    assert torch.equal(fac.E[0], torch.zeros_like(fac.E[0]))  # h_0 fixed: J_1 = D_1 = diag(f_1)
    assert torch.equal(fac.J[0], fac.D[0])
    assert torch.equal(fac.J, fac.D + fac.E)


@settings(deadline=None)
@given(problem=lstm_problems(max_T=4))
def test_state_transition_jacobians_match_autograd_per_step(problem):
    params, xs, h0, c0 = problem
    S = state_transition_jacobians(params, xs, h0, c0)
    run = unroll(params, xs, h0, c0)
    n = params.hidden_size
    for t in range(xs.shape[0]):
        for b in range(xs.shape[1]):
            x, h, c = xs[t:t + 1, b:b + 1], run.h_prev[t, b:b + 1], run.c_prev[t, b:b + 1]

            def step(hc, x=x):
                h_next, c_next = lstm_step(params, x[0], hc[:n].unsqueeze(0), hc[n:].unsqueeze(0))
                return torch.cat([h_next[0], c_next[0]])

            expected = torch.autograd.functional.jacobian(step, torch.cat([h[0], c[0]]))
            bound, _ = factor_bounds(params, x, unroll(params, x, h, c))
            tol = 2 * bound[0, 0].rounded(4).err
            assert_within(S[t, b], expected, tol, f"S_{t + 1} (example {b})")


# ---------------------------------------------------------------------------- long-range Jacobians

@settings(deadline=None)
@given(problem=lstm_problems())
def test_full_state_jacobian_matches_autograd(problem):
    params, xs, h0, c0 = problem
    err_S, _ = jacobian_errors(params, xs, h0, c0)
    assert_within(full_state_jacobian(params, xs, h0, c0), autograd_dcT_dc0(params, xs, h0, c0), 2 * err_S,
                  "dc_T/dc_0 (closed form vs autograd)")


@settings(deadline=None)
@given(problem=lstm_problems(zero_w_ho=True))
def test_note_product_is_exact_when_w_ho_is_zero(problem):
    """L6: with W_ho = 0 the note's product Π (D_t + K_t M_{t-1}) is the total derivative."""
    params, xs, h0, c0 = problem
    note = ordered_product(cell_state_factors(params, xs, h0, c0).J)
    err_S, err_J = jacobian_errors(params, xs, h0, c0)
    assert_within(note, autograd_dcT_dc0(params, xs, h0, c0), err_J + err_S, "note's product vs autograd (W_ho = 0)")
    assert_within(note, full_state_jacobian(params, xs, h0, c0), err_J + err_S,
                  "note's product vs full-state Jacobian (W_ho = 0)")


@settings(deadline=None)
@given(problem=lstm_problems(max_T=9), chunk=st.integers(1, 10))
def test_streamed_product_is_the_note_product(problem, chunk):
    """cell_state_product builds the same factors chunk by chunk and only reorders the products.

    Same factors (bit for bit: the same elementwise operations), multiplied in another order:
    each order is within γ_{(T-1) n} Π|J_t| of the exact product (Higham §3.5), so the two
    differ by at most twice that, plus T subnormal units for underflowing entries.
    """
    params, xs, h0, c0 = problem
    J = cell_state_factors(params, xs, h0, c0).J
    T, n = J.shape[0], J.shape[-1]
    tol = 2 * gamma(max(T - 1, 1) * n) * ordered_product_chain(J.abs()) + T * TINY
    streamed = cell_state_product(params, xs, h0, c0, chunk=chunk)
    assert streamed.shape == J.shape[1:] and streamed.dtype == F64
    assert_within(streamed, ordered_product(J), tol, f"streamed product (chunk {chunk}) vs tree product")


def test_streamed_product_rejects_a_bad_chunk():
    params, xs, h0, c0 = seeded_problem(3, 2, 2, 1, seed=0)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="chunk"):
            cell_state_product(params, xs, h0, c0, chunk=bad)


@settings(deadline=None)
@given(problem=lstm_problems(max_T=2))
def test_note_product_is_exact_for_two_steps_whatever_w_ho(problem):
    # h_0 is held fixed, so W_ho first matters through dh_1/dc_0 feeding o_2 into h_2, i.e. at T = 3.
    params, xs, h0, c0 = problem
    note = ordered_product(cell_state_factors(params, xs, h0, c0).J)
    err_S, err_J = jacobian_errors(params, xs, h0, c0)
    assert_within(note, full_state_jacobian(params, xs, h0, c0), err_J + err_S, "note's product vs full (T <= 2)")


def test_note_product_differs_for_generic_w_ho():
    """L6: with W_ho != 0 and T >= 3 the note's product is not the total derivative."""
    params, xs, h0, c0 = seeded_problem(6, 4, 3, 2, seed=7)
    note = ordered_product(cell_state_factors(params, xs, h0, c0).J)
    true = full_state_jacobian(params, xs, h0, c0)
    err_S, err_J = jacobian_errors(params, xs, h0, c0)
    assert_within(true, autograd_dcT_dc0(params, xs, h0, c0), 2 * err_S, "full vs autograd")
    gap = (note - true).abs()
    # A real difference, not rounding: many orders of magnitude outside the rounding bound.
    assert (gap > 1e6 * (err_J + err_S)).any(), f"largest gap {gap.max():.3e} vs bound {(err_J + err_S).max():.3e}"


# ---------------------------------------------------------------------------- ordered products

@st.composite
def factor_stacks(draw, *, max_T=12, max_n=5):
    T, n, B = draw(st.integers(1, max_T)), draw(st.integers(1, max_n)), draw(st.integers(1, 3))
    return draw(_array((T, B, n, n), -2, 2))


@settings(deadline=None)
@given(J=factor_stacks())
def test_tree_product_equals_chain(J):
    # Both are products of T factors with inner dimension n, each within
    # ((1 + γ_n)^{T-1} - 1) Π|J_t| <= γ_{(T-1) n} Π|J_t| of the exact product (Higham §3.5).
    T, n = J.shape[0], J.shape[-1]
    tol = 2 * gamma(max(T - 1, 1) * n) * ordered_product_chain(J.abs()) + T * TINY
    assert_within(ordered_product_tree(J), ordered_product_chain(J), tol, "tree vs chain")
    assert torch.equal(ordered_product(J, method="chain"), ordered_product_chain(J))
    assert torch.equal(ordered_product(J), ordered_product_tree(J))


def test_product_order_is_latest_on_the_left():
    J = torch.stack([torch.tensor([[1.0, 1.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]])]).double()
    expected = J[1] @ J[0]  # J_2 J_1
    assert not torch.equal(expected, J[0] @ J[1])
    assert torch.equal(ordered_product_chain(J), expected)
    assert torch.equal(ordered_product_tree(J), expected)


@pytest.mark.parametrize("bad", [torch.zeros(3, 2, 3), torch.zeros(0, 2, 2), torch.zeros(2, 2)],
                         ids=["not-square", "T=0", "no-time-axis"])
def test_product_rejects_bad_shapes(bad):
    for fn in (ordered_product_chain, ordered_product_tree):
        with pytest.raises(ValueError, match=r"\(T, ..., n, n\)"):
            fn(bad)
    with pytest.raises(ValueError, match="method"):
        ordered_product(torch.eye(2).expand(3, 2, 2), method="pairs")


# ---------------------------------------------------------------------------- log-space products (L8)

def sum_abs_logsigmoid(a_f):
    return torch.nn.functional.logsigmoid(a_f).abs().sum(dim=0)


@settings(deadline=None)
@given(a_f=_array((7, 3), -30, 30))
def test_log_forget_products_match_direct_product(a_f):
    # log Π σ(a) by Σ logsigmoid vs log of the directly multiplied product: at most 7 products,
    # 7 evaluations of 4u each and a 7-term sum, relative to the log's |terms|; no underflow at
    # |a| <= 30 over 7 steps (σ(-30)^7 ~ 1e-91).
    direct = torch.log(torch.sigmoid(a_f).prod(dim=0))
    via_logs = log_forget_products(a_f)
    via_gates = log_forget_products(f=torch.sigmoid(a_f))
    tol = gamma(7 * (ACT + 2)) * (sum_abs_logsigmoid(a_f) + 1)
    assert_within(via_logs, direct, tol, "Σ logsigmoid vs log Π σ")
    assert_within(via_gates, direct, tol, "Σ log f vs log Π σ")


def test_log_forget_products_over_1e5_steps_do_not_underflow():
    T = 100_000
    a_f = torch.ones(T, 4, dtype=F64)  # b_f = 1 at zero weights: f = σ(1) ~ 0.731
    log_prod = log_forget_products(a_f)
    assert torch.isfinite(log_prod).all()
    # Σ of T equal terms: exact up to γ_T relative (Higham (3.4)).
    expected = T * float(torch.nn.functional.logsigmoid(torch.tensor(1.0, dtype=F64)))
    assert ((log_prod - expected).abs() <= gamma(T) * abs(expected)).all()
    # The product itself (e^-31326) is far below float64's range: exp of the log underflows to 0,
    # its honest float64 value, and multiplying the gates directly ends at 0 or, rounding
    # 0.73 x 2^-1074 back up at every step, stuck at 2^-1074: no information either way,
    # which is why the log is returned.
    assert float(torch.exp(log_prod).max()) == 0.0
    assert float(torch.sigmoid(a_f).prod(0).max()) <= 2.0 ** -1074


def test_log_forget_products_keep_saturated_gates():
    # σ(40) rounds to 1 in float64, so Σ log f = 0, while Σ logsigmoid keeps T·(-e^{-40}).
    a_f = torch.full((1000, 1), 40.0, dtype=F64)
    assert float(log_forget_products(f=torch.sigmoid(a_f))) == 0.0
    assert float(log_forget_products(a_f)) < 0.0
    assert float(log_forget_products(f=torch.tensor([[0.5], [0.0]], dtype=F64))) == float("-inf")


def test_log_forget_products_arguments():
    with pytest.raises(ValueError, match="exactly one"):
        log_forget_products()
    with pytest.raises(ValueError, match="exactly one"):
        log_forget_products(torch.zeros(2), f=torch.zeros(2))
    with pytest.raises(ValueError, match="NaN or inf"):
        log_forget_products(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        log_forget_products(f=torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="floating-point"):
        log_forget_products(torch.ones(3, dtype=torch.int64))
    assert log_forget_products(torch.zeros(5, 2, dtype=torch.float32)).dtype == F64
    assert log_forget_products(torch.zeros(5, 2, dtype=torch.float32), dtype=None).dtype == torch.float32
    assert log_forget_products(torch.zeros(2, 5), dim=1).shape == (2,)
