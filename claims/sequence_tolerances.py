"""How far a module's per-step outputs over a whole sequence may be from the reference: derived.

A sequence module returns h_1..h_T and the final (h_T, c_T), not its cell states between.
L0's sequence check compares each h_t with one reference step taken from the module's own
h_(t-1) (exact in the dtype: it is the module's output) and the reconstructed c_(t-1)
(claims/unrolled_sequence.py: float64, from the module's h's). The module's own c_(t-1)
differs from the reconstruction by at most E_(t-1), carried forward:

    E_0 = 0 (c_0 is the drawn value, exact in the dtype);
    E_t = e_c(t) + e64_c(t) + (f_t + e_f(t)) (1 + γ_3) E_(t-1)

where e_c(t), e_f(t) are the one-step bounds of claims/tolerances.forward_error in the
module's dtype (c' and the forget gate, for inputs x_t, h_(t-1), c_(t-1)), e64_c(t) the same
for the float64 reconstruction, and (f + e_f)(1 + γ_3) how the step carries an error in its
input c (∂c_t/∂c_(t-1) = f_t with h_(t-1) fixed, L1; its product and sum round). f <= 1, so
E grows at most by a sum of one-step bounds, linearly in T, never exponentially.

The allowed difference of h_t is then the one-step bound of h' (module and reference) plus
(o_t + e_o(t))(1 + ε_tanh)(1 + u) times the carried (f_t + e_f)(1 + γ_3) E_(t-1): tanh is
1-Lipschitz, its rounding (relative ε_tanh = activation_relative_error) and the product's (u)
apply to the perturbed value too (a second-order term, kept: in bfloat16 u is 2^-8 and
E_(t-1) may be a sizeable part of |c|); of c_T, E_T itself.

Low precision (bfloat16, float16): every ingredient is the dtype's. forward_error carries
the accumulation assumption (claims/tolerances.py: products and sums in float32, rounded
once to the dtype, underflow at float32's smallest normal plus the dtype's η), and the
carry's γ_3 is the three roundings to the dtype of f c + i g (3u < 1 in every dtype, so γ_3
is defined). E grows linearly in T: in bfloat16 a long sequence with f near 1 allows a
drift of several u |c| per step, which is what keeping c in the dtype may really cost
(c = 300 plus i g = 0.4 rounds to 300 in bfloat16); the per-step h_t checks stay sharp
where E is small (early steps, forgetting gates), and a reset or lost state (an error of
order |c|) is caught wherever E stays below it (tests/meta/test_low_precision_sequences.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lstm_claims.claims.tolerances import activation_relative_error, forward_error, gamma, unit_roundoff
from lstm_claims.reference.lstm_step import LSTMParams, lstm_step, preactivations


@dataclass(frozen=True)
class SequenceForwardBound:
    """The reference along the module's trajectory and the allowed differences (all float64, CPU)."""

    h: torch.Tensor  # (T, B, n): one reference step from the module's h_(t-1) and the reconstructed c_(t-1)
    h_allowed: torch.Tensor  # (T, B, n)
    c_T: torch.Tensor  # (B, n): the reconstructed c_T
    c_T_allowed: torch.Tensor  # (B, n): E_T
    c_allowed: torch.Tensor  # (T, B, n): E_1..E_T, the bound on |module's c_t - reconstructed c_t|


def sequence_forward_bound(params: LSTMParams, xs, h0, c0, hs, dtype) -> SequenceForwardBound:
    """The bound of the module docstring for a module that returned hs (T, B, n) from (h0, c0) over xs.

    The one-step bounds are row-wise, so they are evaluated for all T steps at once (the T·B
    rows (x_t, h_(t-1), c_(t-1)) stacked); only the reconstruction of c and the carried E run
    step by step.
    """
    T, B, n = hs.shape
    g3 = gamma(3, dtype)
    h_prev = torch.cat([h0.unsqueeze(0), hs[:-1]])
    c, c_prev, h_ref = c0, [], []
    for x, h in zip(xs, h_prev):
        c_prev.append(c)
        h_next, c = lstm_step(params, x, h, c)
        h_ref.append(h_next)
    rows = lambda t: t.reshape(T * B, -1)  # noqa: E731
    X, H, C = rows(xs), rows(h_prev), rows(torch.stack(c_prev))
    fe, fr = forward_error(params, X, H, C, dtype), forward_error(params, X, H, C, torch.float64)
    gates = preactivations(params, X, H)
    steps = lambda t: t.reshape(T, B, n)  # noqa: E731
    # How the step carries an error in its input c: (f + e_f)(1 + γ_3); then into h through o.
    carry = steps((gates.f + fe.gate["f"]) * (1 + g3))
    into_h = steps((gates.o + fe.gate["o"]) * (1 + activation_relative_error(dtype)) * (1 + unit_roundoff(dtype)))
    e_c, e_h = steps(fe.c_next + fr.c_next), steps(fe.h_next + fr.h_next)
    E, h_tol, c_tol = torch.zeros_like(c0), [], []
    for t in range(T):
        carried = carry[t] * E
        h_tol.append(e_h[t] + into_h[t] * carried)
        E = e_c[t] + carried
        c_tol.append(E)
    return SequenceForwardBound(torch.stack(h_ref), torch.stack(h_tol), c, E, torch.stack(c_tol))
