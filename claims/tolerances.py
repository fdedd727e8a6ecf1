"""Tolerances, derived from the dtype's unit roundoff and the problem's size and magnitudes.

Its job: the dtype's floating-point parameters (u, η, the normal and finite range, from
torch.finfo), the elementary derivations every other tolerance module builds on (γ_k, a
sum of products, the pre-activation, a singular value by SVD, a product in log space), and
the one-step LSTM bounds (the forward step, its forget gate, its VJP). How errors accumulate
along a sequence is claims/long_range_tolerances.py; the vanilla RNN's bounds are
claims/rnn_tolerances.py, the residual branch's claims/residual_tolerances.py.

No number here is tuned to make a run pass. Each bound is a worst-case rounding-error
bound (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3) for computing the
LSTM step of CLAIMS.md in the given dtype from inputs that are exactly representable in
it (the strategies draw values exact in the dtype under test: `exact_in`), plus the same
bound for the float64 reference, which is also computed in floating point. bfloat16 and
float16 accumulate in float32 (the accumulation assumption, below `largest_finite`). Values (forward) and gradients
(vector-Jacobian products) have separate derivations: `forward_error`, `vjp_error`.

Notation: u = unit roundoff (2^-53 float64, 2^-24 float32, 2^-8 bfloat16, 2^-11 float16);
γ_k = k u / (1 - k u);
η = the smallest subnormal.
"""
from __future__ import annotations

from dataclasses import dataclass

import math

import torch

from lstm_claims.reference.lstm_step import LSTMParams, dsigmoid, dtanh, preactivations

# Underflow: a result below the smallest normal number keeps an *absolute* error of at
# most half the smallest subnormal η (gradual underflow), however small it is relative to
# the result (Higham §2.1: fl(x op y) = (x op y)(1 + δ) + η', |η'| <= η/2). Every bound
# below adds η per operation that produced a quantity, so a gradient of 1e-48 that
# float32 returns as 0 is within its allowance, as it must be.

# Accuracy of one evaluation of sigmoid/tanh, in units of u (k ulp of y is at most 2k u |y|).
# CPU: SLEEF's u10 exp and tanh, <= 1 ulp = 2u; sigmoid = 1 / (1 + exp(-a)) adds the
# roundings of the sum (the exp's error is damped by e/(1 + e) <= 1) and of the division:
# 4u. CUDA: libdevice expf and tanhf, <= 2 ulp = 4u (CUDA Programming Guide, "Mathematical
# functions"; torch builds without fast math); the sigmoid's two roundings make 6u. The
# bound covers both devices.
ACTIVATION_ULPS = 6

# |σ''| <= 1/(6√3) < 0.1 and |tanh''| <= 4/(3√3) < 0.77: how an error in a pre-activation
# moves σ' and tanh'. Used in the backward bound below.
SIGMOID_LIPSCHITZ, TANH_LIPSCHITZ = 0.25, 1.0


# --- the dtype's floating-point parameters, from torch.finfo -------------------------------
# One home for the numbers every bound is made of: nowhere else writes 2^-53, 2^-24, 2^-1074
# or 2^-1022 by hand. A binary format with p significand bits (the implicit one included)
# has finfo.eps = 2^(1-p) (the gap from 1 to the next number) and rounds to nearest with
# relative error at most u = eps / 2 = 2^-p; its smallest normal is finfo.tiny = 2^e_min,
# and its subnormals are spaced 2^(e_min + 1 - p) = tiny * eps apart, the smallest of them.
# float64: u = 2^-53, η = 2^-1074; float32: 2^-24, 2^-149; bfloat16: 2^-8, 2^-133;
# float16: 2^-11, 2^-24 (tests/meta/test_tolerances.py).

def _finfo(dtype: torch.dtype) -> torch.finfo:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"no tolerance is derived for dtype {dtype}: rounding-error bounds need a real "
                        f"floating-point dtype (torch.float64, torch.float32, torch.bfloat16, torch.float16, ...)")
    return torch.finfo(dtype)


def unit_roundoff(dtype: torch.dtype) -> float:
    """u = finfo.eps / 2: the largest relative error of one rounding to nearest (2^-53 for float64)."""
    return _finfo(dtype).eps / 2


def smallest_subnormal(dtype: torch.dtype) -> float:
    """η = finfo.tiny * finfo.eps: the spacing of the subnormals, the absolute error scale of underflow."""
    fi = _finfo(dtype)
    return fi.tiny * fi.eps


def smallest_normal(dtype: torch.dtype) -> float:
    """finfo.tiny: below it a result is subnormal and keeps only an absolute error bound (η / 2)."""
    return _finfo(dtype).tiny


def largest_finite(dtype: torch.dtype) -> float:
    """finfo.max: above it a result overflows to ±inf."""
    return _finfo(dtype).max


# float64's unit roundoff, 2^-53: the float64 references' (and the float64 SVDs', logs' and
# sums') rounding, used by every claim that bounds a float64 computation of its own.
U64 = unit_roundoff(torch.float64)


def gamma(k: int, dtype: torch.dtype) -> float:
    """γ_k: bound on the relative error of a sum or product of k+1 terms (any order, FMA or not)."""
    u = unit_roundoff(dtype)
    if k * u >= 1:
        raise ValueError(f"γ_{k} is undefined for {dtype} (k u >= 1)")
    return k * u / (1 - k * u)


# --- low precision: where a bfloat16 or float16 computation accumulates ------------------------
# THE ACCUMULATION ASSUMPTION (the one home of it). For a dtype narrower than float32
# (bfloat16, float16), torch computes a matrix product, an addmm, a sum or a mean by
# accumulating in float32 and rounding the result once to the dtype (CPU: mkldnn/oneDNN and
# the ATen reductions' `acc_type`; CUDA: cuBLAS with a float32 compute type, the default unless
# torch.backends.cuda.matmul.allow_{bf16,fp16}_reduced_precision_reduction is set, which the
# kit leaves off), and every elementwise op (sigmoid, tanh, *, +) loads its operands into
# float32, computes there and rounds its result once. A low-precision bound is therefore
#     γ_K(float32) for the K-term accumulation  +  one u of the dtype per rounding to the dtype,
# not γ_K(dtype): K u for bfloat16 is >= 1 at K = 256 (γ undefined) and would allow a gradient
# off by 100% at K = 128. An implementation that accumulates in bfloat16 or float16 itself
# departs from this assumption: its error grows like K u instead of u, and the kit reports it
# (failing L0 with the dtype named), with what it costs (the measured error over the allowance).
ACCUMULATION_DTYPE = torch.float32

# Roundings to the dtype of a pre-activation a = W_ih x + b_ih + W_hh h + b_hh after (or
# between) float32 accumulations: the worst composition of its four addends, each matrix
# product rounded once and each of the three additions rounded (torch.nn.LSTMCell on CPU:
# addmm(b_ih, x, W_ih) and addmm(b_hh, h, W_hh) rounded, then their sum: 3; the kit's
# reference cell: x@W rounded, + b_ih, h@W rounded, +, + b_hh: 5). A count, not a tuned number.
PREACTIVATION_ROUNDINGS = 5

# An activation in a low-precision dtype: sigmoid as 1/(1 + exp(-a)) is at most 3 elementwise
# ops, each computed in float32 (within ACTIVATION_ULPS float32 ulps, see above) and rounded
# once to the dtype: <= 3 u + ACTIVATION_ULPS u32 of its value (tanh: 1 op, covered).
LOW_PRECISION_ACTIVATION_ROUNDINGS = 3


def is_low_precision(dtype: torch.dtype) -> bool:
    """True for a floating dtype narrower than float32 (bfloat16, float16): it accumulates in float32."""
    return unit_roundoff(dtype) > unit_roundoff(ACCUMULATION_DTYPE)


def reduction_gamma(k: int, dtype: torch.dtype, roundings: int = 1) -> float:
    """Relative bound on a k-term reduction computed for `dtype` (any order, FMA or not).

    float32 and float64 (and wider): γ_k(dtype), unchanged. Narrower dtypes: accumulated in
    float32 and rounded to the dtype `roundings` times (the accumulation assumption above):
    (1 + γ_k(float32)) (1 + γ_roundings(dtype)) - 1.
    """
    if not is_low_precision(dtype):
        return gamma(k, dtype)
    return (1 + gamma(k, ACCUMULATION_DTYPE)) * (1 + gamma(roundings, dtype)) - 1


def activation_relative_error(dtype: torch.dtype) -> float:
    """Relative error of one σ or tanh computed in `dtype` (ACTIVATION_ULPS u; low precision: see above)."""
    if not is_low_precision(dtype):
        return ACTIVATION_ULPS * unit_roundoff(dtype)
    return LOW_PRECISION_ACTIVATION_ROUNDINGS * unit_roundoff(dtype) \
        + ACTIVATION_ULPS * unit_roundoff(ACCUMULATION_DTYPE)


def underflow_error(dtype: torch.dtype) -> float:
    """Absolute error of one elementwise op of the LSTM step whose result underflows.

    Gradual underflow gives η/2 (Higham §2.1), but fused kernels (oneDNN's LSTM, cuDNN) may run
    with flush-to-zero, returning 0 for any subnormal result: up to the smallest normal number of
    the dtype they compute in (float32 for bfloat16 and float16, which then round gradually to the
    dtype: + η of the dtype). float32 returns σ's 1.6e-38 · 0.4 as 0 in torch.nn.LSTM's kernel.
    Only values below 1e-38 (float32) or 1e-308 (float64) move by it.
    """
    if is_low_precision(dtype):
        return smallest_normal(ACCUMULATION_DTYPE) + smallest_subnormal(dtype)
    return smallest_normal(dtype)


def sum_error(magnitude, terms: int, dtype, roundings: int = PREACTIVATION_ROUNDINGS):
    """Bound on |fl(Σ of `terms` products) - exact| given magnitude = Σ |each product| (exact inputs).

    Higham eq. 3.5: in any order, with or without FMA, |fl(Σ x_k y_k) - Σ x_k y_k| <= γ_K Σ |x_k y_k|
    for K = terms; with gradual underflow each of the K products and K sums may add an absolute
    η/2 more (Higham §2.1), at most 2Kη in all, however small the sum. The one home of this
    derivation: the LSTM's and the vanilla RNN's pre-activations and the residual branch's
    hidden layer all use it. A dtype narrower than float32 accumulates in float32 and rounds
    to the dtype at most `roundings` times (reduction_gamma): each rounding adds u of a partial
    sum (<= magnitude) and, near underflow, η/2 of the dtype.
    """
    if is_low_precision(dtype):
        return reduction_gamma(terms, dtype, roundings) * magnitude \
            + 2 * terms * smallest_subnormal(ACCUMULATION_DTYPE) + roundings * smallest_subnormal(dtype)
    return gamma(terms, dtype) * magnitude + 2 * terms * smallest_subnormal(dtype)


def preactivation_magnitude(params, x, h):
    """Σ|terms| of a = W_ih x + b_ih + W_hh h + b_hh: |x||W_ih|ᵀ + |b_ih| + |h||W_hh|ᵀ + |b_hh|, (..., rows).

    `params` is an LSTMParams (rows: the 4n gates) or a vanilla RNN's RNNParams (the same four
    fields; rows: n). x (..., m), h (..., n), any leading batch shape. The magnitude that
    sum_error turns into the pre-activation's rounding bound (K = m + n + 2 terms).
    """
    return x.abs() @ params.weight_ih.abs().T + params.bias_ih.abs() + h.abs() @ params.weight_hh.abs().T \
        + params.bias_hh.abs()


def preactivation_error(params, x, h, dtype) -> torch.Tensor:
    """Bound on |fl(a) - a| for a = W_ih x + b_ih + W_hh h + b_hh computed in `dtype` from exact inputs.

    a is a sum of K = m + n + 2 products (the biases times 1): sum_error of its magnitude.
    """
    K = params.input_size + params.hidden_size + 2
    return sum_error(preactivation_magnitude(params, x, h), K, dtype)


def svd_relative_error(n: int, dtype=torch.float64) -> float:
    """Relative bound 4 n u on a singular value of an n x n matrix computed by SVD (spectral norm, σ_min).

    LAPACK's SVD is backward stable: the computed singular values are exactly those of A + ΔA
    with ||ΔA||_2 <= c n u ||A||_2, c = 4 for its Householder bidiagonalisation; by Weyl's
    inequality each singular value moves by at most ||ΔA||_2, so |σ̂ - σ| <= 4 n u ||A||_2.
    The one home of this bound (L3, L7, G1, V2, R2).
    """
    return 4 * n * unit_roundoff(dtype)


def svd_bound(norm, n: int, dtype=torch.float64):
    """Bound on |computed σ - σ| for an n x n matrix of spectral norm `norm` (svd_relative_error · norm)."""
    return svd_relative_error(n, dtype) * norm


def frobenius(A: torch.Tensor) -> torch.Tensor:
    """||A||_F per matrix: a bound on ||A||_2, used to turn elementwise bounds into norm bounds."""
    return torch.linalg.matrix_norm(A, ord="fro")


def exp_of_sum_error(logs: torch.Tensor) -> float:
    """Relative error bound of exp(Σ logs) evaluated in float64, the logs themselves computed.

    Each log (log, log1p) is within 1 ulp, 2u of its value, the sum of L of them within
    γ_L Σ|log|: the exponent is off by at most Δ = (2u + γ_L) Σ|log|, which exp turns into a
    relative e^Δ - 1, and exp's own ulp adds 2u. For a product of 21 factors of 1e-4 the
    exponent is -190 and Δ ≈ 190 u: the bound grows with |Σ log|, not only with L. (Used by
    L7 and R2, which compare such products.)
    """
    u = U64
    delta = (2 * u + gamma(logs.numel(), torch.float64)) * logs.abs().sum().item()
    return math.expm1(delta) * (1 + 2 * u) + 2 * u


@dataclass(frozen=True)
class ForwardError:
    """Elementwise absolute error bounds of one step computed in `dtype`, each (B, n)."""

    dtype: torch.dtype
    terms: int  # K: terms summed per pre-activation
    a: dict  # gate -> bound on |fl(a) - a|
    gate: dict  # gate -> bound on |fl(σ or tanh) - exact|
    c_next: torch.Tensor
    tanh_c: torch.Tensor
    h_next: torch.Tensor


def forward_error(params: LSTMParams, x, h, c, dtype, *, h_error=None) -> ForwardError:
    """Bounds on |cell_dtype - exact| for a cell computing the standard LSTM step in `dtype`.

    params, x, h, c: the exact (float64) inputs. h_error: an elementwise bound on the
    error of h itself when the cell is fed a rounded h (L2 feeds h = o ⊙ tanh(c)).
    """
    u = unit_roundoff(dtype)
    n, m = params.hidden_size, params.input_size
    # a = W_ih x + b_ih + W_hh h + b_hh is a sum of K = m + n + 2 products: in any order
    # |fl(a) - a| <= γ_K Σ|terms| + 2Kη (preactivation_error).
    K = m + n + 2
    eta = underflow_error(dtype)
    err_a = preactivation_error(params, x, h, dtype)
    if h_error is not None:  # a rounded h moves a by at most |W_hh| |Δh|
        err_a = err_a + (1 + reduction_gamma(n, dtype)) * (h_error @ params.weight_hh.abs().T)
    err_a = dict(zip("ifgo", err_a.chunk(4, dim=1)))
    gt = preactivations(params, x, h)
    i, f, g, o = gt.i, gt.f, gt.g, gt.o
    # An activation moves by (Lipschitz constant) x (input error), then rounds (ACTIVATION_ULPS u of its value).
    ev, e4 = activation_relative_error(dtype), ACTIVATION_ULPS * eta
    # The Lipschitz constant on the interval the computed pre-activation lies in: σ' and tanh' are even and
    # decrease in |a|, so on [a - e, a + e] they are at most σ'(max(|a| - e, 0)) (<= 1/4) and
    # tanh'(max(|a| - e, 0)) (<= 1): the mean value theorem, not a choice. A saturated gate (|a| = 8 off by
    # 15 u) moves by σ'(8) 15 u ~ 0.005 u, not by 15 u / 4: what lets a float16 cell state kept in bfloat16
    # (8 u) show against a bound of about 6 u (tests/meta/test_low_precision_catalogue.py).
    a_ex = {"i": gt.a_i, "f": gt.a_f, "g": gt.a_g, "o": gt.a_o}
    # (σ' as σ(z) σ(-z) and tanh' as cosh(z)^-2: 1 - σ(62) and 1 - tanh(62)^2 are 0 in float64.)
    lip = {k: (torch.cosh(z).pow(-2) if k == "g" else torch.sigmoid(z) * torch.sigmoid(-z))
           for k in "ifgo" for z in [(a_ex[k].abs() - err_a[k]).clamp_min(0)]}
    # σ = 1 / (1 + e^-a) returns 0 once e^-a overflows, i.e. for a true σ below 1 / finfo.max of the
    # dtype it is computed in (float32 for bfloat16 and float16): an absolute error of at most that,
    # which no relative bound covers (float32: σ(-98.6) = 1.5e-43 returned as 0).
    e_sig = e4 + 1 / torch.finfo(ACCUMULATION_DTYPE if is_low_precision(dtype) else dtype).max
    gate = {"i": lip["i"] * err_a["i"] + ev * i + e_sig, "f": lip["f"] * err_a["f"] + ev * f + e_sig,
            "g": lip["g"] * err_a["g"] + ev * g.abs() + e4, "o": lip["o"] * err_a["o"] + ev * o + e_sig}
    # c' = f c + i g: errors of f, i, g carried by the product rule (exactly, with the
    # second-order term), and two products and one sum rounded: γ_3 of |f c| + |i g|.
    c_next = f * c + i * g
    err_c = c.abs() * gate["f"] + g.abs() * gate["i"] + i * gate["g"] + gate["i"] * gate["g"] \
        + gamma(3, dtype) * (f * c.abs() + i * g.abs()) + 3 * eta
    t = torch.tanh(c_next)
    err_t = TANH_LIPSCHITZ * err_c + ev * t.abs() + e4
    err_h = t.abs() * gate["o"] + o * err_t + gate["o"] * err_t + u * (o * t.abs()) + eta
    return ForwardError(dtype, K, err_a, gate, err_c, err_t, err_h)


def forget_gate_error(params: LSTMParams, x, h, dtype) -> torch.Tensor:
    """Bound on |f computed in `dtype` - σ(a^f)| for inputs exact in `dtype`, (N, n).

    forward_error's derivation restricted to the forget gate: a^f is a sum of K = m + n + 2
    products, off by preactivation_error; σ moves by at most 1/4 of that and rounds within
    activation_relative_error(dtype) of its value (plus ACTIVATION_ULPS η near underflow).
    """
    eta = smallest_subnormal(dtype)
    n = params.hidden_size
    K = params.input_size + n + 2
    a_f_mag = preactivation_magnitude(params, x, h)[:, n:2 * n]
    a_f = (x @ params.weight_ih.T + params.bias_ih + h @ params.weight_hh.T + params.bias_hh)[:, n:2 * n]
    return 0.25 * sum_error(a_f_mag, K, dtype) + activation_relative_error(dtype) * torch.sigmoid(a_f) \
        + ACTIVATION_ULPS * eta


def direct_term_error(params: LSTMParams, x, h, dtype) -> torch.Tensor:
    """Bound on |the cell's ∂c_t/∂c_(t-1) (h fixed, = f by L1) - σ(a^f) in float64|: both gates' errors,
    and the backward's product 1 · f (one rounding of a value <= f + error)."""
    e = forget_gate_error(params, x, h, dtype)
    e64 = forget_gate_error(params, x, h, torch.float64)
    f = torch.sigmoid((x @ params.weight_ih.T + params.bias_ih + h @ params.weight_hh.T
                       + params.bias_hh)[:, params.hidden_size:2 * params.hidden_size])
    return e + e64 + unit_roundoff(dtype) * (f + e)


def _vjp_magnitudes(params, x, h, c, v_h, v_c, fac):
    """The backward of reference.lstm_step.lstm_step_vjp evaluated on absolute values.

    `fac` holds |o|, |tanh c'|, |tanh'(c')|, |i|, |f|, |g|, |σ'(a^i)|, |σ'(a^f)|,
    |tanh'(a^g)|, |σ'(a^o)| (possibly enlarged by their error bounds). Every output is a
    polynomial with non-negative coefficients in these, so enlarging a factor enlarges
    the output: magnitudes(values + errors) - magnitudes(values) bounds the propagated error.
    """
    dc = v_c.abs() + v_h.abs() * fac["o"] * fac["dtanh_c"]
    do = v_h.abs() * fac["tanh_c"]
    da = torch.cat([dc * fac["g"] * fac["ds_i"], dc * c.abs() * fac["ds_f"], dc * fac["i"] * fac["dt_g"],
                    do * fac["ds_o"]], dim=1)
    db = da.sum(0)
    return {"x": da @ params.weight_ih.abs(), "h": da @ params.weight_hh.abs(), "c": dc * fac["f"],
            "weight_ih": da.T @ x.abs(), "weight_hh": da.T @ h.abs(), "bias_ih": db, "bias_hh": db}


def vjp_error(params: LSTMParams, x, h, c, v_h, v_c, dtype, *, h_error=None, batch: int | None = None,
              factors: "VJPFactors | None" = None) -> dict:
    """Elementwise bounds on |VJP computed in `dtype` - exact VJP| for each of x, h, c and the 4 parameters.

    The backward rounds along a chain of at most 6 products and sums before the final
    reductions (over 4n gate rows for x and h, over the batch B for parameters):
    γ_{6 + max(4n, B)} of the magnitudes. The forward errors of the saved activations
    enter through the factors they multiply (see _vjp_magnitudes). Underflow: each factor
    and each cotangent is enlarged by the absolute error η of the operations that made it
    (at most 6 before the reductions), and each reduction term adds η.
    
    factors: vjp_factors(params, x, h, c, dtype, h_error=h_error, batch=batch) computed beforehand (all
    that does not depend on the cotangents: the per-step loops of long_range_tolerances.py compute them
    for every step in one call).
    """
    fac = factors if factors is not None else vjp_factors(params, x, h, c, dtype, h_error=h_error, batch=batch)
    eta = fac.eta
    base = _vjp_magnitudes(params, x, h, c, v_h, v_c, fac.exact)
    enlarged = _vjp_magnitudes(params, x, h, c, v_h.abs() + 6 * eta, v_c.abs() + 6 * eta, fac.enlarged)
    return {name: fac.rel * enlarged[name] + (enlarged[name] - base[name]) + fac.k * eta for name in base}


@dataclass(frozen=True)
class VJPFactors:
    """What vjp_error needs besides the cotangents: the backward's factors (exact, and enlarged by their
    error bounds and 6 η), the reduction's γ (`rel`, over `k` terms) and η. Rows may be sliced (`rows`)."""

    exact: dict
    enlarged: dict
    rel: float
    k: int
    eta: float

    def rows(self, start: int, stop: int) -> "VJPFactors":
        return VJPFactors({n: t[start:stop] for n, t in self.exact.items()},
                          {n: t[start:stop] for n, t in self.enlarged.items()}, self.rel, self.k, self.eta)


def vjp_factors(params: LSTMParams, x, h, c, dtype, *, h_error=None, batch: int | None = None) -> VJPFactors:
    """The cotangent-free part of vjp_error (its docstring derives it), per row of x, h, c."""
    u, eta = unit_roundoff(dtype), underflow_error(dtype)
    fe = forward_error(params, x, h, c, dtype, h_error=h_error)
    gt = preactivations(params, x, h)
    i, f, g, o = gt.i, gt.f, gt.g, gt.o
    t = torch.tanh(f * c + i * g)
    exact = {"o": o, "tanh_c": t.abs(), "dtanh_c": 1 - t * t, "i": i, "f": f, "g": g.abs(),
             "ds_i": dsigmoid(gt.a_i), "ds_f": dsigmoid(gt.a_f), "dt_g": dtanh(gt.a_g), "ds_o": dsigmoid(gt.a_o)}
    # Error of each factor: σ' = σ(1-σ) from a σ off by e is off by <= e + 3u (|1 - 2σ| <= 1, 3 roundings);
    # tanh' = 1 - t² from a t off by e is off by <= 2e + e² + 2u.
    err = {"o": fe.gate["o"], "tanh_c": fe.tanh_c, "dtanh_c": 2 * fe.tanh_c + fe.tanh_c ** 2 + 2 * u,
           "i": fe.gate["i"], "f": fe.gate["f"], "g": fe.gate["g"],
           "ds_i": fe.gate["i"] + 3 * u, "ds_f": fe.gate["f"] + 3 * u,
           "dt_g": 2 * fe.gate["g"] + fe.gate["g"] ** 2 + 2 * u, "ds_o": fe.gate["o"] + 3 * u}
    if is_low_precision(dtype):
        # The absolute 3u above is 4.7% of σ' <= 1/4 in bfloat16: a 10% error in a gate's derivative
        # would hide in it. In low precision, σ' = σ(1-σ) is a product of non-negative factors (torch's
        # sigmoid backward: (1 - y) y; the hand-written backwards: s (1 - s)), 1 - s exact for s >= 1/2
        # (Sterbenz) and rounded once otherwise: relatively within γ_3 of itself. And σ̂(1-σ̂) - σ(1-σ)
        # = (σ̂ - σ)(1 - σ̂ - σ): an error e in σ moves σ' by at most e (|1 - 2σ| + e), not e.
        # (A backward computing σ - σ² with each op rounded to the dtype departs from this assumption.)
        for gate, ds in (("i", "ds_i"), ("f", "ds_f"), ("o", "ds_o")):
            e = fe.gate[gate]
            err[ds] = e * ((1 - 2 * exact[gate]).abs() + e) + gamma(3, dtype) * (exact[ds] + e * ((1 - 2 * exact[gate]).abs() + e))
    enlarged = {k: exact[k].abs() + err[k] + 6 * eta for k in exact}
    # batch: the rows autograd sums the parameter gradients over; a caller that stacks several
    # cotangents of one batch as rows (L2's n Jacobian rows at once) passes the batch the cell saw.
    B = x.shape[0] if batch is None else batch
    k = 6 + max(4 * params.hidden_size, B)
    # Low precision: the 6 elementwise roundings happen in the dtype, the reduction over
    # max(4n, B) terms in float32, rounded once, and autograd may add the contributions of
    # two outputs to one gradient (one more rounding): γ_max(4n,B)(float32) with 8 roundings.
    rel = reduction_gamma(max(4 * params.hidden_size, B), dtype, 8) if is_low_precision(dtype) \
        else gamma(k, dtype)
    return VJPFactors(exact, enlarged, rel, k, eta)


def forward_tolerance(params, x, h, c, dtype, *, h_error=None) -> dict:
    """Allowed |cell - reference| for (h_next, c_next): the cell's bound plus the float64 reference's."""
    cell, ref = forward_error(params, x, h, c, dtype, h_error=h_error), forward_error(params, x, h, c, torch.float64)
    return {"h_next": cell.h_next + ref.h_next, "c_next": cell.c_next + ref.c_next}


def vjp_tolerance(params, x, h, c, v_h, v_c, dtype, *, h_error=None, batch: int | None = None,
                  factors: tuple | None = None) -> dict:
    """Allowed |cell VJP - reference VJP|: the cell's bound plus the float64 reference's.

    factors: (the cell's, the reference's) VJPFactors, from vjp_tolerance_factors, or None."""
    cell_f, ref_f = factors if factors is not None else (None, None)
    cell = vjp_error(params, x, h, c, v_h, v_c, dtype, h_error=h_error, batch=batch, factors=cell_f)
    ref = vjp_error(params, x, h, c, v_h, v_c, torch.float64, batch=batch, factors=ref_f)
    return {k: cell[k] + ref[k] for k in cell}


def vjp_tolerance_factors(params, xs, hs, cs, dtype) -> list:
    """vjp_tolerance's factors for T steps at once: xs (T, R, m), hs and cs (T, R, n) the inputs of each step;
    returns T pairs (cell's, reference's). One call over the T R rows instead of T calls of R rows (the
    factors are per row; `batch` keeps R, the rows autograd sums a parameter's gradient over in one step)."""
    T, R = xs.shape[:2]
    flat = [t.reshape(T * R, t.shape[-1]) for t in (xs, hs, cs)]
    cell, ref = (vjp_factors(params, *flat, d, batch=R) for d in (dtype, torch.float64))
    return [(cell.rows(t * R, (t + 1) * R), ref.rows(t * R, (t + 1) * R)) for t in range(T)]
