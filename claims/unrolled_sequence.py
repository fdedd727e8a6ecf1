"""Running a sequence module (torch.nn.LSTM's contract, a SequenceAdapter) over a sequence through its own forward.

The claims over sequences (L6-L9, G1-G4) and L0's sequence checks see the module's own
time loop: its chunking, the state it carries across chunk boundaries, its persistent
kernels. claims/unrolled_cell.py calls `run_sequence` instead of stepping the cell
itself whenever the implementation under test is a sequence module.

What a sequence module does not return is read off what it does return:
- a cotangent on h_t (any t) goes to the t-th per-step output;
- a cotangent on c_t goes to the final c of the module run over the first t steps (one
  more forward of the module per such t < T, all from the same leaf tensors, so one
  backward pass sums them);
- the cell states c_1..c_(T-1) between the ends are not outputs of torch.nn.LSTM. The
  closed forms are evaluated along the module's trajectory, so they are reconstructed in
  float64 from the module's own h_(t-1) (the gates depend only on x_t and h_(t-1)):
  c_t = f_t c_(t-1) + i_t g_t, from the drawn c_0; c_T is the module's own. How far the
  reconstruction may be from the module's internal c_t (a sum of one-step rounding
  errors, carried through f <= 1) is derived in claims/sequence_tolerances.py.
"""
from __future__ import annotations

import torch

from lstm_claims.claims.cell_under_test import CellUnderTest
from lstm_claims.reference.lstm_step import LSTMParams, lstm_step
from lstm_claims.reference.unrolled_backward import LSTMSequence


def _as64(t):
    return t.detach().to("cpu", torch.float64)


def reconstructed_cell_states(params: LSTMParams, xs, h0, c0, hs, c_T=None) -> torch.Tensor:
    """c_1..c_T (T, B, n) float64: c_t = f_t c_(t-1) + i_t g_t with the gates of (x_t, h_(t-1)), the h's the
    module's own (h_0, hs[:-1]); c_T replaced by the module's own when given."""
    cs, c = [], c0
    prev = torch.cat([h0.unsqueeze(0), hs[:-1]])
    for x, h in zip(xs, prev):
        _, c = lstm_step(params, x, h, c)
        cs.append(c)
    cs = torch.stack(cs)
    if c_T is not None:
        cs[-1] = c_T
    return cs


def run_sequence(cut: CellUnderTest, cell, seq: LSTMSequence, T: int, device, dtype, inject: dict | None,
                 *, layout: str = "time_first"):
    """The CellRun of claims/unrolled_cell.run for a sequence module (see the module docstring)."""
    # What the two runs share (unrolled_cell imports this module, so not at the top).
    from lstm_claims.claims.unrolled_cell import CellRun, injected_gradients

    if inject is None:
        with torch.no_grad():
            h0, c0 = (t.to(device=device, dtype=dtype) for t in (seq.h0, seq.c0))
            hs, (_, c_T) = cut.sequence(cell, seq.xs[:T].to(device=device, dtype=dtype), h0, c0, layout=layout)
        hs64 = _as64(hs)
        cs = reconstructed_cell_states(seq.params, seq.xs[:T], _as64(h0), _as64(c0), hs64, _as64(c_T))
        return CellRun(_as64(h0), _as64(c0), hs64, cs, None)
    leaf = lambda t: t.to(device=device, dtype=dtype).detach().requires_grad_(True)  # noqa: E731
    xs, h0, c0 = leaf(seq.xs[:T]), leaf(seq.h0), leaf(seq.c0)
    hs, (_, c_T) = cut.sequence(cell, xs, h0, c0, layout=layout)
    outs, cots = [], []
    for t in sorted(k for k in inject if k <= T):
        v_h, v_c = inject[t]
        if bool((v_h != 0).any()) and hs.requires_grad:
            outs.append(hs[t - 1])
            cots.append(v_h.to(device=device, dtype=dtype))
        if bool((v_c != 0).any()):
            c_t = c_T if t == T else cut.sequence(cell, xs[:t], h0, c0, layout=layout)[1][1]
            if c_t.requires_grad:
                outs.append(c_t)
                cots.append(v_c.to(device=device, dtype=dtype))
    grads = injected_gradients(cell, outs, cots, h0, c0, xs)
    hs64 = _as64(hs)
    cs = reconstructed_cell_states(seq.params, seq.xs[:T], _as64(h0), _as64(c0), hs64, _as64(c_T))
    return CellRun(_as64(h0), _as64(c0), hs64, cs, grads)

