"""`lstm-claims run` exit statuses and report files; the report is generic and self-contained."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_claims.claims.plots import plot_spec, series
from lstm_claims.claims.registry import CLAIM_IDS
from lstm_claims.report import render
from lstm_claims.results import ClaimResult

ROOT = Path(__file__).resolve().parents[2]
# L0's plain cases: the command's plumbing is the same for every check (its kernel-grade checks add minutes).
L0_PLAIN = "L0-forward-cpu-float64,L0-forward-cpu-float32,L0-backward-cpu-float64,L0-backward-cpu-float32"
# On a buggy cell each failing case is shrunk (about 20 s of CPU per case on 2 cores): one case it fails is enough
# to test what the command does with a failure.
L0_ONE = "L0-forward-cpu-float64"
REQUIRED_TOP = {"kit_version", "impl", "torch_version", "devices", "profile", "seed", "claims"}
REQUIRED_CLAIM = {"id", "statement", "condition", "verdict", "examples", "figures", "counterexample", "reproduce"}


def cli(*args):
    proc = subprocess.run([sys.executable, "-m", "lstm_claims.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def test_run_on_a_correct_cell_writes_the_report(tmp_path):
    rc, out, err = cli("run", "--claims", "L0", "--select", L0_PLAIN, "--lstm-impl", "tests.cells.correct:ConcatLSTMCell",
                       "--out", str(tmp_path))
    assert rc == 0, out + err
    data = json.loads((tmp_path / "claims.json").read_text())
    assert REQUIRED_TOP <= set(data) and data["impl"] == "tests.cells.correct:ConcatLSTMCell"
    assert list(data["claims"]) == list(CLAIM_IDS)
    for cid, c in data["claims"].items():
        assert REQUIRED_CLAIM <= set(c), (cid, set(c))
    assert data["claims"]["L0"]["verdict"] == "holds" and data["claims"]["L0"]["examples"] > 0
    assert data["claims"]["L1"]["verdict"] == "not-run"  # deselected by --claims L0
    assert "L0  holds" in out  # progress line
    page = (tmp_path / "index.html").read_text()
    assert "ConcatLSTMCell" in page and "<table>" in page


def test_run_on_a_buggy_cell_exits_1_and_the_report_says_which_claim(tmp_path):
    rc, out, err = cli("run", "--claims", "L0", "--select", L0_ONE, "--lstm-impl", "tests.cells.mutants:NoInputGate",
                       "--out", str(tmp_path))
    assert rc == 1, out + err
    l0 = json.loads((tmp_path / "claims.json").read_text())["claims"]["L0"]
    assert l0["verdict"] == "failed" and l0["failures"]
    assert "[L0]" in l0["failures"][0][1]
    assert l0["reproduce"].startswith("lstm-claims run --lstm-impl=tests.cells.mutants:NoInputGate --profile=ci ")
    assert "--claims=L0 --select=L0-" in l0["reproduce"]


def test_run_from_the_users_directory_finds_their_module_and_writes_a_relative_out(tmp_path):
    """As the console script runs: `python -P` does not put the current directory on sys.path, and the
    suite's pytest runs in the kit's root; `--lstm-impl my_cell:MyCell` and `--out rep` still mean
    ./my_cell.py and ./rep."""
    (tmp_path / "my_cell.py").write_text("import torch\n\n\nclass MyCell(torch.nn.LSTMCell):\n    pass\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-P", "-m", "lstm_claims.cli", "run", "--claims", "L1",
                           "--lstm-impl", "my_cell:MyCell", "--out", "rep"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "rep" / "claims.json").read_text())
    assert data["impl"] == "my_cell:MyCell" and data["claims"]["L1"]["verdict"] == "holds"
    assert (tmp_path / "rep" / "index.html").exists() and not (ROOT / "rep").exists()


@pytest.mark.parametrize("spec", ["tests.cells.broken:TransposedWeightIH", "no_colon_here"])
def test_run_on_a_contract_breach_exits_2_with_one_message(tmp_path, spec):
    rc, out, err = cli("run", "--lstm-impl", spec, "--out", str(tmp_path))
    assert rc == 2
    assert err.count("lstm-claims: error:") == 1 and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "claims.json").exists()


def test_usage_error_exits_2():
    rc, _, err = cli("run", "--profile", "nightly")
    assert rc == 2 and "invalid choice" in err


def test_report_is_generic_and_self_contained(tmp_path):
    claims = {cid: {"id": cid, "title": f"claim {cid}", "statement": "s", "condition": "always", "verdict": "holds",
                    "examples": 3, "figures": {}, "counterexample": None, "reproduce": "cmd"} for cid in CLAIM_IDS}
    claims["L9"]["figures"] = {
        "rate": 0.5,
        "table": [{"b_f": 1, "T": 50, "norm": 1.6e-7}],
        "plot_norm": plot_spec("norm against T", "T", "norm", [series("b_f = 1", [1, 2], [1e-1, 1e-2])], logy=True),
    }
    claims["L6"].update(verdict="refuted", counterexample={"T": 3, "gap": 0.2})
    (tmp_path / "claims.json").write_text(json.dumps({"kit_version": "0", "impl": "x:Y", "torch_version": "t",
                                                      "devices": ["cpu"], "profile": "ci", "seed": 0,
                                                      "claims": claims}))
    page = render(tmp_path).read_text()
    assert page.count("data:image/png;base64,") == 1
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "refuted" in page and "&quot;gap&quot;: 0.2" in page and "1.6e-07" in page
    for cid in CLAIM_IDS:
        assert f"id='{cid}'" in page


@pytest.mark.parametrize("fields,unconditional,verdict", [
    ({"passed": 2}, True, "holds"),
    ({"passed": 2}, False, "holds-under-condition"),
    ({"passed": 2, "counterexample": {"T": 1}}, True, "refuted"),
    ({"passed": 2, "failed": 1}, True, "failed"),
    ({"passed": 1, "xpassed": 1}, True, "failed"),
    ({"xfailed": 2}, True, "failed"),  # expected by an xfails file: the cell departs from the claim
    ({"skipped": 4}, True, "not-run"),
])
def test_verdict_rule(fields, unconditional, verdict):
    assert ClaimResult("L0", **fields).verdict(unconditional) == verdict


def test_report_shows_the_benchmarks_with_the_loop_vs_scan_plot(tmp_path):
    bench = {"smoke": False, "ratios": {"scan_vs_loop_T16384": 34.5, "lstm_loop_vs_fused": 0.46},
             "ratio_definitions": {"scan_vs_loop_T16384": {"meaning": "median(loop) / median(scan)"}},
             "goals": {"scan_vs_loop_T16384": {"value": 34.5, "goal": ">= 20", "met": True}},
             "benchmarks": {f"scan/{impl}/T{T}/W64/cpu": {"median_s": t * T, "iqr_s": 0.0, "stddev_s": 0.0, "rounds": 5,
                                                          "extra_info": {"T": T, "width": 64, "device": "cpu"}}
                            for impl, t in (("loop", 4e-6), ("scan", 1e-7)) for T in (1024, 16384)}}
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    page = render(tmp_path).read_text()
    assert "scan_vs_loop_T16384" in page and "34.5" in page and "median(loop) / median(scan)" in page
    assert page.count("data:image/png;base64,") == 1  # the loop vs scan plot
    assert "No claims.json here" in page


BUGGY_CELL = (Path(__file__).resolve().parent / "outside" / "buggy_cell.py").read_text()  # ForgetsTwice


def test_a_failed_claims_reproduce_command_replays_the_failure_from_the_users_directory(tmp_path):
    """claims.json's `reproduce`, run as written in the directory `lstm-claims run` ran in, fails again (exit 1)
    on the same check case."""
    (tmp_path / "buggy.py").write_text(BUGGY_CELL)
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    first = subprocess.run([sys.executable, "-P", "-m", "lstm_claims.cli", "run", "--claims", "L0", "--select", L0_ONE,
                            "--lstm-impl",
                            "buggy:ForgetsTwice", "--out", "rep"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 1, first.stdout + first.stderr
    l0 = json.loads((tmp_path / "rep" / "claims.json").read_text())["claims"]["L0"]
    command = l0["reproduce"]
    assert command.startswith("lstm-claims run --lstm-impl=buggy:ForgetsTwice"), command
    case = command.split("--select=")[1].split()[0]
    replay = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert replay.returncode == 1, replay.stdout + replay.stderr
    replayed = json.loads((tmp_path / "lstm-claims-replay" / "claims.json").read_text())["claims"]["L0"]
    assert replayed["failed"] == 1 and replayed["passed"] == 0 and replayed["failures"][0][0] == case
    assert replayed["failures"][0][1] == l0["failures"][0][1]  # the same minimal example's message


def test_peephole_cell_with_L1_in_its_xfails_file_exits_0(tmp_path):
    """The README's example: a peephole cell lists L1; L1's symbolic proofs never call the cell and do not XPASS."""
    xf = tmp_path / "xfails.txt"
    xf.write_text("L1  # peephole connections: the gates read c_(t-1) by design\n")
    rc, out, err = cli("run", "--claims", "L1", "--lstm-impl", "tests.cells.mutants:Peephole",
                       "--xfails-file", str(xf), "--out", str(tmp_path / "rep"))
    assert rc == 0, out + err
    l1 = json.loads((tmp_path / "rep" / "claims.json").read_text())["claims"]["L1"]
    assert l1["xfailed"] >= 1 and l1["xpassed"] == 0 and l1["expected_failure"], l1
    assert l1["passed"] == 3  # the three symbolic proofs


def test_an_exception_of_the_implementation_is_one_finding_and_blocks_the_rest(tmp_path):
    """pytorch's TorchScript benchmark cell raises in its backward once unrolled with other batch sizes: one
    failure saying so (forward or backward, the last calls' shapes), the claims it blocked listed as not checked."""
    rc, out, err = cli("run", "--claims", "L6,L7,G4", "--device", "cpu", "--lstm-impl",
                       "tests.cells.raising:ScriptLSTMCell", "--out", str(tmp_path))
    assert rc == 1, out + err
    data = json.loads((tmp_path / "claims.json").read_text())
    raised = data["implementation_raised"]
    assert raised and raised["phase"] == "backward" and "RuntimeError" in raised["error"], raised
    assert "its last forward calls" in raised["message"] and "expected those two sizes" in raised["message"]
    failed = [c for c in data["claims"].values() if c["failed"]]
    assert len(failed) == 1 and failed[0]["failed"] == 1, [(c["id"], c["failed"]) for c in failed]
    assert data["claims_not_checked"] and all(data["claims"][c]["blocked"] for c in data["claims_not_checked"])
    assert out.count("1 failed") == 1 and "not checked because of it" in out


def test_a_contract_broken_on_one_path_fails_that_check_and_blocks_nothing(tmp_path):
    """A cell whose outputs take a wrong dtype under autocast only: the autocast check fails naming the
    contract problem; it is not "the implementation raised", so the other checks still run."""
    rc, out, err = cli("run", "--device", "cpu", "--lstm-impl", "tests.cells.broken:WrongDtypeUnderAutocast",
                       "--claims", "L0,L3", "--select",
                       "L0-autocast-bfloat16-cpu-float32,L3-distance-from-identity-cpu-float64", "--out", str(tmp_path))
    assert rc == 1, out + err
    data = json.loads((tmp_path / "claims.json").read_text())
    assert data["implementation_raised"] is None and data["claims_not_checked"] == [], data["implementation_raised"]
    l0, l3 = data["claims"]["L0"], data["claims"]["L3"]
    assert l0["failed"] == 1 and l0["failures"][0][0] == "L0-autocast-bfloat16-cpu-float32", l0["failures"]
    assert "h_next has dtype torch.float16 for inputs of dtype torch.float32" in l0["failures"][0][1]
    assert l3["passed"] == 1 and l3["examples"] > 0 and not l3["blocked"], l3


def test_fail_fast_stops_at_the_first_failing_check(tmp_path):
    rc, out, err = cli("run", "--fail-fast", "--device", "cpu", "--lstm-impl", "tests.cells.mutants:NoInputGate",
                       "--out", str(tmp_path))
    assert rc == 1, out + err
    data = json.loads((tmp_path / "claims.json").read_text())
    assert sum(c["failed"] for c in data["claims"].values()) == 1
    assert data["claims"]["L0"]["verdict"] == "failed" and data["claims"]["L9"]["verdict"] == "not-run"
    assert "stopping after 1 failures" in out


def test_the_cli_names_the_plugin_only_when_pytest_would_not_load_it(monkeypatch):
    """From a checkout that is not installed (the device machine's case), the suite's pytest gets -p lstm_claims.plugin."""
    import importlib.metadata

    from lstm_claims import cli as cli_module

    monkeypatch.delenv("PYTEST_PLUGINS", raising=False)
    assert cli_module._plugin_registered()  # this test run has the kit installed
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [])
    assert not cli_module._plugin_registered()
    monkeypatch.setenv("PYTEST_PLUGINS", "lstm_claims.plugin")
    assert cli_module._plugin_registered()
