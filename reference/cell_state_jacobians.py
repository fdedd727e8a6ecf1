"""Closed forms of the one-step cell-state Jacobian (CLAIMS.md L1, L2, L5), batched.

With h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}) and o_{t-1} given,

    dc_t/dc_{t-1} = D_t + K_t M_{t-1}
    D_t     = diag(f_t)
    K_t     = diag(c_{t-1} ⊙ σ'(a^f)) W_hf + diag(g_t ⊙ σ'(a^i)) W_hi + diag(i_t ⊙ tanh'(a^g)) W_hg
    M_{t-1} = diag(o_{t-1} ⊙ tanh'(c_{t-1}))

and the L5 bounds on the indirect term E_t = K_t M_{t-1}:

    ||E_t|| <= B1 = (||c ⊙ σ'(a^f)||_∞ ||W_hf|| + ||g ⊙ σ'(a^i)||_∞ ||W_hi|| + ||i ⊙ tanh'(a^g)||_∞ ||W_hg||) ||o ⊙ tanh'(c)||_∞
            <= B2 = ||c||_∞ ||W_hf|| / 4 + ||W_hi|| / 4 + ||W_hg||

Shapes: matrices are (B, n, n), diagonals (B, n), per-example scalars (B,).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lstm_claims.reference.lstm_step import LSTMParams, check_step_inputs, dsigmoid, dtanh, preactivations


@dataclass(frozen=True)
class CellStateJacobian:
    """The pieces of dc_t/dc_{t-1} at one step."""

    f: torch.Tensor  # (B, n) forget gate: D_t = diag(f)
    K: torch.Tensor  # (B, n, n) ∂c_t/∂h_{t-1}
    M: torch.Tensor  # (B, n) diagonal of ∂h_{t-1}/∂c_{t-1}
    gate_factors: dict  # {"f": c ⊙ σ'(a^f), "i": g ⊙ σ'(a^i), "g": i ⊙ tanh'(a^g)}, each (B, n)

    @property
    def D(self) -> torch.Tensor:
        return torch.diag_embed(self.f)

    @property
    def E(self) -> torch.Tensor:
        """The indirect term K_t M_{t-1}."""
        return self.K * self.M.unsqueeze(1)

    @property
    def J(self) -> torch.Tensor:
        return self.D + self.E


def gate_path(params: LSTMParams, gates, c_prev: torch.Tensor, *,
              out: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """K_t = ∂c_t/∂h_{t-1} (c_{t-1} held fixed), and its three diagonal factors.

    Any leading batch shape (..., n) works. K is built in place, one pass per gate (into
    `out` when given, shape (..., n, n)), in the order f, i, g of the docstring's sum.
    """
    factors = {
        "f": c_prev * dsigmoid(gates.a_f),
        "i": gates.g * dsigmoid(gates.a_i),
        "g": gates.i * dtanh(gates.a_g),
    }
    K = torch.mul(factors["f"].unsqueeze(-1), params.hh_block("f"), out=out)
    for k in ("i", "g"):
        K.addcmul_(factors[k].unsqueeze(-1), params.hh_block(k))
    return K, factors


def cell_state_jacobian(params: LSTMParams, x: torch.Tensor, c_prev: torch.Tensor,
                        o_prev: torch.Tensor) -> CellStateJacobian:
    """dc_t/dc_{t-1} in closed form when h_{t-1} = o_prev ⊙ tanh(c_prev)."""
    if o_prev.shape != c_prev.shape:
        raise ValueError(f"o_prev must have the shape of c_prev {tuple(c_prev.shape)}, got {tuple(o_prev.shape)}")
    h_prev = o_prev * torch.tanh(c_prev)
    check_step_inputs(params, x, h_prev, c_prev)
    gates = preactivations(params, x, h_prev)
    K, factors = gate_path(params, gates, c_prev)
    return CellStateJacobian(f=gates.f, K=K, M=o_prev * dtanh(c_prev), gate_factors=factors)


def spectral_norm(A: torch.Tensor) -> torch.Tensor:
    """||A||_2 of a matrix or a batch of matrices."""
    return torch.linalg.matrix_norm(A, ord=2)


def indirect_term_bounds(params: LSTMParams, jac: CellStateJacobian, c_prev: torch.Tensor):
    """(B1, B2) of L5, per example."""
    norms = {k: spectral_norm(params.hh_block(k)) for k in ("f", "i", "g")}
    sup = lambda t: t.abs().amax(dim=1)  # noqa: E731  ||.||_∞ of each example's vector
    b1 = sum(sup(jac.gate_factors[k]) * norms[k] for k in ("f", "i", "g")) * sup(jac.M)
    b2 = sup(c_prev) * norms["f"] / 4 + norms["i"] / 4 + norms["g"]
    return b1, b2
