"""L0 where real LSTM kernels break: the cell is the standard LSTM at kernel sizes, strided
layouts, inference paths and extreme pre-activations, and it has no side effects.

L0 says the cell under test computes the standard LSTM step. claims/l0_standard_cell.py
checks that on small contiguous problems in training mode; the checks here look where
custom kernels (CUDA, Triton, C++, fused modules) fail in public bug reports:

- sizes: tile tails and block caps (widths 2^k ± 1 up to 257), large batches, batches
  that are not a multiple of 8 (strategies/kernel_problems.py), forward and backward;
- layouts: x a time slice X[:, t] of a batch-first sequence, h in transposed storage, c
  with expanded (stride-0) rows must give the values the same numbers give contiguous;
- paths: the forward under torch.no_grad(), torch.inference_mode() and module.eval()
  (a cached graph that ignored the mode: pytorch #173640); the module's mode is restored;
- side effects: a call leaves the caller's x, h, c and the parameters unchanged; new
  parameter values written between calls are used (no stale cached weights: mxnet #16037);
  two calls on the same inputs agree (their bitwise difference is reported as a figure);
- extremes: pre-activations of hundreds to thousands, where exp-based formulas overflow:
  no NaN or inf, and saturated gates as the reference has them.

Every comparison uses L0's derived tolerances (claims/tolerances.py) against the float64
reference (reference/lstm_step.py); a failure names the regime.
"""
from __future__ import annotations

import dataclasses

import torch

from lstm_claims.claims.cell_under_test import PARAM_NAMES
from lstm_claims.claims.tolerances import forward_tolerance, gamma, vjp_tolerance
from lstm_claims.claims.violation import ClaimViolation, assert_within, where
from lstm_claims.reference.lstm_step import lstm_step, lstm_step_vjp

WHY_FORWARD = "rounding bound: γ_K of Σ|W||x| per pre-activation, K = m + n + 2, carried through σ, tanh and the products"
WHY_BACKWARD = "rounding bound: γ_(6+max(4n,B)) of the backward's magnitudes plus the forward errors of the saved gates"


def _ctx(problem, device, dtype, regime: str) -> str:
    return f"{regime}: {where(device, dtype)}, B={problem.batch} m={problem.input_size} n={problem.hidden_size}"


def _on(t, device, dtype):
    return t.to(device=device, dtype=dtype, copy=True)  # a copy: the drawn problem must not change


def _compare_forward(problem, out, ctx) -> float:
    h_ref, c_ref = lstm_step(problem.params, problem.x, problem.h, problem.c)
    tol = forward_tolerance(problem.params, problem.x, problem.h, problem.c, out[0].dtype)
    h, c = (t.detach().to("cpu", torch.float64) for t in out)
    return max(assert_within("L0", "c_next", c, c_ref, tol["c_next"], context=ctx, why=WHY_FORWARD),
               assert_within("L0", "h_next", h, h_ref, tol["h_next"], context=ctx, why=WHY_FORWARD))


def check_layouts(cut, problem, device, dtype) -> dict:
    """Strided inputs give the standard LSTM's values and gradients (forward and VJPs)."""
    __tracebackhide__ = True
    # Expanded rows need equal rows: every row of c is the first one.
    p = dataclasses.replace(problem, c=problem.c[:1].expand_as(problem.c).clone())
    B, m, n = p.batch, p.input_size, p.hidden_size
    ctx = _ctx(p, device, dtype, "non-contiguous inputs (x = X[:, 1] of a batch-first (B, 3, m) tensor, "
                                 "h in transposed storage, c with expanded rows)")
    cell = cut.with_params(p.params, device, dtype)
    X = torch.zeros(B, 3, m, dtype=torch.float64)
    X[:, 1] = p.x
    X = _on(X, device, dtype).requires_grad_(True)
    Ht = _on(p.h.t().contiguous(), device, dtype).requires_grad_(True)
    C1 = _on(p.c[:1], device, dtype).requires_grad_(True)
    x, h, c = X[:, 1], Ht.t(), C1.expand(B, n)
    if B > 1 and n > 1 and (x.is_contiguous() or h.is_contiguous() or c.is_contiguous()):
        raise AssertionError("kit bug: the strided views are contiguous")  # B, n > 1 make all three strided
    out = cut.step(cell, x, h, c)
    worst = _compare_forward(p, out, ctx)
    params = [getattr(cell, name) for name in PARAM_NAMES]
    outs = [(o, v) for o, v in zip(out, (p.v_h, p.v_c)) if o.requires_grad]
    grads = torch.autograd.grad([o for o, _ in outs], [X, Ht, C1, *params],
                                [_on(v, device, dtype) for _, v in outs], allow_unused=True)
    grads = [(torch.zeros_like(t) if g is None else g).detach().to("cpu", torch.float64)
             for t, g in zip([X, Ht, C1, *params], grads)]
    ref = lstm_step_vjp(p.params, p.x, p.h, p.c, p.v_h, p.v_c).as_dict()
    tol = vjp_tolerance(p.params, p.x, p.h, p.c, p.v_h, p.v_c, dtype)
    got = {"x": grads[0][:, 1], "h": grads[1].t(), **dict(zip(PARAM_NAMES, grads[3:]))}
    if grads[0][:, [0, 2]].abs().max() > 0:
        raise ClaimViolation("L0", f"{ctx}, backward: the gradient reached the time steps X[:, 0] and X[:, 2] "
                                   f"that the cell never read")
    for name, value in got.items():
        worst = max(worst, assert_within("L0", f"d(v·out)/d{name}", value, ref[name], tol[name],
                                         context=ctx + ", backward", why=WHY_BACKWARD))
    # c's rows are one tensor expanded: its gradient is the sum of the rows' (B more terms summed).
    c_ref = ref["c"].sum(0, keepdim=True)
    c_tol = tol["c"].sum(0, keepdim=True) + gamma(B, dtype) * ref["c"].abs().sum(0, keepdim=True)
    worst = max(worst, assert_within("L0", "d(v·out)/dc summed over the expanded rows", grads[2], c_ref, c_tol,
                                     context=ctx + ", backward",
                                     why=WHY_BACKWARD + ", plus γ_B of the sum over the B expanded rows"))
    return {"worst_error_over_allowed_strided": worst}


def check_inference_paths(cut, problem, device, dtype) -> dict:
    """The forward under no_grad, inference_mode and eval() equals the standard LSTM's; the mode is restored."""
    __tracebackhide__ = True
    cell = cut.with_params(problem.params, device, dtype)
    was_training = cell.training
    x, h, c = (_on(t, device, dtype) for t in (problem.x, problem.h, problem.c))
    worst = 0.0
    try:
        for path in ("torch.no_grad()", "torch.inference_mode()", "module.eval()"):
            if path == "module.eval()":
                cell.eval()
                out = cut.step(cell, x, h, c)
            else:
                with (torch.no_grad() if path == "torch.no_grad()" else torch.inference_mode()):
                    out = cut.step(cell, x, h, c)
            worst = max(worst, _compare_forward(problem, out, _ctx(problem, device, dtype, f"forward under {path}")))
    finally:
        cell.train(was_training)
    if cell.training != was_training:
        raise ClaimViolation("L0", f"{where(device, dtype)}: the module's training mode was not restored")
    return {"worst_error_over_allowed_inference": worst}


def check_side_effects(cut, problem, device, dtype) -> dict:
    """A call changes nothing it was handed; a second call on the same inputs agrees with the first."""
    __tracebackhide__ = True
    cell = cut.with_params(problem.params, device, dtype)
    ctx = _ctx(problem, device, dtype, "side effects")
    params_before = {name: getattr(cell, name).detach().clone() for name in PARAM_NAMES}
    outs = []
    for requires_grad in (False, True):  # plain tensors (inference), then leaves that require grad (training)
        x, h, c = (_on(t, device, dtype).requires_grad_(requires_grad) for t in (problem.x, problem.h, problem.c))
        before = [t.detach().clone() for t in (x, h, c)]
        out = cut.step(cell, x, h, c)
        if requires_grad:
            live = [(o, v) for o, v in zip(out, (problem.v_h, problem.v_c)) if o.requires_grad]
            torch.autograd.backward([o for o, _ in live], [_on(v, device, dtype) for _, v in live])
        for name, t, b in zip("xhc", (x, h, c), before):
            if not torch.equal(t.detach(), b):
                k = int((t.detach() != b).flatten().nonzero()[0])
                raise ClaimViolation("L0", f"{ctx}: the call modified the caller's {name} in place "
                                           f"({'training' if requires_grad else 'inference'}; element {k} was "
                                           f"{b.flatten()[k].item():.10g}, is {t.detach().flatten()[k].item():.10g})")
        outs.append([o.detach().clone() for o in out])
        _compare_forward(problem, out, ctx)
    for name, b in params_before.items():
        if not torch.equal(getattr(cell, name).detach(), b):
            raise ClaimViolation("L0", f"{ctx}: the call modified the parameter {name} in place")
    cell.zero_grad(set_to_none=True)
    rerun = max((a - b).abs().max().item() for a, b in zip(*outs)) if outs[0][0].numel() else 0.0
    return {"rerun_max_abs_difference": rerun}


def check_weights_rewritten(cut, problem, device, dtype) -> dict:
    """Parameters written in place between calls are the ones the next call uses (no stale cached weights)."""
    __tracebackhide__ = True
    cell = cut.with_params(problem.params, device, dtype)
    x, h, c = (_on(t, device, dtype) for t in (problem.x, problem.h, problem.c))
    first = cut.step(cell, x, h, c)
    _compare_forward(problem, first, _ctx(problem, device, dtype, "first call"))
    # New values, exact in every dtype the old ones were: negated and with the gate rows rotated.
    new = dataclasses.replace(problem, params=problem.params.map(lambda t: -t.roll(1, 0)))
    cell = cut.with_params(new.params, device, dtype)
    out = cut.step(cell, x, h, c)
    worst = _compare_forward(new, out, _ctx(new, device, dtype, "second call after new parameters were written "
                                                                  "in place (stale cached weights?)"))
    return {"worst_error_over_allowed_rewritten": worst}


def in_regime(regime: str, check):
    """check(cut, problem, device, dtype) with its ClaimViolation's message prefixed by the regime."""
    def run(cut, problem, device, dtype):
        __tracebackhide__ = True
        try:
            return check(cut, problem, device, dtype)
        except ClaimViolation as exc:
            raise ClaimViolation(exc.claim_id, f"{regime} ({problem.drawn}): {str(exc)[len(exc.claim_id) + 3:]}",
                                 exc.figures) from None
    return run
