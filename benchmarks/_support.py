"""Helpers shared by the bench_*.py files: devices, synchronisation, round counts, keys."""
from __future__ import annotations

import time

import pytest
import torch

CUDA_SKIP = pytest.mark.skipif(not torch.cuda.is_available(),
                               reason="CUDA is not available on this machine (torch.cuda.is_available() is False)")
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=CUDA_SKIP)]


def synchronized(fn, device: str):
    """fn, followed by torch.cuda.synchronize() on CUDA, so the timed call includes the kernels."""
    if torch.device(device).type != "cuda":
        return fn

    def call():
        out = fn()
        torch.cuda.synchronize()
        return out
    return call


def measure(benchmark, fn, *, key: str, group: str, device: str = "cpu", budget_s: float = 1.5,
            min_rounds: int = 3, max_rounds: int = 50, **info):
    """Time fn with benchmark.pedantic: two untimed calls (warm-up, calibration), then as many
    rounds as fit in budget_s (at least min_rounds, at most max_rounds).

    key: a stable "family/impl/params" name that lstm_claims.bench looks ratios up by.
    With --benchmark-disable (smoke runs) the body runs exactly once and nothing is timed.
    """
    benchmark.group = group
    benchmark.extra_info.update(key=key, device=device, **info)
    timed = synchronized(fn, device)
    if benchmark.disabled:
        return benchmark.pedantic(timed, rounds=1)
    timed()  # warm-up: first calls pay for lazy initialisation and fresh pages
    start = time.perf_counter()
    timed()  # calibration call, itself a second warm-up: how many rounds fit in the budget
    once = max(time.perf_counter() - start, 1e-6)
    rounds = int(min(max_rounds, max(min_rounds, budget_s // once)))
    # No further warm-up round: the two calls above already warmed caches and allocator (a third
    # would cost a slow case, seconds at B = 64, n = 512, for nothing).
    return benchmark.pedantic(timed, rounds=rounds, warmup_rounds=0, iterations=1)


def timed_call(forward, module, mode: str):
    """The call a benchmark times: `forward()` under no_grad ("fwd"), or forward and backward of its sum
    with `module`'s gradients cleared first ("fwdbwd", so accumulation never enters the timing)."""
    if mode == "fwd":
        def fn():
            with torch.no_grad():
                return forward()
    else:
        def fn():
            for p in module.parameters():
                p.grad = None
            forward().sum().backward()
    return fn

