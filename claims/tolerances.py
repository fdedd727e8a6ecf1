"""Tolerances, derived from the dtype's unit roundoff and the problem's size and magnitudes.

No number here is tuned to make a run pass. Each bound is a worst-case rounding-error
bound (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3) for computing the
LSTM step of CLAIMS.md in the given dtype from inputs that are exactly representable in
it (the strategies draw float32-exact values), plus the same bound for the float64
reference, which is also computed in floating point. Values (forward) and gradients
(vector-Jacobian products) have separate derivations: `forward_error`, `vjp_error`.

Notation: u = unit roundoff (2^-24 float32, 2^-53 float64); γ_k = k u / (1 - k u).
"""
from __future__ import annotations

from dataclasses import dataclass

import math

import torch

from lstm_claims.reference.lstm_step import LSTMParams, dsigmoid, dtanh, preactivations

UNIT_ROUNDOFF = {torch.float64: 2.0 ** -53, torch.float32: 2.0 ** -24}

# Underflow: a result below the smallest normal number keeps an *absolute* error of at
# most half the smallest subnormal η (gradual underflow), however small it is relative to
# the result (Higham §2.1: fl(x op y) = (x op y)(1 + δ) + η', |η'| <= η/2). Every bound
# below adds η per operation that produced a quantity, so a gradient of 1e-48 that
# float32 returns as 0 is within its allowance, as it must be.
SMALLEST_SUBNORMAL = {torch.float64: 2.0 ** -1074, torch.float32: 2.0 ** -149}

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


def unit_roundoff(dtype: torch.dtype) -> float:
    try:
        return UNIT_ROUNDOFF[dtype]
    except KeyError:
        raise TypeError(f"no tolerance is derived for dtype {dtype}; the suite checks "
                        f"{sorted(map(str, UNIT_ROUNDOFF))}") from None


def smallest_subnormal(dtype: torch.dtype) -> float:
    unit_roundoff(dtype)  # one error message for an unsupported dtype
    return SMALLEST_SUBNORMAL[dtype]


def gamma(k: int, dtype: torch.dtype) -> float:
    """γ_k: bound on the relative error of a sum or product of k+1 terms (any order, FMA or not)."""
    u = unit_roundoff(dtype)
    if k * u >= 1:
        raise ValueError(f"γ_{k} is undefined for {dtype} (k u >= 1)")
    return k * u / (1 - k * u)


def exp_of_sum_error(logs: torch.Tensor) -> float:
    """Relative error bound of exp(Σ logs) evaluated in float64, the logs themselves computed.

    Each log (log, log1p) is within 1 ulp, 2u of its value, the sum of L of them within
    γ_L Σ|log|: the exponent is off by at most Δ = (2u + γ_L) Σ|log|, which exp turns into a
    relative e^Δ - 1, and exp's own ulp adds 2u. For a product of 21 factors of 1e-4 the
    exponent is -190 and Δ ≈ 190 u: the bound grows with |Σ log|, not only with L. (Used by
    L7 and R2, which compare such products.)
    """
    u = UNIT_ROUNDOFF[torch.float64]
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
    # |fl(a) - a| <= γ_K Σ|terms| (Higham eq. 3.5).
    K = m + n + 2
    A = x.abs() @ params.weight_ih.abs().T + params.bias_ih.abs() + h.abs() @ params.weight_hh.abs().T \
        + params.bias_hh.abs()
    eta = smallest_subnormal(dtype)
    err_a = gamma(K, dtype) * A + 2 * K * eta  # K products and K sums, each may underflow
    if h_error is not None:  # a rounded h moves a by at most |W_hh| |Δh|
        err_a = err_a + (1 + gamma(n, dtype)) * (h_error @ params.weight_hh.abs().T)
    err_a = dict(zip("ifgo", err_a.chunk(4, dim=1)))
    gt = preactivations(params, x, h)
    i, f, g, o = gt.i, gt.f, gt.g, gt.o
    # An activation moves by (Lipschitz constant) x (input error), then rounds (ACTIVATION_ULPS u of its value).
    ev, e4 = ACTIVATION_ULPS * u, ACTIVATION_ULPS * eta
    gate = {"i": SIGMOID_LIPSCHITZ * err_a["i"] + ev * i + e4, "f": SIGMOID_LIPSCHITZ * err_a["f"] + ev * f + e4,
            "g": TANH_LIPSCHITZ * err_a["g"] + ev * g.abs() + e4, "o": SIGMOID_LIPSCHITZ * err_a["o"] + ev * o + e4}
    # c' = f c + i g: errors of f, i, g carried by the product rule (exactly, with the
    # second-order term), and two products and one sum rounded: γ_3 of |f c| + |i g|.
    c_next = f * c + i * g
    err_c = c.abs() * gate["f"] + g.abs() * gate["i"] + i * gate["g"] + gate["i"] * gate["g"] \
        + gamma(3, dtype) * (f * c.abs() + i * g.abs()) + 3 * eta
    t = torch.tanh(c_next)
    err_t = TANH_LIPSCHITZ * err_c + ev * t.abs() + e4
    err_h = t.abs() * gate["o"] + o * err_t + gate["o"] * err_t + u * (o * t.abs()) + eta
    return ForwardError(dtype, K, err_a, gate, err_c, err_t, err_h)


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


def vjp_error(params: LSTMParams, x, h, c, v_h, v_c, dtype, *, h_error=None) -> dict:
    """Elementwise bounds on |VJP computed in `dtype` - exact VJP| for each of x, h, c and the 4 parameters.

    The backward rounds along a chain of at most 6 products and sums before the final
    reductions (over 4n gate rows for x and h, over the batch B for parameters):
    γ_{6 + max(4n, B)} of the magnitudes. The forward errors of the saved activations
    enter through the factors they multiply (see _vjp_magnitudes). Underflow: each factor
    and each cotangent is enlarged by the absolute error η of the operations that made it
    (at most 6 before the reductions), and each reduction term adds η.
    """
    u, eta = unit_roundoff(dtype), smallest_subnormal(dtype)
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
    base = _vjp_magnitudes(params, x, h, c, v_h, v_c, exact)
    enlarged = _vjp_magnitudes(params, x, h, c, v_h.abs() + 6 * eta, v_c.abs() + 6 * eta,
                               {k: exact[k].abs() + err[k] + 6 * eta for k in exact})
    k = 6 + max(4 * params.hidden_size, x.shape[0])
    return {name: gamma(k, dtype) * enlarged[name] + (enlarged[name] - base[name]) + k * eta for name in base}


def forward_tolerance(params, x, h, c, dtype, *, h_error=None) -> dict:
    """Allowed |cell - reference| for (h_next, c_next): the cell's bound plus the float64 reference's."""
    cell, ref = forward_error(params, x, h, c, dtype, h_error=h_error), forward_error(params, x, h, c, torch.float64)
    return {"h_next": cell.h_next + ref.h_next, "c_next": cell.c_next + ref.c_next}


def vjp_tolerance(params, x, h, c, v_h, v_c, dtype, *, h_error=None) -> dict:
    """Allowed |cell VJP - reference VJP|: the cell's bound plus the float64 reference's."""
    cell = vjp_error(params, x, h, c, v_h, v_c, dtype, h_error=h_error)
    ref = vjp_error(params, x, h, c, v_h, v_c, torch.float64)
    return {k: cell[k] + ref[k] for k in cell}
