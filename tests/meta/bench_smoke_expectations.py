"""What a smoke run of the benchmarks (`lstm-claims bench --smoke`: every body once, untimed) must show.

check_smoke_summary(summary, rc): the expected benchmarks were collected, every CPU case
passed (CUDA cases skip with a reason when there is no GPU), and the cases the headline
ratios of bench.json are computed from exist; no bench_impl.py case ran (no --lstm-impl).
check_impl_smoke_summary(summary, rc): what `lstm-claims bench --smoke --lstm-impl=X` adds
(bench_impl.py's cases, timed at tiny sizes, and the three impl_* ratios). The smoke run itself happens once, in
tests/meta/test_packaging.py, from the installed wheel outside the repository (a second
run here would cost CI another one to two minutes for nothing new).
"""
from __future__ import annotations

import torch

from lstm_claims.benchmarks.bench_impl import SIZES

# test function -> number of cases per device (the parametrizations of benchmarks/bench_*.py)
EXPECTED_PER_DEVICE = {
    "bench_lstm.py::test_lstm": 4 * 2 * 2 * 2 * 2 // 2,  # impl x mode x B x n
    "bench_lstm.py::test_lstm_gemm_floor": 2 * 2,  # B x n
    "bench_scan.py::test_linear_recurrence": 2 * 6 * 2,  # impl x T x width
}
EXPECTED_CPU_ONLY = {
    "bench_jacobian.py::test_cell_state_jacobian": 5,
    "bench_jacobian.py::test_cell_state_jacobian_product": 2,  # tree, chain
    "bench_jacobian.py::test_cell_state_jacobian_forward": 1,
    "bench_jacobian.py::test_matmul_throughput": 1,
}
HEADLINE_CASES = [
    "bench_lstm.py::test_lstm[cell_loop-fwd-B64-n512-cpu]",
    "bench_lstm.py::test_lstm[fused-fwd-B64-n512-cpu]",
    "bench_jacobian.py::test_cell_state_jacobian[closed_form]",
    "bench_jacobian.py::test_cell_state_jacobian[jacrev]",
    "bench_jacobian.py::test_cell_state_jacobian_product[tree]",
    "bench_jacobian.py::test_cell_state_jacobian_forward",
    "bench_jacobian.py::test_matmul_throughput",
    "bench_scan.py::test_linear_recurrence[scan-T16384-W64-cpu]",
    "bench_scan.py::test_linear_recurrence[loop-T16384-W64-cpu]",
]


# bench_impl.py (only with --lstm-impl): way x mode x B x n x dtype per device, at smoke sizes.
IMPL_CASES_PER_DEVICE = 4 * 2 * 2 * 2 * 2
IMPL_RATIOS = ("impl_vs_lstmcell_loop", "impl_vs_fused", "impl_vs_floor")


def _count(nodeids, function):
    return sum(1 for n in nodeids if n.split("[")[0].endswith(function))


def check_smoke_summary(summary: dict, rc: int) -> None:
    tests = summary["tests"]
    assert rc == 0 and not tests["failed"], f"benchmark smoke run failed (exit {rc}): {tests['failed']}"
    assert summary["smoke"] is True
    ran = tests["passed"]
    cuda = torch.cuda.is_available()
    for function, per_device in EXPECTED_PER_DEVICE.items():
        assert _count(ran, function) == per_device * (2 if cuda else 1), function
        if not cuda:
            skipped = [n for n in tests["skipped"] if n.split("[")[0].endswith(function)]
            assert len(skipped) == per_device and all("CUDA is not available" in tests["skipped"][n] for n in skipped)
    for function, count in EXPECTED_CPU_ONLY.items():
        assert _count(ran, function) == count, function
    missing = [case for case in HEADLINE_CASES if case not in ran]
    assert not missing, f"cases the headline ratios need did not run: {missing}"
    assert "impl_table" not in summary and _count(ran, "bench_impl.py::test_impl") == 0, \
        "bench_impl.py ran without --lstm-impl"


def check_impl_smoke_summary(summary: dict, rc: int, *, spec: str) -> None:
    tests = summary["tests"]
    assert rc == 0 and not tests["failed"], f"benchmark smoke run failed (exit {rc}): {tests['failed']}"
    assert summary["smoke"] is True and summary["lstm_impl"] == spec
    ran = tests["passed"]
    cuda = torch.cuda.is_available()
    assert _count(ran, "bench_impl.py::test_impl") == IMPL_CASES_PER_DEVICE * (2 if cuda else 1)
    for name in IMPL_RATIOS:
        value = summary["ratios"][name]
        assert isinstance(value, float) and value > 0, (name, value)
        # the headline case: forward, float32, CPU, the largest smoke B and n
        B, n = max(SIZES["smoke"]["B"]), max(SIZES["smoke"]["n"])
        assert summary["ratio_definitions"][name]["first"] == f"impl/impl/fwd/B{B}/n{n}/float32/cpu"
    assert len(summary["impl_table"]) == IMPL_CASES_PER_DEVICE // 4 * (2 if cuda else 1)  # one row per config

