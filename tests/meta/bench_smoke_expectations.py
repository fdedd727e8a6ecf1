"""What a smoke run of the benchmarks (`lstm-claims bench --smoke`: every body once, untimed) must show.

check_smoke_summary(summary, rc): the expected benchmarks were collected, every CPU case
passed (CUDA cases skip with a reason when there is no GPU), and the cases the headline
ratios of bench.json are computed from exist. The smoke run itself happens once, in
tests/meta/test_packaging.py, from the installed wheel outside the repository (a second
run here would cost CI another one to two minutes for nothing new).
"""
from __future__ import annotations

import torch

# test function -> number of cases per device (the parametrizations of benchmarks/bench_*.py)
EXPECTED_PER_DEVICE = {
    "bench_lstm.py::test_lstm": 4 * 2 * 2 * 2 * 2 // 2,  # impl x mode x B x n
    "bench_lstm.py::test_lstm_gemm_floor": 2 * 2,  # B x n
    "bench_scan.py::test_linear_recurrence": 2 * 6 * 2,  # impl x T x width
}
EXPECTED_CPU_ONLY = {
    "bench_jacobian.py::test_cell_state_jacobian": 5,
    "bench_jacobian.py::test_cell_state_jacobian_matmul_floor": 1,
}
HEADLINE_CASES = [
    "bench_lstm.py::test_lstm[cell_loop-fwd-B64-n512-cpu]",
    "bench_lstm.py::test_lstm[fused-fwd-B64-n512-cpu]",
    "bench_jacobian.py::test_cell_state_jacobian[closed_form]",
    "bench_jacobian.py::test_cell_state_jacobian[jacrev]",
    "bench_jacobian.py::test_cell_state_jacobian_matmul_floor",
    "bench_scan.py::test_linear_recurrence[scan-T16384-W64-cpu]",
    "bench_scan.py::test_linear_recurrence[loop-T16384-W64-cpu]",
]


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
