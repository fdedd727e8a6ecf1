"""Run the benchmark folder and write its summary, bench.json.

What the benchmarks measure (see each benchmarks/bench_*.py):
  * G4: the gate-free recurrence c_t = a_t ⊙ c_{t-1} + b_t by a blocked associative scan
    against the sequential loop (the scan applies only because the gates do not read h);
  * the standard LSTM over T = 100 steps: Python loops of one-step cells against the fused
    torch.nn.LSTM, and the fused LSTM against its GEMM floor;
  * the long-range cell-state Jacobian (L6/L7's product) in closed form against torch.func and
    per-row autograd, and against its floor: the arithmetic of multiplying T n x n matrices at
    the machine's matmul throughput (measured in the same run), the best product written
    (a batched tree), and the forward pass alone (see `jacobian_floor`);
  * with --lstm-impl (benchmarks/bench_impl.py): the user's implementation against a loop of
    torch.nn.LSTMCell, the fused torch.nn.LSTM and the GEMM floor, forward and forward+backward,
    float32 and bfloat16 (see `impl_table`).

Every ratio in bench.json reads "how many times faster the first is than the second":
ratio(first, second) = median(second) / median(first). So lstm_loop_vs_fused < 1 says the
Python loop is slower than the fused LSTM, by the factor 1 / ratio.
"""
from __future__ import annotations

import json
import os
import platform
import re
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
    "jacobian_closed_vs_tree_product": (
        "jacobian/closed_form/T100/n64", "jacobian/product_tree/T100/n64",
        "median(batched tree product of T given n x n factors) / median(closed form), same sizes: the "
        "share of the closed form's time that the best product written takes (< 1: the closed form also "
        "runs the forward pass and builds the factors)"),
    "scan_vs_loop_T16384": (
        "scan/scan/T16384/W64/cpu", "scan/loop/T16384/W64/cpu",
        "median(loop) / median(blocked scan), c_t = a_t c_{t-1} + b_t, T=16384, batch x width 64, "
        "float32, CPU"),
}

# name -> (threshold, direction): the performance goals the kit sets itself.
GOALS = {
    "scan_vs_loop_T16384": (20.0, ">="),
    "jacobian_closed_vs_jacrev": (10.0, ">="),
}
# The closed form against what it cannot avoid: median(forward pass + best product) / median(closed
# form) >= 1/2, i.e. building the factors and chaining the chunks cost at most as much again as the
# forward pass and the product. A chosen bound: the factors (three scaled n x n matrices per step,
# O(T n^2) memory traffic) are cheaper than the product (O(T n^3)), so 2x leaves room for dispatch.
CLOSED_VS_UNAVOIDABLE_GOAL = 0.5
JACOBIAN = {"T": 100, "n": 64}  # the sizes of benchmarks/bench_jacobian.py
SCAN_ACCURACY_GOAL = ("scan/scan/T16384/W64/cpu", 1e-6)  # relative error vs float64, float32 run
CROSSOVER_WIDTH = 512


def run_benchmarks(out_dir: Path, *, extra_pytest_args=(), smoke: bool = False,
                   bench_dir: Path | None = None, lstm_impl: str | None = None, impl_only: bool = False) -> int:
    """Run the benchmark folder through pytest (subprocesses) and write out_dir/bench.json.

    smoke=True passes --benchmark-disable: every benchmark body runs once, nothing is
    timed (for CI); bench.json then lists the tests and their outcomes only.
    lstm_impl ("MODULE:ATTR") adds benchmarks/bench_impl.py, the implementation against
    torch's LSTMs. It is timed even in a smoke run, at tiny sizes, in a second pytest session
    (seconds), so that a smoke run still shows the impl_* ratios; impl_only=True runs that
    file alone. Returns pytest's exit code (the first non-zero one).
    """
    out_dir = Path(out_dir)
    bench_dir = Path(bench_dir) if bench_dir is not None else BENCH_DIR
    if not bench_dir.is_dir():
        raise FileNotFoundError(f"benchmark folder {bench_dir} not found (is lstm-claims installed completely?)")
    if impl_only and not lstm_impl:
        raise ValueError("impl_only needs lstm_impl (the implementation to time)")
    out_dir.mkdir(parents=True, exist_ok=True)
    impl_args = [f"--lstm-impl={lstm_impl}"] if lstm_impl else []
    sessions = []  # (name, paths, timed, extra arguments)
    if not impl_only:
        # Without smoke, bench_impl.py runs in the same session (the same conditions as the rest).
        sessions.append(("kit", [bench_dir], not smoke, [] if smoke else impl_args))
    if lstm_impl and (smoke or impl_only):
        sessions.append(("impl", [bench_dir / "bench_impl.py"], True,
                         impl_args + [f"--bench-impl-sizes={'smoke' if smoke else 'full'}"]))
    load_before = _load_average()
    raws, junits, commands, rcs = [], [], [], []
    for name, paths, timed, extra in sessions:
        suffix = "" if name == "kit" else f"-{name}"
        raw_path, junit_path = out_dir / f"pytest-benchmark{suffix}.json", out_dir / f"bench{suffix}-junit.xml"
        for stale in (raw_path, junit_path):
            stale.unlink(missing_ok=True)
        # The folder's own pytest.ini and rootdir: the caller's pytest configuration and conftest files
        # (wherever the command is run from) play no part.
        cmd = [sys.executable, "-m", "pytest", *map(str, paths), "-c", str(bench_dir / "pytest.ini"),
               # Never under pytest-xdist (pytest-benchmark disables timing there), even when the
               # caller's own run is an xdist worker.
               f"--rootdir={bench_dir}", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
               f"--junitxml={junit_path}", "--benchmark-columns=median,iqr,stddev,rounds",
               "--benchmark-sort=name"]
        cmd += [f"--benchmark-json={raw_path}"] if timed else ["--benchmark-disable"]
        cmd += extra + list(extra_pytest_args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
        rcs.append(subprocess.run(cmd, cwd=out_dir, env=env).returncode)
        commands.append(cmd)
        raws.append(json.loads(raw_path.read_text()) if raw_path.exists() else None)
        junits.append(junit_path if junit_path.exists() else None)
    summary = summarize(_merge_raw(raws), junits, smoke=smoke)
    rc = next((r for r in rcs if r != 0), 0)
    summary.update(command=commands[0], commands=commands, exit_code=rc, lstm_impl=lstm_impl)
    # Other processes on the machine inflate timings; the load average says whether there were any.
    summary["machine_info"]["load_average_before"] = load_before
    tmp = out_dir / "bench.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
    tmp.replace(out_dir / "bench.json")
    return rc


def _merge_raw(raws: list) -> dict | None:
    """pytest-benchmark's JSON of several sessions as one (machine and commit info of the first)."""
    present = [r for r in raws if r]
    if not present:
        return None
    merged = dict(present[0])
    merged["benchmarks"] = [b for r in present for b in r.get("benchmarks", [])]
    return merged


def summarize(raw: dict | None, junit_paths, *, smoke: bool) -> dict:
    """bench.json's content from pytest-benchmark's JSON (None in smoke runs) and the JUnit XML file(s)."""
    if junit_paths is None or isinstance(junit_paths, (str, Path)):
        junit_paths = [junit_paths]
    benchmarks = _benchmarks(raw)
    tests = _test_outcomes(junit_paths)
    out = {
        "schema": 2,
        "smoke": smoke,
        "machine_info": _machine_info(raw),
        "tests": tests,
        "benchmarks": benchmarks,
    }
    impl = impl_summary(benchmarks, tests["skipped"])
    if smoke:
        if impl:  # timed at tiny sizes even in a smoke run: the ratios show that the file works
            out["ratios"] = impl["ratios"]
            out["ratio_definitions"] = impl["definitions"]
            out["impl_table"] = impl["table"]
        return out
    ratios, definitions = {}, {}
    for name, (first, second, what) in HEADLINE_RATIOS.items():
        ratios[name] = ratio(benchmarks, first, second)
        definitions[name] = {"first": first, "second": second, "meaning": what}
    if impl:
        ratios.update(impl["ratios"])
        definitions.update(impl["definitions"])
        out["impl_table"] = impl["table"]
    out["ratios"] = ratios
    out["ratio_definitions"] = definitions
    out["ratios_detail"] = _detail_ratios(benchmarks)
    out["crossover"] = crossover(benchmarks, width=CROSSOVER_WIDTH, device="cpu")
    out["jacobian_floor"] = jacobian_floor(benchmarks)
    out["goals"] = _goals(ratios, benchmarks, out["jacobian_floor"])
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
        elif key.startswith("jacobian/") and info.get("T") is not None and not key.startswith("jacobian/closed_form/"):
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
        "jacobian_note": "closed_form_vs_X = median(X)/median(closed form); X = forward_only and product_tree/"
                         "product_chain are parts of the work, not ways to the Jacobian (see jacobian_floor)",
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


def jacobian_floor(benchmarks: dict) -> dict:
    """What the closed-form Jacobian cannot avoid, measured in this run, and how close it comes.

    The product J_T ... J_1 of T n x n factors takes T - 1 matrix products, 2 n^3 flops each
    (J_1 is diagonal, so strictly T - 2 full products and one column scaling; T - 1 is what the
    chain does). At the machine's matmul throughput (a large float64 matmul, measured in the same
    run) that arithmetic takes `arithmetic_floor_s`: no product runs faster. `product_tree_s` is
    the best product written (ordered_product_tree over all T given factors: log2 T batched
    matmuls), `product_chain_s` the chain the note calls a floor (T - 1 dependent small matmuls),
    `forward_only_s` the closed form's forward pass (reference.jacobian_chain.unroll), which every
    method must run before the factors exist.
    """
    T, n = JACOBIAN["T"], JACOBIAN["n"]

    def median(key):
        return benchmarks.get(key, {}).get("median_s")

    suffix = f"T{T}/n{n}"
    closed, jacrev = median(f"jacobian/closed_form/{suffix}"), median(f"jacobian/jacrev/{suffix}")
    tree, chain = median(f"jacobian/product_tree/{suffix}"), median(f"jacobian/product_chain/{suffix}")
    forward = median(f"jacobian/forward_only/{suffix}")
    mm = next((b for k, b in benchmarks.items() if k.startswith("jacobian/matmul_throughput/")), None)
    gflops = mm["extra_info"]["flops"] / mm["median_s"] / 1e9 if mm else None
    flops = 2 * (T - 1) * n ** 3
    arith = flops / (gflops * 1e9) if gflops else None

    def div(a, b):
        return a / b if a is not None and b else None

    def add(a, b):
        return a + b if a is not None and b is not None else None

    return {
        "T": T, "n": n, "dtype": "float64",
        "product_flops": flops,
        "matmul_gflops": gflops,
        "matmul_size": mm["extra_info"]["size"] if mm else None,
        "arithmetic_floor_s": arith,
        "product_tree_s": tree, "product_chain_s": chain, "forward_only_s": forward,
        "closed_form_s": closed, "jacrev_s": jacrev,
        "tree_vs_chain": div(chain, tree),
        "tree_share_of_peak": div(arith, tree),
        "closed_vs_arithmetic_floor": div(arith, closed),
        "closed_vs_tree_product": div(tree, closed),
        "closed_vs_forward_plus_tree": div(add(forward, tree), closed),
        "jacrev_ceiling_forward_plus_tree": div(jacrev, add(forward, tree)),
        "jacrev_ceiling_forward_plus_arithmetic": div(jacrev, add(forward, arith)),
        "jacrev_ceiling_forward_alone": div(jacrev, forward),
        "meaning": {
            "arithmetic_floor_s": "product_flops = 2 (T-1) n^3 at matmul_gflops (a large float64 matmul in this "
                                  "run): no way to multiply the factors out is faster",
            "tree_share_of_peak": "arithmetic_floor_s / product_tree_s: the fraction of the large matmul's "
                                  "throughput the best product reaches on n x n factors",
            "closed_vs_X": "median(X) / median(closed form): X's share of the closed form's time",
            "jacrev_ceiling_forward_plus_tree": "median(jacrev) / (forward_only + product_tree): the most "
                                                "closed_vs_jacrev can be for a method that runs this forward "
                                                "pass and the best product measured, with factors for free",
            "jacrev_ceiling_forward_plus_arithmetic": "median(jacrev) / (forward_only + arithmetic_floor_s): "
                                                      "the same with the product at the large matmul's throughput",
            "jacrev_ceiling_forward_alone": "median(jacrev) / forward_only: the ceiling if the product were free; "
                                            "below 10, no faster product reaches the 10x goal without a cheaper "
                                            "forward pass",
        },
    }


def _goals(ratios: dict, benchmarks: dict, floor: dict | None = None) -> dict:
    goals = {}
    for name, (threshold, op) in GOALS.items():
        value = ratios.get(name)
        goals[name] = {"value": value, "goal": f"{op} {threshold:.4g}",
                       "met": None if value is None else bool(value >= threshold)}
    floor = floor if floor is not None else jacobian_floor(benchmarks)
    if "jacobian_closed_vs_jacrev" in goals:
        threshold = GOALS["jacobian_closed_vs_jacrev"][0]
        ceiling = floor["jacrev_ceiling_forward_plus_arithmetic"]
        goals["jacobian_closed_vs_jacrev"].update(
            ceiling=ceiling, ceiling_with_tree_product=floor["jacrev_ceiling_forward_plus_tree"],
            reachable=None if ceiling is None else bool(ceiling >= threshold),
            ceiling_meaning="median(jacrev) / (median(forward pass alone) + product flops at the measured matmul "
                            "throughput): what closed_vs_jacrev would be if building the factors cost nothing and "
                            "the product ran at a large matmul's speed; reachable = ceiling >= the goal")
    value = floor["closed_vs_forward_plus_tree"]
    goals["jacobian_closed_vs_forward_plus_tree"] = {
        "value": value, "goal": f">= {CLOSED_VS_UNAVOIDABLE_GOAL:.4g}",
        "met": None if value is None else bool(value >= CLOSED_VS_UNAVOIDABLE_GOAL),
        "meaning": "(median(forward pass alone) + median(best product)) / median(closed form): the closed form "
                   "within 2x of the work it cannot avoid (a chosen bound, see CLOSED_VS_UNAVOIDABLE_GOAL)"}
    key, limit = SCAN_ACCURACY_GOAL
    err = benchmarks.get(key, {}).get("extra_info", {}).get("rel_error_vs_float64")
    goals["scan_rel_error_float32_T16384"] = {"value": err, "goal": f"<= {limit:g}",
                                              "met": None if err is None else bool(err <= limit)}
    return goals


# --- the implementation under test (benchmarks/bench_impl.py) ------------------------------------

IMPL_WAYS = ("impl", "lstmcell_loop", "fused", "gemm_floor")
IMPL_RATIOS = {  # bench.json ratio name -> the way the implementation is compared with
    "impl_vs_lstmcell_loop": ("lstmcell_loop", "a Python loop of torch.nn.LSTMCell"),
    "impl_vs_fused": ("fused", "the fused torch.nn.LSTM"),
    "impl_vs_floor": ("gemm_floor", "the GEMM floor (the GEMMs alone; < 1 always)"),
}
_SKIP_RE = re.compile(r"(unsupported|not run) \[(impl/[^\]]+)\]: (.*)", re.S)


def _impl_key(way, mode, B, n, dtype, device):
    return f"impl/{way}/{mode}/B{B}/n{n}/{dtype}/{device}"


def impl_summary(benchmarks: dict, skipped: dict) -> dict | None:
    """The impl_* ratios (forward, float32, CPU, the largest B and n measured: B = 64, n = 512 in a
    full run) and the full table, from bench_impl.py's results; None when it did not run."""
    notes = {}  # key -> "unsupported: ..." / "not run: ..."
    for message in skipped.values():
        m = _SKIP_RE.search(message or "")
        if m:
            notes[m.group(2)] = f"{m.group(1)}: {m.group(3).strip()}"
    keys = [k for k in benchmarks if k.startswith("impl/")] + list(notes)
    if not keys:
        return None
    configs = sorted({tuple(k.split("/")[2:]) for k in keys},
                     key=lambda c: (c[4], c[3], c[0], int(c[1][1:]), int(c[2][1:])))  # device, dtype, mode, B, n
    table = []
    for mode, B, n, dtype, device in configs:
        row = {"device": device, "dtype": dtype, "mode": mode, "B": int(B[1:]), "n": int(n[1:])}
        for way in IMPL_WAYS:
            key = "/".join(("impl", way, mode, B, n, dtype, device))
            row[f"{way}_s"] = benchmarks[key]["median_s"] if key in benchmarks else notes.get(key, "missing")
        impl_key = "/".join(("impl", "impl", mode, B, n, dtype, device))
        for name, (way, _) in IMPL_RATIOS.items():
            row[name] = ratio(benchmarks, impl_key, impl_key.replace("impl/impl/", f"impl/{way}/", 1))
        table.append(row)
    headline = [r for r in table if r["device"] == "cpu" and r["dtype"] == "float32" and r["mode"] == "fwd"
                and isinstance(r["impl_s"], float)]
    ratios, definitions = {}, {}
    top = max(headline, key=lambda r: (r["B"], r["n"])) if headline else None
    for name, (way, what) in IMPL_RATIOS.items():
        first = _impl_key("impl", "fwd", top["B"], top["n"], "float32", "cpu") if top else None
        second = first.replace("impl/impl/", f"impl/{way}/", 1) if top else None
        ratios[name] = ratio(benchmarks, first, second) if top else None
        definitions[name] = {
            "first": first, "second": second,
            "meaning": f"median({what}) / median(the implementation), forward (no grad), T = "
                       f"{benchmarks[first]['extra_info'].get('T') if top else '?'}, B = {top['B'] if top else '?'}, "
                       f"n = m = {top['n'] if top else '?'}, float32, CPU: how many times faster the implementation "
                       f"is (< 1: slower)"}
    return {"ratios": ratios, "definitions": definitions, "table": table}


def _test_outcomes(junit_paths) -> dict:
    passed, failed, skipped = [], [], {}
    cases = (case for path in junit_paths if path is not None for case in ET.parse(path).getroot().iter("testcase"))
    for case in cases:
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
