"""The vanilla (Elman, tanh) RNN of CLAIMS.md V1-V3, in closed form, batched.

    z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        h_t = tanh(z_t)       (torch.nn.RNN, tanh)
    J_t = ∂h_t/∂h_{t-1} = diag(tanh'(z_t)) W_hh                                               (V1)
    ∂h_T/∂h_0 = J_T ⋯ J_1     (exact: the state is h alone)
    ||J_T ⋯ J_1|| <= Π_t ||J_t|| <= (max_{t,k} tanh'(z_{t,k}) ||W_hh||)^T                        (V2)

and V3's measurements at torch.nn.RNN's default initialisation: ||W_hh||, ||J_t|| and the
per-step rate lim_T ||J_T ⋯ J_1||^(1/T), estimated by iterating a block of random vectors
with renormalisation (no product of n x n matrices is formed, so n = 1024 is cheap).
No function here calls the code under test (torch.nn.RNN is only used for its initialiser).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass(frozen=True)
class RNNParams:
    """torch.nn.RNN's layer-0 parameters: weight_ih (n, m), weight_hh (n, n), bias_ih, bias_hh (n)."""

    weight_ih: torch.Tensor
    weight_hh: torch.Tensor
    bias_ih: torch.Tensor
    bias_hh: torch.Tensor

    def __post_init__(self):
        n = self.weight_hh.shape[0]
        if self.weight_hh.dim() != 2 or self.weight_hh.shape != (n, n):
            raise ValueError(f"weight_hh must be (n, n), got {tuple(self.weight_hh.shape)}")
        if self.weight_ih.dim() != 2 or self.weight_ih.shape[0] != n:
            raise ValueError(f"weight_ih must be (n, m) = ({n}, m), got {tuple(self.weight_ih.shape)}")
        for name in ("bias_ih", "bias_hh"):
            if tuple(getattr(self, name).shape) != (n,):
                raise ValueError(f"{name} must be ({n},), got {tuple(getattr(self, name).shape)}")

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[0]

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    def to(self, dtype=None, device=None) -> "RNNParams":
        return RNNParams(*(getattr(self, f.name).to(dtype=dtype, device=device) for f in fields(self)))

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def dtanh(z: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(z)
    return 1 - t * t


def preactivation(params: RNNParams, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return x @ params.weight_ih.T + params.bias_ih + h @ params.weight_hh.T + params.bias_hh


def rnn_unroll(params: RNNParams, xs: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, h), each (T, B, n), over xs (T, B, m) from h0 (B, n)."""
    zs, hs, h = [], [], h0
    for t in range(xs.shape[0]):
        z = preactivation(params, xs[t], h)
        h = torch.tanh(z)
        zs.append(z)
        hs.append(h)
    return torch.stack(zs), torch.stack(hs)


def step_jacobians(params: RNNParams, z: torch.Tensor) -> torch.Tensor:
    """J = diag(tanh'(z)) W_hh for pre-activations z (..., n): (..., n, n)."""
    return dtanh(z).unsqueeze(-1) * params.weight_hh


def spectral_norm(A: torch.Tensor) -> torch.Tensor:
    return torch.linalg.matrix_norm(A, ord=2)


def default_rnn_params(n: int, m: int, seed: int, dtype=torch.float64) -> RNNParams:
    """torch.nn.RNN(m, n)'s default initialisation (uniform ±1/√n) under torch.manual_seed(seed)."""
    with torch.random.fork_rng(devices=[]):  # restores the CPU generator; CUDA's is never touched
        torch.default_generator.manual_seed(seed)
        rnn = torch.nn.RNN(m, n, nonlinearity="tanh")
    return RNNParams(*(getattr(rnn, f"{k}_l0").detach().to(dtype) for k in ("weight_ih", "weight_hh", "bias_ih",
                                                                              "bias_hh")))


@dataclass(frozen=True)
class RateEstimate:
    """The per-step growth rate of ||J_t ⋯ J_1 V|| for a block of random vectors V, per batch entry."""

    rate: torch.Tensor  # (S,) exp of the mean log growth per step over the second half of the run
    rate_full: torch.Tensor  # (S,) the same over all T steps (biased by the start; for comparison)
    jacobian_norms: torch.Tensor  # (S, k) ||J_t|| at the k sampled steps
    max_dtanh: torch.Tensor  # (S,) max over t, k of tanh'(z_{t,k})


def product_growth_rate(W_hh: torch.Tensor, a_x: torch.Tensor | None, steps: int, *, probes: int = 4,
                        norm_steps: tuple[int, ...] = (), seed: int = 0) -> RateEstimate:
    """lim ||J_T ⋯ J_1||^(1/T) estimated along a trajectory, for S networks at once.

    W_hh (S, n, n); a_x (S, n, T): the input part of the pre-activations, W_ih x_t + b_ih + b_hh
    for every step (one GEMM by the caller), or None for zero input and zero bias; h_0 = 0.
    V <- diag(tanh'(z_t)) W_hh V for a block of `probes` random unit vectors, renormalised
    by its largest column norm every step, the logs of the norms summed: for almost every
    start block the largest column grows like the top Lyapunov exponent, which is
    lim (1/T) log ||J_T ⋯ J_1|| (Oseledets). With a_x = None, h stays 0, tanh' = 1 and the
    rate is lim ||W_hh^T||^(1/T) = the spectral radius of W_hh (Gelfand).
    The steps in norm_steps also get ||J_t|| by an SVD (costly for large n: sample a few).
    """
    S, n, _ = W_hh.shape
    gen = torch.Generator(device="cpu").manual_seed(seed)
    V = torch.randn(S, n, probes, generator=gen, dtype=torch.float64).to(W_hh.device, W_hh.dtype)
    V = V / torch.linalg.vector_norm(V, dim=1, keepdim=True)
    h = W_hh.new_zeros(S, n, 1)
    logs = torch.zeros(steps, S, dtype=torch.float64, device=W_hh.device)
    max_dt = W_hh.new_zeros(S) if a_x is not None else W_hh.new_ones(S)
    jn = []
    for t in range(steps):
        if a_x is None:  # h = 0 for ever: J_t = W_hh
            V = torch.bmm(W_hh, V)
            d = None
        else:  # one pass over W_hh per step for both the state and the probes
            out = torch.bmm(W_hh, torch.cat([h, V], dim=2))
            h = torch.tanh(out[:, :, :1] + a_x[:, :, t:t + 1])
            d = 1 - h * h
            max_dt = torch.maximum(max_dt, d.amax(dim=(1, 2)))
            V = d * out[:, :, 1:]
        scale = torch.linalg.vector_norm(V, dim=1).amax(dim=1)  # (S,)
        logs[t] = torch.log(scale).to(torch.float64)
        V = V / scale.view(S, 1, 1)
        if t in norm_steps:
            jn.append(torch.linalg.svdvals(W_hh if d is None else d * W_hh)[:, 0])
    half = steps // 2
    rate = torch.exp(logs[half:].mean(dim=0))
    rate_full = torch.exp(logs.mean(dim=0))
    jacobian_norms = torch.stack(jn, dim=1) if jn else W_hh.new_zeros(S, 0)
    return RateEstimate(rate, rate_full, jacobian_norms, max_dt)


def log10_product_norms(params: RNNParams, xs: torch.Tensor, steps: tuple[int, ...]) -> torch.Tensor:
    """log10 ||J_T ⋯ J_1||_2 at each T in `steps`, per batch entry: (B, len(steps)), from h_0 = 0.

    The product is formed explicitly (n x n per example) and renormalised every step by its
    Frobenius norm, whose logs are summed, so neither underflow nor overflow can occur at
    any T; at each requested T the spectral norm of the renormalised product is added back.
    """
    B, n = xs.shape[1], params.hidden_size
    zs, _ = rnn_unroll(params, xs, torch.zeros(B, n, dtype=xs.dtype))
    P = torch.eye(n, dtype=xs.dtype).expand(B, n, n).clone()
    log10_scale = torch.zeros(B, dtype=xs.dtype)
    wanted, out = set(steps), {}
    for t in range(max(steps)):
        P = step_jacobians(params, zs[t]) @ P
        s = torch.linalg.matrix_norm(P).clamp_min(torch.finfo(xs.dtype).tiny)
        P = P / s[:, None, None]
        log10_scale += torch.log10(s)
        if t + 1 in wanted:
            out[t + 1] = log10_scale + torch.log10(spectral_norm(P))
    return torch.stack([out[T] for T in steps], dim=1)


def median_log10_product_norms(n: int, m: int, seeds, steps: tuple[int, ...], inputs) -> dict:
    """{str(T): median over seeds of log10 ||∂h_T/∂h_0||_2} at torch.nn.RNN(m, n)'s default init.

    For each seed: default_rnn_params(n, m, seed) (torch.manual_seed(seed)), the inputs
    inputs(seed) of shape (T >= max(steps), 1, m), h_0 = 0, and log10_product_norms.
    (L9's table sets this beside the LSTM's ||dc_T/dc_0||, on the same inputs and seeds.)
    """
    logs = torch.stack([log10_product_norms(default_rnn_params(n, m, seed), inputs(seed), steps)[0]
                        for seed in seeds])
    return {str(T): logs[:, j].quantile(0.5).item() for j, T in enumerate(steps)}
