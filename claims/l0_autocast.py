"""L0 under autocast: the float32 module run under torch.autocast(device, dtype=bfloat16 or float16).

Mixed precision as most LSTMs are trained: the module and its inputs stay float32, and autocast
runs the matrix products (linear, matmul, addmm) in bfloat16 with float32 accumulation, rounding
their inputs to bfloat16 first. The values are drawn bfloat16-exact (strategies: exact_in), so
that rounding is exact and no input rounding enters the comparison; every op then computes in
bfloat16 or float32, each no less accurate than the all-bfloat16 computation that L0's bfloat16
tolerance bounds (claims/tolerances.py, float32 accumulation). So the forward values and the VJPs
are compared with the float64 reference within the bfloat16 tolerances. The same holds for float16
autocast with float16's (values drawn float16-exact): L0's `autocast-float16` runs it on CUDA, where
autocast's default is float16 (CPU autocast is bfloat16 in practice; the check function takes either).
"""
from __future__ import annotations

import torch

from lstm_claims.claims import through_cell
from lstm_claims.claims.cell_under_test import CellContractError
from lstm_claims.claims.tolerances import forward_tolerance, vjp_tolerance
from lstm_claims.claims.violation import assert_within, where
from lstm_claims.reference.lstm_step import lstm_step, lstm_step_vjp
from lstm_claims.strategies import step_problems

AUTOCAST_DTYPE = torch.bfloat16


def autocast_problems(autocast_dtype=AUTOCAST_DTYPE):
    return step_problems(exact_in=autocast_dtype)


def check_autocast(cut, problem, device, dtype, autocast_dtype=AUTOCAST_DTYPE) -> dict:
    """Forward and VJPs of the `dtype` (float32) module under autocast to `autocast_dtype`, against the reference."""
    __tracebackhide__ = True
    p = problem
    low = str(autocast_dtype).replace("torch.", "")
    why = f"L0's {low} rounding bound (float32 accumulation): autocast computes no op in less than {low}"
    ctx = f"{where(device, dtype)} under torch.autocast({device}, {low}), B={p.batch} m={p.input_size} n={p.hidden_size}"
    try:
        with torch.autocast(device_type=torch.device(device).type, dtype=autocast_dtype):
            h_cell, c_cell = through_cell.forward(cut, p, device, dtype)
    except (AssertionError, CellContractError):
        raise
    except Exception as exc:
        # The implementation does not run under autocast at all (torch.nn.LSTM's oneDNN kernel on CPU
        # raises "could not create a primitive descriptor"): a finding the report states, not a wrong
        # value; the module's plain dtypes are L0's other checks.
        return {"autocast_unsupported": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    with torch.autocast(device_type=torch.device(device).type, dtype=autocast_dtype):
        got = through_cell.vjps(cut, p, device, dtype)
    h_ref, c_ref = lstm_step(p.params, p.x, p.h, p.c)
    tol = forward_tolerance(p.params, p.x, p.h, p.c, autocast_dtype)
    worst = max(assert_within("L0", "c_next", c_cell, c_ref, tol["c_next"], context=ctx, why=why),
                assert_within("L0", "h_next", h_cell, h_ref, tol["h_next"], context=ctx, why=why))
    ref = lstm_step_vjp(p.params, p.x, p.h, p.c, p.v_h, p.v_c).as_dict()
    vtol = vjp_tolerance(p.params, p.x, p.h, p.c, p.v_h, p.v_c, autocast_dtype)
    for name in ref:
        worst = max(worst, assert_within("L0", f"d(v·out)/d{name}", got[name], ref[name], vtol[name],
                                         context=ctx, why=why))
    return {"autocast_worst_error_over_allowed": worst}
