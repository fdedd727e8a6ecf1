"""Running torch.nn.RNN (tanh), the vanilla network of V1-V3, and differentiating it with autograd.

V and R claims are about the vanilla RNN and residual blocks, not the cell under test: the
module here is torch.nn.RNN itself (one cached module per (m, n, device, dtype), parameters
written in under no_grad), on the device and dtype under test; results come back float64 on
the CPU. As in claims/unrolled_cell.py Jacobians are batched: each example repeated n
times, copy k seeded with e_k, one backward pass for all rows.

On CUDA the module runs with cuDNN disabled: V1-V3 are claims about the vanilla RNN's
mathematics, checked against rounding bounds derived from the documented accuracy of
torch's own (ATen) kernels; cuDNN's RNN kernels document no such accuracy.
"""
from __future__ import annotations

import torch

from lstm_claims.reference.vanilla_rnn import RNNParams

_MODULES: dict = {}


def rnn_with_params(params: RNNParams, device, dtype) -> torch.nn.RNN:
    key = (params.input_size, params.hidden_size, str(device), dtype)
    if key not in _MODULES:
        _MODULES[key] = torch.nn.RNN(params.input_size, params.hidden_size, nonlinearity="tanh").to(device=device,
                                                                                                    dtype=dtype)
    rnn = _MODULES[key]
    with torch.no_grad():
        for name, value in params.as_dict().items():
            getattr(rnn, f"{name}_l0").copy_(value.to(device=device, dtype=dtype))
    rnn.zero_grad(set_to_none=True)
    return rnn


def _cpu(t):
    return t.detach().to("cpu", torch.float64)


def rows_of(B: int, n: int) -> torch.Tensor:
    """The seeds e_k for n copies of each of B examples, (B n, n)."""
    return torch.eye(n, dtype=torch.float64).repeat(B, 1)


def _aten_kernels():
    """torch.nn.RNN through ATen's kernels, not cuDNN's (a no-op on the CPU)."""
    return torch.backends.cudnn.flags(enabled=False)


def trajectory(params: RNNParams, xs, h0, device, dtype) -> torch.Tensor:
    """h_0..h_T of torch.nn.RNN over xs (T, B, m), (T + 1, B, n) float64."""
    rnn = rnn_with_params(params, device, dtype)
    with torch.no_grad(), _aten_kernels():
        out, _ = rnn(xs.to(device=device, dtype=dtype), h0.unsqueeze(0).to(device=device, dtype=dtype))
    return torch.cat([h0.unsqueeze(0), _cpu(out)])


def step_jacobians(params: RNNParams, x, h_prev, device, dtype) -> torch.Tensor:
    """∂h_t/∂h_{t-1} of one torch.nn.RNN step at each row of (x (N, m), h_prev (N, n)): (N, n, n)."""
    N, n = h_prev.shape
    rnn = rnn_with_params(params, device, dtype)
    x_r = x.repeat_interleave(n, dim=0).to(device=device, dtype=dtype)
    h_r = h_prev.repeat_interleave(n, dim=0).to(device=device, dtype=dtype).requires_grad_(True)
    with _aten_kernels():
        out, _ = rnn(x_r.unsqueeze(0), h_r.unsqueeze(0))
        (g,) = torch.autograd.grad(out[0], h_r, rows_of(N, n).to(device=device, dtype=dtype))
    return _cpu(g).view(N, n, n)


def unrolled_jacobian(params: RNNParams, xs, h0, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """∂h_T/∂h_0 of torch.nn.RNN over the whole sequence (its own multi-step kernel), (B, n, n).

    Also returns the trajectory h_0..h_T of the repeated rows, (T + 1, B n, n), from the same
    forward pass (a different batch size could round differently).
    """
    T, B, _ = xs.shape
    n = params.hidden_size
    rnn = rnn_with_params(params, device, dtype)
    xs_r = xs.repeat_interleave(n, dim=1).to(device=device, dtype=dtype)
    h0_r = h0.repeat_interleave(n, dim=0).to(device=device, dtype=dtype).requires_grad_(True)
    with _aten_kernels():
        out, _ = rnn(xs_r, h0_r.unsqueeze(0))
        (g,) = torch.autograd.grad(out[-1], h0_r, rows_of(B, n).to(device=device, dtype=dtype))
    return _cpu(g).view(B, n, n), torch.cat([_cpu(h0_r).unsqueeze(0), _cpu(out)])
