"""The suite as a user runs it: exit statuses, the header, xfails files, the environment variable.

Each case runs `python -m pytest -m claims` in a subprocess on the L0 test file (the
plumbing is the same for every claim; the catalogue tests check the claims' power).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
L0_FILE = "tests/claims/test_L0_standard_cell.py"


def run_claims(*args, env_impl=None, files=(L0_FILE,)):
    env = {k: v for k, v in os.environ.items() if k != "CLAIMS_LSTM_IMPL"}
    if env_impl:
        env["CLAIMS_LSTM_IMPL"] = env_impl
    proc = subprocess.run([sys.executable, "-m", "pytest", *files, "-m", "claims", "-p", "no:cacheprovider",
                           *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_correct_cell_exits_0_and_header_names_it():
    rc, out = run_claims("--lstm-impl=tests.cells.correct:FusedLSTMStep")
    assert rc == 0, out
    assert "cell under test tests.cells.correct:FusedLSTMStep (from --lstm-impl)" in out
    assert "hypothesis profile ci" in out


def test_buggy_cell_exits_1_naming_the_claim():
    rc, out = run_claims("--lstm-impl=tests.cells.mutants:GateOrderIFOG")
    assert rc == 1, out
    assert "[L0]" in out and "FAILED" in out
    assert "reproduce: python -m pytest" in out
    assert "L0 failed: the cell is not the standard LSTM" in out


def test_environment_variable_selects_the_cell():
    rc, out = run_claims(env_impl="tests.cells.mutants:NoInputGate")
    assert rc == 1, out
    assert "tests.cells.mutants:NoInputGate (from $CLAIMS_LSTM_IMPL)" in out


@pytest.mark.parametrize("spec", ["tests.cells.broken:ReturnsOnlyH", "tests.cells.nonexistent:Cell"])
def test_contract_breach_exits_2_with_one_message(spec):
    rc, out = run_claims(f"--lstm-impl={spec}")
    assert rc == 2, out
    assert out.count("breaks the LSTMCell contract") == 1, out
    assert "FAILED" not in out and "passed" not in out, out


def test_xfails_file_turns_known_departures_into_expected_failures(tmp_path):
    xf = tmp_path / "xfails.txt"
    xf.write_text("L0  # peepholes: the forward is not the standard LSTM by design\n")
    rc, out = run_claims("--lstm-impl=tests.cells.mutants:Peephole", f"--xfails-file={xf}")
    assert rc == 0, out
    assert "xfailed" in out and "xfails: L0" in out


def test_xfails_file_reports_an_unexpected_pass(tmp_path):
    xf = tmp_path / "xfails.txt"
    xf.write_text("L0\n")
    rc, out = run_claims(f"--xfails-file={xf}")
    assert rc == 1, out
    assert "XPASS(strict)" in out


def test_xfails_file_with_unknown_id_is_a_usage_error(tmp_path):
    xf = tmp_path / "xfails.txt"
    xf.write_text("L42\n")
    rc, out = run_claims(f"--xfails-file={xf}")
    assert rc == 4, out
    assert "'L42' is not a claim ID" in out
