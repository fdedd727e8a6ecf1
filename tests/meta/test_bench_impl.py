"""`lstm-claims bench --lstm-impl`: the user's implementation timed against torch's LSTMs, and the
Jacobian benchmark's floor, as bench.json reports them.

The end-to-end runs use --smoke (bench_impl.py at tiny sizes, timed: seconds) and --impl-only
(not the kit's own benchmarks, whose smoke run is tests/meta/test_packaging.py's); the rest
feeds bench.py's summaries synthetic medians, so every number they derive is known exactly.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_claims import bench
from lstm_claims.cli import main
from tests.meta.bench_smoke_expectations import check_impl_smoke_summary

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_with_lstm_impl_writes_the_three_impl_ratios(tmp_path):
    spec = "torch.nn:LSTMCell"
    proc = subprocess.run([sys.executable, "-m", "lstm_claims.cli", "bench", "--smoke", f"--lstm-impl={spec}",
                           "--impl-only", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "bench.json").read_text())
    check_impl_smoke_summary(summary, proc.returncode, spec=spec)
    page = (tmp_path / "index.html").read_text()
    assert "Your implementation" in page and all(r in page for r in ("impl_vs_lstmcell_loop", "impl_vs_fused",
                                                                      "impl_vs_floor"))


def test_a_dtype_the_implementation_refuses_is_reported_unsupported_with_its_exception(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    rc = bench.run_benchmarks(tmp_path, smoke=True, lstm_impl="tests.meta.bench_cells:Float32OnlyLSTMCell",
                              impl_only=True, extra_pytest_args=["-k", "cpu and B1 and n8 and not fwdbwd"])
    summary = json.loads((tmp_path / "bench.json").read_text())
    assert rc == 0, summary["tests"]
    rows = {r["dtype"]: r for r in summary["impl_table"]}
    assert set(rows) == {"float32", "bfloat16"}
    assert isinstance(rows["float32"]["impl_s"], float) and rows["float32"]["impl_vs_fused"] > 0
    assert rows["bfloat16"]["impl_s"].startswith("unsupported: TypeError: Float32OnlyLSTMCell supports float32")
    assert rows["bfloat16"]["impl_vs_fused"] is None
    assert isinstance(rows["bfloat16"]["fused_s"], float)  # torch's own ways still ran in bfloat16


def test_impl_only_without_an_implementation_is_one_usage_error(tmp_path, capsys):
    assert main(["bench", "--impl-only", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "--impl-only needs --lstm-impl" in err
    assert not (tmp_path / "bench.json").exists()


def test_an_implementation_that_cannot_be_loaded_is_one_usage_error_before_any_benchmark(tmp_path, capsys):
    assert main(["bench", "--lstm-impl=no_such_module_here:Cell", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "cannot import module 'no_such_module_here'" in err
    assert not (tmp_path / "bench.json").exists()


def _b(median, **info):
    return {"median_s": median, "extra_info": info}


def test_impl_ratios_read_the_largest_forward_float32_cpu_case_as_times_faster():
    benchmarks = {}
    for B, n, scale in ((1, 128, 1.0), (64, 512, 10.0)):
        for way, t in (("impl", 2.0), ("lstmcell_loop", 4.0), ("fused", 1.0), ("gemm_floor", 0.5)):
            benchmarks[f"impl/{way}/fwd/B{B}/n{n}/float32/cpu"] = _b(t * scale, T=100)
    skipped = {"bench_impl.py::test_impl[cpu-bfloat16-n512-B64-fwd-impl]":
               "unsupported [impl/impl/fwd/B64/n512/bfloat16/cpu]: TypeError: no bf16"}
    out = bench.impl_summary(benchmarks, skipped)
    assert out["ratios"] == {"impl_vs_lstmcell_loop": 2.0, "impl_vs_fused": 0.5, "impl_vs_floor": 0.25}
    assert out["definitions"]["impl_vs_fused"]["first"] == "impl/impl/fwd/B64/n512/float32/cpu"
    bf16 = [r for r in out["table"] if r["dtype"] == "bfloat16"]
    assert len(bf16) == 1 and bf16[0]["impl_s"] == "unsupported: TypeError: no bf16"
    assert bf16[0]["fused_s"] == "missing" and bf16[0]["impl_vs_fused"] is None
    assert bench.impl_summary({"lstm/fused/fwd/B64/n512/cpu": _b(1.0)}, {}) is None  # no --lstm-impl: nothing


def test_jacobian_floor_is_the_product_arithmetic_at_the_measured_matmul_throughput():
    T, n = bench.JACOBIAN["T"], bench.JACOBIAN["n"]
    flops = 2 * 1024 ** 3
    benchmarks = {
        "jacobian/matmul_throughput/n1024": _b(flops / 40e9, flops=flops, size=1024),  # 40 GFLOP/s
        f"jacobian/closed_form/T{T}/n{n}": _b(4e-3, T=T),
        f"jacobian/jacrev/T{T}/n{n}": _b(24e-3, T=T),
        f"jacobian/product_tree/T{T}/n{n}": _b(1e-3, T=T),
        f"jacobian/product_chain/T{T}/n{n}": _b(2e-3, T=T),
        f"jacobian/forward_only/T{T}/n{n}": _b(2e-3, T=T),
    }
    floor = bench.jacobian_floor(benchmarks)
    arith = 2 * (T - 1) * n ** 3 / 40e9
    assert floor["matmul_gflops"] == pytest.approx(40.0)
    assert floor["arithmetic_floor_s"] == pytest.approx(arith)
    assert floor["closed_vs_forward_plus_tree"] == pytest.approx(3e-3 / 4e-3)
    assert floor["jacrev_ceiling_forward_plus_tree"] == pytest.approx(24 / 3)
    assert floor["jacrev_ceiling_forward_plus_arithmetic"] == pytest.approx(24e-3 / (2e-3 + arith))
    assert floor["tree_vs_chain"] == pytest.approx(2.0)
    goals = bench._goals({"jacobian_closed_vs_jacrev": 6.0}, benchmarks, floor)
    g = goals["jacobian_closed_vs_jacrev"]
    assert g["met"] is False and g["ceiling"] == floor["jacrev_ceiling_forward_plus_arithmetic"]
    assert g["reachable"] is (g["ceiling"] >= 10)  # 24 / (2 + 1.3) = 7.3 here: out of reach
    assert g["reachable"] is False
    assert goals["jacobian_closed_vs_forward_plus_tree"]["met"] is True  # 0.75 >= 0.5
    assert bench.jacobian_floor({})["arithmetic_floor_s"] is None  # nothing measured: no number invented
