"""The suite as a user runs it: exit statuses, the header, xfails files, the environment variable.

Each case runs `python -m pytest -m claims` in a subprocess on L0's checks (the plumbing is
the same for every claim; the catalogue tests check the claims' power).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE_FILE = "tests/claims/test_claims.py"
# L0's four plain cases (forward and backward, CPU, both dtypes) and V1's: the plumbing is the
# same for every check, and L0's kernel-grade checks would only add minutes to each run here.
PLAIN = ("L0-forward-cpu-float64,L0-forward-cpu-float32,L0-backward-cpu-float64,L0-backward-cpu-float32,"
         "V1-rnn-step-jacobian-cpu-float64,V1-symbolic")


# A buggy cell's failing cases are each shrunk (about 20 s of CPU per case on 2 cores): the runs on buggy cells
# select L0's forward cases only, which every buggy cell here fails (its backward adds nothing to the plumbing),
# and only the float64 one where the test does not tell the dtypes apart.
FORWARD = "L0-forward-cpu-float64,L0-forward-cpu-float32"
FORWARD64 = "L0-forward-cpu-float64"


def run_claims(*args, env_impl=None, files=(SUITE_FILE,), ids="L0", select=PLAIN):
    env = {k: v for k, v in os.environ.items() if k != "CLAIMS_LSTM_IMPL"}
    if env_impl:
        env["CLAIMS_LSTM_IMPL"] = env_impl
    proc = subprocess.run([sys.executable, "-m", "pytest", *files, "-m", "claims", "-p", "no:cacheprovider",
                           f"--claims-ids={ids}", f"--claims-select={select}", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_correct_cell_exits_0_and_header_names_it():
    rc, out = run_claims("-v", "--lstm-impl=tests.cells.correct:FusedLSTMStep")  # -v: the per-case lines too
    assert rc == 0, out
    assert "cell under test tests.cells.correct:FusedLSTMStep (from --lstm-impl)" in out
    assert "profile ci" in out
    assert "test_claim[L0-forward-cpu-float32] PASSED" in out


@pytest.fixture(scope="module")
def buggy_cell_from_the_environment():
    """One run (each costs seconds of interpreter start and collection) for the two tests below: a buggy
    cell named only by $CLAIMS_LSTM_IMPL (--lstm-impl is tested on the correct cell above)."""
    return run_claims(env_impl="tests.cells.mutants:GateOrderIFOG", select=FORWARD64)


def test_buggy_cell_exits_1_naming_the_claim(buggy_cell_from_the_environment):
    rc, out = buggy_cell_from_the_environment
    assert rc == 1, out
    assert "[L0]" in out and "FAILED" in out
    assert "reproduce: lstm-claims run --lstm-impl=tests.cells.mutants:GateOrderIFOG --profile=ci" in out
    assert "--select=L0-" in out
    assert "L0 failed: the cell is not the standard LSTM" in out


def test_environment_variable_selects_the_cell(buggy_cell_from_the_environment):
    rc, out = buggy_cell_from_the_environment
    assert rc == 1, out
    assert "cell under test tests.cells.mutants:GateOrderIFOG (from $CLAIMS_LSTM_IMPL)" in out


@pytest.mark.parametrize("spec", ["tests.cells.broken:ReturnsOnlyH", "tests.cells.nonexistent:Cell"])
def test_contract_breach_exits_2_with_one_message(spec):
    rc, out = run_claims(f"--lstm-impl={spec}")
    assert rc == 2, out
    assert out.count("breaks the LSTMCell contract") == 1, out
    assert "FAILED" not in out and "passed" not in out, out


def test_xfails_file_turns_known_departures_into_expected_failures(tmp_path):
    xf = tmp_path / "xfails.txt"
    xf.write_text("L0  # peepholes: the forward is not the standard LSTM by design\n")
    rc, out = run_claims("--lstm-impl=tests.cells.mutants:Peephole", f"--xfails-file={xf}", select=FORWARD64)
    assert rc == 0, out
    assert "xfailed" in out and "xfails: L0" in out


def test_xfails_file_reports_a_stale_entry(tmp_path):
    """An entry none of whose checks failed fails the run once, by name (not as an XPASS per check)."""
    xf = tmp_path / "xfails.txt"
    xf.write_text("L0\n")
    rc, out = run_claims(f"--xfails-file={xf}")
    assert rc == 1, out
    assert f"xfails entry L0 ({xf}:1) expected a failure, but every one of its checks" in out
    assert "XPASS(strict)" not in out and "FAILED" not in out


def test_xfails_entry_for_a_claim_with_no_check_of_the_implementation_is_a_warning(tmp_path):
    """V1's checks run torch.nn.RNN, never the cell: listing it is ignored with a warning, not an XPASS."""
    xf = tmp_path / "xfails.txt"
    xf.write_text("V1  # a correct cell\n")
    rc, out = run_claims(f"--xfails-file={xf}", ids="L0,V1")
    assert rc == 0, out
    assert "warning: xfails entry V1" in out and "matches no check that runs the implementation" in out
    assert "XPASS" not in out


def test_xfails_entry_scoped_to_a_device_and_dtype(tmp_path):
    """`L0 cpu float64` expects the float64 failures only: the float32 ones still fail the run."""
    xf = tmp_path / "xfails.txt"
    xf.write_text("L0 cpu float64  # peepholes\n")
    rc, out = run_claims("--lstm-impl=tests.cells.mutants:Peephole", f"--xfails-file={xf}", "-rfx", select=FORWARD)
    assert rc == 1, out
    assert "XFAIL tests/claims/test_claims.py::test_claim[L0-forward-cpu-float64]" in out
    assert "FAILED tests/claims/test_claims.py::test_claim[L0-forward-cpu-float32]" in out


def test_xfails_file_with_unknown_id_is_a_usage_error(tmp_path):
    xf = tmp_path / "xfails.txt"
    xf.write_text("L42\n")
    rc, out = run_claims(f"--xfails-file={xf}")
    assert rc == 4, out
    assert "'L42' is none of these" in out
