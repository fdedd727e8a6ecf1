"""`-n N` (pytest-xdist): the claim suite split over workers reports exactly what a serial run reports.

* The fold: per-case logs merged in collection order equal one log recorded in that order
  (counts, figures by each figure's aggregation, plots concatenated per series label, the first
  counterexample), whatever the grouping of cases into workers (in-process, no subprocess).
* `lstm-claims run` serially and with `-n 2`, on a cell that fails some checks and passes others
  (a min figure, a plot, refutations), writes the same claims.json (verdicts, counts, examples,
  figures, counterexamples, the failures and their reproduce commands), prints one header and
  one progress line per claim, and exits 1 both ways.
* Under xdist the plugin stays inert for a foreign suite, and without xdist it works as before.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_claims.claims.registry import CLAIM_IDS
from lstm_claims.results import ClaimLog
from tests.meta.test_plugin_is_inert import CI_VARIABLES

pytest.importorskip("xdist", reason="pytest-xdist is not installed: `-n N` needs it")

ROOT = Path(__file__).resolve().parents[1].parent
OUTSIDE = Path(__file__).resolve().parent / "outside"


# --- the fold, in-process -------------------------------------------------------------------------

def _record(log, step):
    """One case's recording: figures with each aggregation, a plot, a refutation on some cases."""
    log.example("L7", aggregate={"lo": "min", "total": "sum"}, hi=step * 1.5 % 7, lo=10.0 - step % 4,
                total=float(step), table=[step, step + 1], name=f"case{step}")
    log.points("L7", "plot_p", f"series{step % 2}", [step, step + 0.5], [step * 2.0, -1.0],
               title="t", xlabel="x", ylabel="y")
    if step in (3, 5):
        log.refute("L7", {"step": step}, reproduce=f"replay {step}")
    log["L7"].passed += 1


@pytest.mark.parametrize("groups", [[[0, 1, 2, 3, 4, 5, 6]], [[0, 2, 4, 6], [1, 3, 5]], [[6, 5], [0, 1, 2, 3, 4]]],
                         ids=["one-worker", "alternating", "reversed-finish"])
def test_per_case_logs_folded_in_collection_order_equal_a_serial_log(groups):
    serial = ClaimLog()
    for step in range(7):
        _record(serial, step)
    case_logs = {}
    for group in groups:  # each "worker" runs its cases in its own order, into one log per case
        for step in group:
            case_logs[step] = ClaimLog()
            _record(case_logs[step], step)
            case_logs[step] = ClaimLog.from_dict(json.loads(json.dumps(case_logs[step].to_dict())))  # via workeroutput
    folded = ClaimLog()
    for step in sorted(case_logs):  # collection order
        folded.merge(case_logs[step])
    assert folded.results["L7"].to_json() == serial.results["L7"].to_json()
    r = folded.results["L7"]
    assert r.counterexample == {"step": 3} and r.reproduce == "replay 3"
    assert r.figures["name"] == "case6" and r.figures["lo"] == 7.0 and r.figures["total"] == 21.0
    assert r.aggregation == {"hi": "max", "lo": "min", "total": "sum", "table": "last", "name": "last",
                             "plot_p": "points"}
    assert [s["label"] for s in r.figures["plot_p"]["series"]] == ["series0", "series1"]


def test_non_finite_figures_survive_the_trip_from_a_worker():
    log = ClaimLog()
    log.example("L8", aggregate={"low": "min"}, high=float("inf"), low=float("-inf"), nan=float("nan"))
    back = ClaimLog.from_dict(json.loads(json.dumps(log.to_dict())))
    assert back.results["L8"].to_json() == log.results["L8"].to_json()


# --- serial against -n 2, through the command line ------------------------------------------------

def _cli(out: Path, *args, workers=None):
    cmd = [sys.executable, "-m", "lstm_claims.cli", "run", "--out", str(out), *args]
    if workers:
        cmd += ["-n", str(workers)]
    env = {k: v for k, v in os.environ.items() if k != "CLAIMS_LSTM_IMPL"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr, json.loads((out / "claims.json").read_text())


def _same_report(serial: dict, parallel: dict):
    for key in ("impl", "profile", "seed", "devices", "xfails"):
        assert serial[key] == parallel[key], key
    assert list(serial["claims"]) == list(parallel["claims"]) == list(CLAIM_IDS)
    for cid, s in serial["claims"].items():
        p = parallel["claims"][cid]
        for key in ("verdict", "examples", "passed", "failed", "xfailed", "xpassed", "skipped", "counterexample",
                    "reproduce", "failures", "aggregation"):
            assert s[key] == p[key], (cid, key, s[key], p[key])
        assert s["figures"] == p["figures"], (cid, {k for k in s["figures"] if s["figures"][k] != p["figures"].get(k)})


# One comparison covers both sides of the fold (each pair of runs costs a minute or more on 2 cores): a
# kernel-regime mutant (tests/cells/kernel_mutants.py: the standard LSTM but for widths past a 128-wide
# tile) fails L0's kernel-size checks in both dtypes on their explicit examples, while L3 (a min figure),
# L7 (a plot accumulated over examples, refuted) and V3 (refuted, one example) run at smaller widths,
# where the cell is correct, and keep their verdicts.
FAILING_CASES = ["L0-forward-kernel-sizes-cpu-float64", "L0-forward-kernel-sizes-cpu-float32"]
COMPARED = ("--claims", "L0,L3,L7,V3", "--device", "cpu", "--lstm-impl", "tests.cells.kernel_mutants:TileTailBug",
            "--select", ",".join([*FAILING_CASES, "L3-distance-from-identity-cpu-float64",
                                  "L3-distance-from-identity-cpu-float32", "L7-bound-through-cell-cpu-float64",
                                  "L7-bound-through-cell-cpu-float32", "L7-bound-long-closed-forms", "L7-symbolic",
                                  "V3-norm-and-rate-measured-cpu"]))


def test_minus_n_2_writes_the_serial_report_passing_and_failing_checks_alike(tmp_path):
    rc_s, out_s, serial = _cli(tmp_path / "serial", *COMPARED)
    rc_p, out_p, parallel = _cli(tmp_path / "parallel", *COMPARED, workers=2)
    assert rc_s == rc_p == 1, out_s + out_p
    _same_report(serial, parallel)
    verdicts = {cid: parallel["claims"][cid]["verdict"] for cid in ("L0", "L3", "L7", "V3")}
    assert verdicts == {"L0": "failed", "L3": "holds-under-condition", "L7": "refuted", "V3": "refuted"}
    assert parallel["claims"]["L7"]["aggregation"]["plot_bound_vs_observed"] == "points"
    assert "2 workers" in out_p
    assert out_p.count("lstm-claims 0.2.0: cell under test") == 1, out_p  # one header, the controller's
    for cid in ("L0", "L3", "L7", "V3"):  # the progress line and the summary line of each claim, as in the serial run
        lines_s = [ln[ln.index(cid):] for ln in out_s.splitlines() if f"{cid}  {verdicts[cid]}" in ln]
        lines_p = [ln[ln.index(cid):] for ln in out_p.splitlines() if f"{cid}  {verdicts[cid]}" in ln]
        assert len(lines_s) == 2 and lines_p == lines_s, (lines_s, lines_p)
    # the failures: the same ones, in collection order (float64 first), not the order the workers finished in
    l0 = parallel["claims"]["L0"]
    assert l0["failed"] == 2 and [f[0] for f in l0["failures"]] == FAILING_CASES
    assert f"--select={FAILING_CASES[0]}" in l0["reproduce"]
    assert "reproduce: lstm-claims run --lstm-impl=tests.cells.kernel_mutants:TileTailBug" in out_p


# --- inert for a foreign suite under xdist; working without xdist -----------------------------------------

def _pytest(where: Path, *args):
    # As on a developer's machine: Hypothesis loads its own `ci` profile when it detects a CI service.
    env = {k: v for k, v in os.environ.items() if k != "CLAIMS_LSTM_IMPL" and k not in CI_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join([str(where), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--rootdir={where}", *args],
                          cwd=where, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_a_foreign_suite_under_xdist_sees_nothing_of_the_kit(tmp_path):
    shutil.copy(OUTSIDE / "foreign_conftest.py", tmp_path / "conftest.py")
    shutil.copy(OUTSIDE / "foreign_tests.py", tmp_path / "test_foreign.py")
    rc, out = _pytest(tmp_path, "-n", "2", "-p", "no:benchmark")
    assert rc == 0, out
    assert "5 passed" in out, out
    assert "lstm-claims:" not in out and "cell under test" not in out, out


def test_the_suite_runs_without_xdist(tmp_path):
    rc, out = _pytest(tmp_path, "-p", "no:xdist", "--pyargs", "lstm_claims.suite", "--claims-ids=L4",
                      "--claims-select=L4-symbolic-suprema", "-q", "--claims-progress")
    assert rc == 0, out
    assert "L4  holds" in out and "lstm-claims: per-claim summary" in out, out
