"""Run the benchmark folder and write its summary, bench.json.

What the benchmarks measure (see each benchmarks/bench_*.py):
  * G4: the gate-free recurrence c_t = a_t ⊙ c_{t-1} + b_t by a blocked associative scan
    against the sequential loop (the scan applies only because the gates do not read h);
  * the standard LSTM over T = 100 steps: Python loops of one-step cells against the fused
    torch.nn.LSTM, and the fused LSTM against its GEMM floor;
  * the long-range cell-state Jacobian (L6/L7's product) in closed form against torch.func,
    per-row autograd and a bare chain of matmuls.

Every ratio in bench.json reads "how many times faster the first is than the second":
ratio(first, second) = median(second) / median(first). So lstm_loop_vs_fused < 1 says the
Python loop is slower than the fused LSTM, by the factor 1 / ratio.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import lstm_claims.benchmarks as _benchmarks_package

# The benchmark folder as installed (site-packages/lstm_claims/benchmarks) or in a checkout (benchmarks/).
BENCH_DIR = Path(_benchmarks_package.__file__).resolve().parent

# name -> (first, second, what it says). Keys are the `key` each benchmark records in extra_info.
HEADLINE_RATIOS = {
    "lstm_loop_vs_fused": (
        "lstm/cell_loop/fwd/B64/n512/cpu", "lstm/fused/fwd/B64/n512/cpu",
        "median(nn.LSTM) / median(Python loop of nn.LSTMCell), forward, T=100, B=64, n=m=512, float32, "
        "CPU: how many times faster the loop is than the fused LSTM (< 1: slower)"),
    "jacobian_closed_vs_jacrev": (
        "jacobian/closed_form/T100/n64", "jacobian/jacrev/T100/n64",
        "median(torch.func.jacrev) / median(closed form: reference.jacobian_chain.cell_state_product), "
        "dc_T/dc_0 at T=100, n=64, batch 1, float64"),
    "jacobian_closed_vs_matmul_floor": (
        "jacobian/closed_form/T100/n64", "jacobian/matmul_floor/T100/n64",
        "median(chain of T n x n matmuls) / median(closed form), same sizes (< 1: the closed form is "
        "slower than the floor)"),
    "scan_vs_loop_T16384": (
        "scan/scan/T16384/W64/cpu", "scan/loop/T16384/W64/cpu",
        "median(loop) / median(blocked scan), c_t = a_t c_{t-1} + b_t, T=16384, batch x width 64, "
        "float32, CPU"),
}

# name -> (threshold, direction): the performance goals the kit sets itself.
GOALS = {
    "scan_vs_loop_T16384": (20.0, ">="),
    "jacobian_closed_vs_jacrev": (10.0, ">="),
    "jacobian_closed_vs_matmul_floor": (1 / 3, ">="),  # within 3x of the floor
}
SCAN_ACCURACY_GOAL = ("scan/scan/T16384/W64/cpu", 1e-6)  # relative error vs float64, float32 run
CROSSOVER_WIDTH = 512


def run_benchmarks(out_dir: Path, *, extra_pytest_args=(), smoke: bool = False,
                   bench_dir: Path | None = None) -> int:
    """Run the benchmark folder through pytest (a subprocess) and write out_dir/bench.json.

    smoke=True passes --benchmark-disable: every benchmark body runs once, nothing is
    timed (for CI); bench.json then lists the tests and their outcomes only. Returns
    pytest's exit code.
    """
    out_dir = Path(out_dir)
    bench_dir = Path(bench_dir) if bench_dir is not None else BENCH_DIR
    if not bench_dir.is_dir():
        raise FileNotFoundError(f"benchmark folder {bench_dir} not found (is lstm-claims installed completely?)")
    out_dir.mkdir(parents=True, exist_ok=True)
    raw_path, junit_path = out_dir / "pytest-benchmark.json", out_dir / "bench-junit.xml"
    for stale in (raw_path, junit_path):
        stale.unlink(missing_ok=True)
    # The folder's own pytest.ini and rootdir: the caller's pytest configuration and conftest files
    # (wherever the command is run from) play no part.
    cmd = [sys.executable, "-m", "pytest", str(bench_dir), "-c", str(bench_dir / "pytest.ini"),
           f"--rootdir={bench_dir}", "-p", "no:cacheprovider", "-q",
           f"--junitxml={junit_path}", "--benchmark-columns=median,iqr,stddev,rounds",
           "--benchmark-sort=name"]
    cmd += ["--benchmark-disable"] if smoke else [f"--benchmark-json={raw_path}"]
    cmd += list(extra_pytest_args)
    load_before = _load_average()
    rc = subprocess.run(cmd, cwd=out_dir).returncode
    raw = json.loads(raw_path.read_text()) if raw_path.exists() else None
    summary = summarize(raw, junit_path if junit_path.exists() else None, smoke=smoke)
    summary.update(command=cmd, exit_code=rc)
    # Other processes on the machine inflate timings; the load average says whether there were any.
    summary["machine_info"]["load_average_before"] = load_before
    tmp = out_dir / "bench.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
    tmp.replace(out_dir / "bench.json")
    return rc


def summarize(raw: dict | None, junit_path: Path | None, *, smoke: bool) -> dict:
    """bench.json's content from pytest-benchmark's JSON (None in smoke runs) and the JUnit XML."""
    benchmarks = _benchmarks(raw)
    out = {
        "schema": 1,
        "smoke": smoke,
        "machine_info": _machine_info(raw),
        "tests": _test_outcomes(junit_path),
        "benchmarks": benchmarks,
    }
    if smoke:
        return out
    ratios, definitions = {}, {}
    for name, (first, second, what) in HEADLINE_RATIOS.items():
        ratios[name] = ratio(benchmarks, first, second)
        definitions[name] = {"first": first, "second": second, "meaning": what}
    out["ratios"] = ratios
    out["ratio_definitions"] = definitions
    out["ratios_detail"] = _detail_ratios(benchmarks)
    out["crossover"] = crossover(benchmarks, width=CROSSOVER_WIDTH, device="cpu")
    out["goals"] = _goals(ratios, benchmarks)
    return out


def _benchmarks(raw: dict | None) -> dict:
    out = {}
    for b in (raw or {}).get("benchmarks", []):
        key = b.get("extra_info", {}).get("key") or b["fullname"]
        s = b["stats"]
        out[key] = {
            "name": b["fullname"], "group": b.get("group"),
            "median_s": s["median"], "iqr_s": s["iqr"], "stddev_s": s["stddev"],
            "q1_s": s["q1"], "q3_s": s["q3"], "mean_s": s["mean"], "min_s": s["min"], "max_s": s["max"],
            "rounds": s["rounds"], "extra_info": b.get("extra_info", {}),
        }
    return out


def ratio(benchmarks: dict, first: str, second: str) -> float | None:
    """How many times faster `first` is than `second`: median(second) / median(first); None if either is missing."""
    if first not in benchmarks or second not in benchmarks:
        return None
    return benchmarks[second]["median_s"] / benchmarks[first]["median_s"]


def _detail_ratios(benchmarks: dict) -> dict:
    lstm, scan, jac = {}, {}, {}
    for key, b in benchmarks.items():
        info = b["extra_info"]
        if key.startswith("lstm/") and info.get("impl") == "fused":
            cfg = f"{info['mode']}/B{info['B']}/n{info['n']}/{info['device']}"
            row = {f"{impl}_vs_fused": ratio(benchmarks, key.replace("/fused/", f"/{impl}/"), key)
                   for impl in ("cell_loop", "reference_loop", "reference_loop_unchecked")}
            if info["mode"] == "fwd":
                row["fused_vs_gemm_floor"] = ratio(benchmarks, key, key.replace("/fused/", "/gemm_floor/"))
            row["reference_check_cost"] = ratio(benchmarks, key.replace("/fused/", "/reference_loop_unchecked/"),
                                                key.replace("/fused/", "/reference_loop/"))
            lstm[cfg] = row
        elif key.startswith("scan/scan/"):
            scan[key[len("scan/scan/"):]] = ratio(benchmarks, key, key.replace("scan/scan/", "scan/loop/"))
        elif key.startswith("jacobian/") and not key.startswith("jacobian/closed_form/"):
            method = key.split("/")[1]
            closed = key.replace(f"jacobian/{method}/", "jacobian/closed_form/")
            jac[f"closed_form_vs_{method}"] = ratio(benchmarks, closed, key)
    return {
        "lstm": lstm,
        "lstm_note": "X_vs_fused = median(fused)/median(X): how many times faster X is than nn.LSTM; "
                     "fused_vs_gemm_floor = median(floor)/median(fused); reference_check_cost = "
                     "median(reference_loop)/median(reference_loop_unchecked), the slowdown from "
                     "check_step_inputs at every step",
        "scan_vs_loop": scan,
        "jacobian": jac,
    }


def crossover(benchmarks: dict, *, width: int, device: str) -> dict:
    """The smallest measured T from which on the scan beats the loop at every larger measured T."""
    speedups = {}
    for key, b in benchmarks.items():
        info = b["extra_info"]
        if key.startswith("scan/scan/") and info.get("width") == width and info.get("device") == device:
            r = ratio(benchmarks, key, key.replace("scan/scan/", "scan/loop/"))
            if r is not None:
                speedups[info["T"]] = r
    Ts = sorted(speedups)
    cross = None
    for T in reversed(Ts):
        if speedups[T] > 1:
            cross = T
        else:
            break
    below = [T for T in Ts if cross is not None and T < cross]
    return {
        "width": width, "device": device,
        "speedup_by_T": {str(T): speedups[T] for T in Ts},
        "crossover_T": cross,
        "bracket": [below[-1] if below else None, cross],
        "definition": "speedup = median(loop)/median(scan); crossover_T = the smallest measured T with "
                      "speedup > 1 at it and every larger measured T (bracket: the measured T below it, "
                      "null when the scan already wins at the smallest T measured)",
    }


def _goals(ratios: dict, benchmarks: dict) -> dict:
    goals = {}
    for name, (threshold, op) in GOALS.items():
        value = ratios.get(name)
        goals[name] = {"value": value, "goal": f"{op} {threshold:.4g}",
                       "met": None if value is None else bool(value >= threshold)}
    # Any way to the Jacobian multiplies T n x n factors, so none is faster than the bare matmul
    # chain: median(jacrev) / median(floor) is the most closed_vs_jacrev can reach on this machine.
    ceiling = ratio(benchmarks, "jacobian/matmul_floor/T100/n64", "jacobian/jacrev/T100/n64")
    if "jacobian_closed_vs_jacrev" in goals:
        goals["jacobian_closed_vs_jacrev"]["ceiling"] = ceiling
        goals["jacobian_closed_vs_jacrev"]["ceiling_meaning"] = (
            "median(jacrev) / median(matmul floor): the ratio a closed form would reach if it cost "
            "no more than the bare chain of T n x n matmuls it has to do anyway")
    key, limit = SCAN_ACCURACY_GOAL
    err = benchmarks.get(key, {}).get("extra_info", {}).get("rel_error_vs_float64")
    goals["scan_rel_error_float32_T16384"] = {"value": err, "goal": f"<= {limit:g}",
                                              "met": None if err is None else bool(err <= limit)}
    return goals


def _test_outcomes(junit_path: Path | None) -> dict:
    if junit_path is None:
        return {"collected": 0, "passed": [], "failed": [], "skipped": {}}
    passed, failed, skipped = [], [], {}
    for case in ET.parse(junit_path).getroot().iter("testcase"):
        nodeid = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        if case.find("skipped") is not None:
            skipped[nodeid] = case.find("skipped").get("message", "")
        elif case.find("failure") is not None or case.find("error") is not None:
            failed.append(nodeid)
        else:
            passed.append(nodeid)
    return {"collected": len(passed) + len(failed) + len(skipped), "passed": passed, "failed": failed,
            "skipped": skipped}


def _machine_info(raw: dict | None) -> dict:
    import torch  # imported here: `lstm_claims.bench` should not pay for torch until it runs

    info = dict((raw or {}).get("machine_info", {}))
    info.setdefault("python_version", platform.python_version())
    info.setdefault("machine", platform.machine())
    info.setdefault("system", platform.system())
    info["cpu_count"] = os.cpu_count()
    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
    info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    info["flush_denormal"] = False  # set by benchmarks/conftest.py before every benchmark
    # glibc's malloc tuning changes the cost of large temporaries (fresh pages fault in):
    # record it, so that runs under different settings are not compared unknowingly.
    info["malloc_env"] = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    info["load_average_after"] = _load_average()
    if raw:
        info["commit_info"] = raw.get("commit_info")
        info["datetime"] = raw.get("datetime")
    return info


def _load_average():
    try:
        return list(os.getloadavg())
    except (OSError, AttributeError):  # not available on this platform
        return None
