"""The standard LSTM step of CLAIMS.md, in closed form (forward and backward).

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh,   split a^i, a^f, a^g, a^o (torch's order)
    i = σ(a^i)  f = σ(a^f)  g = tanh(a^g)  o = σ(a^o)
    c_t = f ⊙ c_{t-1} + i ⊙ g        h_t = o ⊙ tanh(c_t)

`lstm_step_vjp` is the backward written by hand from these equations (no autograd), so
that a cell's autograd can be compared with an independent derivation. Every function
takes batched tensors: x (B, m), h and c (B, n).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

GATE_ORDER = ("i", "f", "g", "o")


def dsigmoid(z: torch.Tensor) -> torch.Tensor:
    """σ'(z) = σ(z)(1 - σ(z))."""
    s = torch.sigmoid(z)
    return s * (1 - s)


def dtanh(z: torch.Tensor) -> torch.Tensor:
    """tanh'(z) = 1 - tanh(z)²."""
    t = torch.tanh(z)
    return 1 - t * t


@dataclass(frozen=True)
class LSTMParams:
    """The four parameter tensors of torch.nn.LSTMCell, rows in gate order i, f, g, o."""

    weight_ih: torch.Tensor  # (4n, m)
    weight_hh: torch.Tensor  # (4n, n)
    bias_ih: torch.Tensor  # (4n,)
    bias_hh: torch.Tensor  # (4n,)

    def __post_init__(self):
        w_ih, w_hh, b_ih, b_hh = self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, torch.Tensor):
                raise TypeError(f"LSTMParams.{f.name} must be a torch.Tensor, got {type(v).__name__}")
            if not v.is_floating_point():
                raise TypeError(f"LSTMParams.{f.name} must be floating point, got {v.dtype}")
        if w_hh.dim() != 2 or w_hh.shape[0] != 4 * w_hh.shape[1]:
            raise ValueError(f"weight_hh must have shape (4n, n), got {tuple(w_hh.shape)}")
        n = w_hh.shape[1]
        if w_ih.dim() != 2 or w_ih.shape[0] != 4 * n:
            raise ValueError(f"weight_ih must have shape (4n, m) = ({4 * n}, m), got {tuple(w_ih.shape)}")
        for name, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
            if tuple(b.shape) != (4 * n,):
                raise ValueError(f"{name} must have shape (4n,) = ({4 * n},), got {tuple(b.shape)}")
        dtypes = {v.dtype for v in (w_ih, w_hh, b_ih, b_hh)}
        if len(dtypes) != 1:
            raise TypeError(f"LSTMParams tensors must share one dtype, got {sorted(map(str, dtypes))}")

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    def hh_block(self, gate: str) -> torch.Tensor:
        """W_h<gate>: the n x n row block of weight_hh for gate in 'ifgo'."""
        k, n = GATE_ORDER.index(gate), self.hidden_size
        return self.weight_hh[k * n:(k + 1) * n]

    def to(self, dtype=None, device=None) -> "LSTMParams":
        return LSTMParams(*(getattr(self, f.name).to(dtype=dtype, device=device) for f in fields(self)))

    def map(self, fn) -> "LSTMParams":
        return LSTMParams(*(fn(getattr(self, f.name)) for f in fields(self)))

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Gates:
    """Pre-activations and gate values of one step, each (B, n)."""

    a_i: torch.Tensor
    a_f: torch.Tensor
    a_g: torch.Tensor
    a_o: torch.Tensor

    @property
    def i(self):
        return torch.sigmoid(self.a_i)

    @property
    def f(self):
        return torch.sigmoid(self.a_f)

    @property
    def g(self):
        return torch.tanh(self.a_g)

    @property
    def o(self):
        return torch.sigmoid(self.a_o)


def check_step_inputs(params: LSTMParams, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None) -> None:
    """One clear error naming the offending argument for wrong shapes, dtypes or NaN."""
    n, m = params.hidden_size, params.input_size
    named = [("x", x, m), ("h", h, n)] + ([("c", c, n)] if c is not None else [])
    batch = x.shape[0] if x.dim() == 2 else None
    for name, t, width in named:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 2 or t.shape[1] != width or t.shape[0] != batch:
            raise ValueError(f"{name} must have shape (batch, {width}) with the batch of x, got {tuple(t.shape)}")
        if t.dtype != params.weight_hh.dtype:
            raise TypeError(f"{name} has dtype {t.dtype} but the parameters have {params.weight_hh.dtype}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or inf")
    for pname, p in params.as_dict().items():
        if not torch.isfinite(p).all():
            raise ValueError(f"parameter {pname} contains NaN or inf")


def preactivations(params: LSTMParams, x: torch.Tensor, h: torch.Tensor) -> Gates:
    a = x @ params.weight_ih.T + params.bias_ih + h @ params.weight_hh.T + params.bias_hh
    return Gates(*a.chunk(4, dim=1))


def lstm_step(params: LSTMParams, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
    """(h_next, c_next) of the standard LSTM."""
    check_step_inputs(params, x, h, c)
    gt = preactivations(params, x, h)
    c_next = gt.f * c + gt.i * gt.g
    h_next = gt.o * torch.tanh(c_next)
    return h_next, c_next


@dataclass(frozen=True)
class StepGrads:
    """Vector-Jacobian products of one step with respect to each input and parameter."""

    x: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor
    weight_ih: torch.Tensor
    weight_hh: torch.Tensor
    bias_ih: torch.Tensor
    bias_hh: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def lstm_step_vjp(params, x, h, c, v_h, v_c) -> StepGrads:
    """(v_h, v_c)ᵀ ∂(h_next, c_next)/∂(x, h, c, params), derived by hand:

        dc = v_c + v_h ⊙ o ⊙ tanh'(c_next)      do = v_h ⊙ tanh(c_next)
        da^i = dc ⊙ g ⊙ σ'(a^i)   da^f = dc ⊙ c ⊙ σ'(a^f)   da^g = dc ⊙ i ⊙ tanh'(a^g)   da^o = do ⊙ σ'(a^o)
        d x = da W_ih   d h = da W_hh   d c = dc ⊙ f   dW_ih = daᵀ x   dW_hh = daᵀ h   db = Σ_batch da
    """
    check_step_inputs(params, x, h, c)
    gt = preactivations(params, x, h)
    i, f, g, o = gt.i, gt.f, gt.g, gt.o
    c_next = f * c + i * g
    dc = v_c + v_h * o * dtanh(c_next)
    do = v_h * torch.tanh(c_next)
    da = torch.cat([dc * g * dsigmoid(gt.a_i), dc * c * dsigmoid(gt.a_f),
                    dc * i * dtanh(gt.a_g), do * dsigmoid(gt.a_o)], dim=1)
    db = da.sum(0)
    return StepGrads(x=da @ params.weight_ih, h=da @ params.weight_hh, c=dc * f,
                     weight_ih=da.T @ x, weight_hh=da.T @ h, bias_ih=db, bias_hh=db.clone())
