"""Sequence problems (`LSTMSequence`) and the backward of an unrolled LSTM along a given trajectory.

`LSTMSequence` is the one record of a sequence problem (parameters, inputs, initial state)
for every claim that runs the cell under test over several steps (L6-L9, G1-G4).

The backward, in closed form (CLAIMS.md G1, G3, G4): chaining the hand-written one-step backward `reference.lstm_step.lstm_step_vjp` from the
last step to the first gives, without autograd, the gradient of cotangents placed on any
of the outputs (h_t, c_t) with respect to h_0, c_0, every input x_t and the four
parameters (summed over steps and batch, as autograd accumulates them).

The trajectory is *given* (h_t, c_t for t = 1..T), not recomputed: the G-claims evaluate
this closed form on the very states the cell under test produced, so that rounding in the
cell's forward does not separate the two. (A chaotic trajectory computed in float32 leaves
the float64 one after a hundred steps or so; each step's Jacobian at the cell's own states
is still exactly what the cell's autograd differentiates.)

`step_vjp_magnitudes(..., e_h, e_c)` is the same backward with every factor replaced by its
absolute value, an elementwise upper bound on |J_t|ᵀ e: how far an error e in a step's
cotangent can move each of that step's VJPs. The claims use it to carry rounding-error
bounds from step to step (claims.long_range_tolerances.unrolled_vjp_bound, which follows
the chain of `backward_steps`).

Shapes: xs (T, B, m); h0, c0 (B, n); hs, cs (T, B, n); cotangents (B, n).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from lstm_claims.pretty import repr_pretty
from lstm_claims.reference.lstm_step import LSTMParams, StepGrads, dsigmoid, dtanh, lstm_step_vjp, preactivations
from lstm_claims.reference.sequence_shape import SequenceShape

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _tensor_repr(t: torch.Tensor, limit: int) -> str:
    return repr(t.numpy().tolist()) if t.numel() <= limit else f"<{tuple(t.shape)} tensor, not printed>"


@dataclass(frozen=True)
class LSTMSequence(SequenceShape):
    """An LSTM unrolled over inputs xs (T, B, m) from the initial state h0, c0 (B, n), with its parameters.

    The one record of a sequence problem: the long-range strategies (strategies/long_range_sequences.py,
    L6-L9), the G-claims' strategies (strategies/gating_sequences.py), the stored constructions
    (reference/exploding_construction.py, L7's and L9's examples) all build it, and the cell
    under test is run over it (claims/unrolled_cell.py).

    Values are float64 holding numbers exactly representable in float32 (the strategies and
    constructions make them so), so a float32 cell and the float64 reference see the same inputs.
    """

    params: LSTMParams
    xs: torch.Tensor
    h0: torch.Tensor
    c0: torch.Tensor
    drawn: dict = field(default_factory=dict, compare=False)  # how it was drawn or constructed

    def __post_init__(self):
        n, m = self.params.hidden_size, self.params.input_size
        if self.xs.dim() != 3 or self.xs.shape[2] != m or self.xs.shape[0] < 1:
            raise ValueError(f"xs must have shape (T >= 1, B, m={m}), got {tuple(self.xs.shape)}")
        for name in ("h0", "c0"):
            t = getattr(self, name)
            if tuple(t.shape) != (self.xs.shape[1], n):
                raise ValueError(f"{name} must have shape (B, n) = ({self.xs.shape[1]}, {n}), got {tuple(t.shape)}")

    @property
    def output_recurrence_is_zero(self) -> bool:
        """W_ho = 0: o_t does not read h_{t-1} (L6's condition)."""
        return bool((self.params.hh_block("o") == 0).all())

    def with_params(self, params: LSTMParams) -> "LSTMSequence":
        """The same inputs and initial state under other parameters (L9: the forget bias shifted)."""
        return LSTMSequence(params, self.xs, self.h0, self.c0, self.drawn)

    def truncated(self, steps: int) -> "LSTMSequence":
        return LSTMSequence(self.params, self.xs[:steps], self.h0, self.c0, self.drawn)

    def replicated(self, copies: int) -> "LSTMSequence":
        """The batch repeated `copies` times (row r of copy j is row r of the original), to run
        several cotangents through one forward: rows of a batch never mix in an LSTM."""
        rep = lambda t, d: t.repeat_interleave(copies, dim=d)  # noqa: E731
        return LSTMSequence(self.params, rep(self.xs, 1), rep(self.h0, 0), rep(self.c0, 0), self.drawn)

    def as_json(self) -> dict:
        """Everything needed to rebuild the problem, JSON-able (for a recorded counterexample)."""
        out = {"T": self.steps, "B": self.batch, "m": self.input_size, "n": self.hidden_size,
               "drawn": dict(self.drawn)}
        out.update({k: v.tolist() for k, v in self.params.as_dict().items()})
        out.update(h0=self.h0.tolist(), c0=self.c0.tolist())
        if self.xs.numel() <= 4096:
            out["xs"] = self.xs.tolist()
        elif "input_exp" in self.drawn:  # strategies.long_range_sequences.sequence_problems: inputs from a seed
            out["xs"] = f"seeded_uniform({tuple(self.xs.shape)}, {self.drawn['input_exp']}, {self.drawn.get('seed')})"
        else:
            out["xs"] = f"<{tuple(self.xs.shape)} tensor, see drawn>"
        return out

    _repr_pretty_ = repr_pretty  # Hypothesis prints the __repr__ below (lstm_claims/pretty.py)

    def __repr__(self) -> str:
        parts = [f"T={self.steps}, B={self.batch}, m={self.input_size}, n={self.hidden_size}, drawn={self.drawn}"]
        for name, t in [*self.params.as_dict().items(), ("h0", self.h0), ("c0", self.c0)]:
            parts.append(f"{name}={t.numpy().tolist()!r}")
        parts.append(f"xs={_tensor_repr(self.xs, 256)}")
        return "LSTMSequence(" + ", ".join(parts) + ")"


@dataclass(frozen=True)
class UnrolledGrads:
    """Gradients of the cotangents placed on the outputs, with respect to everything the run reads."""

    h0: torch.Tensor  # (B, n)
    c0: torch.Tensor  # (B, n)
    xs: torch.Tensor  # (T, B, m)
    weight_ih: torch.Tensor
    weight_hh: torch.Tensor
    bias_ih: torch.Tensor
    bias_hh: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def params(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in PARAM_NAMES}


def previous_states(h0, c0, hs, cs):
    """(h_0..h_{T-1}, c_0..c_{T-1}), each (T, B, n): the state each step reads."""
    return torch.cat([h0.unsqueeze(0), hs[:-1]]), torch.cat([c0.unsqueeze(0), cs[:-1]])


def step_vjp_magnitudes(params: LSTMParams, x, h, c, e_h, e_c) -> dict:
    """Upper bounds on |J|ᵀ e for the step at (x, h, c) and non-negative cotangent errors (e_h, e_c).

    The backward of lstm_step_vjp with every factor taken in absolute value: each output
    is a sum of products, and |Σ Π| <= Σ Π |.|, so the result bounds how much an error of
    e in the step's cotangent can change each VJP (keys as StepGrads.as_dict()).
    """
    gt = preactivations(params, x, h)
    i, f, g, o = gt.i, gt.f, gt.g, gt.o
    c_next = f * c + i * g
    dc = e_c + e_h * o * dtanh(c_next)
    do = e_h * torch.tanh(c_next).abs()
    da = torch.cat([dc * g.abs() * dsigmoid(gt.a_i), dc * c.abs() * dsigmoid(gt.a_f),
                    dc * i * dtanh(gt.a_g), do * dsigmoid(gt.a_o)], dim=1)
    db = da.sum(0)
    return {"x": da @ params.weight_ih.abs(), "h": da @ params.weight_hh.abs(), "c": dc * f,
            "weight_ih": da.T @ x.abs(), "weight_hh": da.T @ h.abs(), "bias_ih": db, "bias_hh": db.clone()}


@dataclass(frozen=True)
class BackwardStep:
    """Step t of the chained backward: what it reads, the cotangent it receives, and its VJPs."""

    t: int
    x: torch.Tensor  # x_t (B, m)
    h: torch.Tensor  # h_{t-1} (B, n)
    c: torch.Tensor  # c_{t-1} (B, n)
    v_h: torch.Tensor  # the cotangent on h_t: from step t + 1, plus inject[t] if t is injected
    v_c: torch.Tensor
    injected: bool  # t in inject
    vjp: StepGrads  # lstm_step_vjp at (x, h, c) for (v_h, v_c)


def _check_inject(inject: dict, hs: torch.Tensor) -> int:
    T = max(inject)
    if not 1 <= min(inject) <= T <= hs.shape[0]:
        raise ValueError(f"inject steps must lie in 1..{hs.shape[0]}, got {sorted(inject)}")
    return T


def backward_steps(seq: LSTMSequence, hs: torch.Tensor, cs: torch.Tensor, inject: dict):
    """The steps of unrolled_vjp's chain, from T = max(inject) down to 1 (a generator of BackwardStep).

    For whoever needs more than the sum: the carried rounding bound of the G-claims
    (claims.long_range_tolerances.unrolled_vjp_bound) follows the same chain step by step.
    """
    T = _check_inject(inject, hs)
    p = seq.params
    h_prev, c_prev = previous_states(seq.h0, seq.c0, hs, cs)
    zeros = torch.zeros_like(seq.h0)
    v_h, v_c = zeros, zeros
    for t in range(T, 0, -1):
        if t in inject:
            v_h, v_c = v_h + inject[t][0], v_c + inject[t][1]
        x, h, c = seq.xs[t - 1], h_prev[t - 1], c_prev[t - 1]
        r = lstm_step_vjp(p, x, h, c, v_h, v_c)
        yield BackwardStep(t, x, h, c, v_h, v_c, t in inject, r)
        v_h, v_c = r.h, r.c


def unrolled_vjp(seq: LSTMSequence, hs: torch.Tensor, cs: torch.Tensor, inject: dict) -> UnrolledGrads:
    """Σ over the injected cotangents of vᵀ d(h_t, c_t)/d(h_0, c_0, xs, params), by chaining lstm_step_vjp.

    inject: {t: (v_h, v_c)} for steps t in 1..T (cotangents on h_t and c_t, (B, n) each).
    hs, cs: the trajectory h_1..h_T, c_1..c_T the derivative is taken along, (T, B, n).
    """
    T = _check_inject(inject, hs)
    dx = torch.zeros_like(seq.xs[:T])
    dparams = {name: torch.zeros_like(t) for name, t in seq.params.as_dict().items()}
    v_h, v_c = torch.zeros_like(seq.h0), torch.zeros_like(seq.c0)
    for step in backward_steps(seq, hs, cs, inject):
        r = step.vjp
        dx[step.t - 1] = r.x
        for name in dparams:
            dparams[name] += getattr(r, name)
        v_h, v_c = r.h, r.c
    return UnrolledGrads(h0=v_h, c0=v_c, xs=dx, **dparams)
