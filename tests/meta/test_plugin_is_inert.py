"""Installing lstm-claims leaves other test suites alone, and a user can run the checks in their own suite.

* A foreign suite (tests/meta/outside/foreign_*.py, copied into a fresh directory: its own
  `dtype` fixture, Hypothesis's defaults, TF32 on, 2 torch threads) passes with the kit's
  plugin loaded exactly as with `-p no:lstm_claims`: the plugin is inert unless asked.
* `pytest --pyargs lstm_claims.suite --lstm-impl=...` runs the installed claim suite inside a
  user's pytest run; `lstm_claims.testing.parametrize_with_checks` yields the kit's checks in
  their own test module (tests/meta/outside/users_tests.py), catching a buggy cell by claim.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

OUTSIDE = Path(__file__).resolve().parent / "outside"
# Hypothesis loads its own `ci` profile when it detects a CI service: compare with a developer's machine.
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "TF_BUILD", "BUILDKITE", "CIRCLECI", "CIRRUS_CI", "CODEBUILD_BUILD_ID",
                "GITLAB_CI", "HEROKU_TEST_RUN_ID", "TEAMCITY_VERSION", "bamboo.buildKey")


def run_pytest(where: Path, *args):
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES and k != "CLAIMS_LSTM_IMPL"}
    env["PYTHONPATH"] = str(where)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--rootdir={where}", *args],
                          cwd=where, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def foreign_suite(tmp_path):
    shutil.copy(OUTSIDE / "foreign_conftest.py", tmp_path / "conftest.py")
    shutil.copy(OUTSIDE / "foreign_tests.py", tmp_path / "test_foreign.py")
    return tmp_path


def test_the_plugin_is_installed_where_this_runs():
    from importlib.metadata import entry_points

    assert any(ep.value == "lstm_claims.plugin" for ep in entry_points(group="pytest11")), \
        "lstm-claims is not installed (pip install -e .): the inertness tests would prove nothing"


@pytest.mark.parametrize("plugin", ["loaded", "disabled"])
def test_a_foreign_suite_behaves_as_without_the_kit(foreign_suite, plugin):
    rc, out = run_pytest(foreign_suite, *(["-p", "no:lstm_claims"] if plugin == "disabled" else []))
    assert rc == 0, out
    assert "5 passed" in out, out
    assert ("lstm-claims-" in out.split("collected")[0]) == (plugin == "loaded"), out  # pytest's plugins line
    assert "lstm-claims:" not in out and "cell under test" not in out, out  # no header, no summary section


def test_pyargs_runs_the_installed_claim_suite_in_a_users_run(tmp_path):
    rc, out = run_pytest(tmp_path, "--pyargs", "lstm_claims.suite", "--lstm-impl=torch.nn:LSTMCell",
                         "--claims-ids=L1,L3", "--claims-device=cpu", "-q")
    assert rc == 0, out
    assert "lstm-claims: per-claim summary" in out and "L1  holds" in out and "L3  holds" in out
    assert "11 passed" in out, out  # L1: 1 check x 4 dtypes and 3 proofs; L3: 1 check x 4 dtypes


def test_parametrize_with_checks_in_a_users_own_module(tmp_path):
    shutil.copy(OUTSIDE / "users_tests.py", tmp_path / "test_users.py")
    shutil.copy(OUTSIDE / "buggy_cell.py", tmp_path / "buggy_cell.py")
    rc, out = run_pytest(tmp_path, "-q", "-rf")
    assert rc == 1, out
    # torch's cell passes all 6 cases (L0 forward/backward, L3; float64 and float32); the buggy one fails L0.
    assert "test_lstm_claims[LSTMCell-L0-forward-cpu-float64]" not in out.split("short test summary")[-1]
    assert "FAILED test_users.py::test_lstm_claims[ForgetsTwice-L0-forward-cpu-float64]" in out, out
    assert "[L0]" in out
    assert "4 failed, 8 passed" in out, out  # the doubled forget gate passes L3 (its direct term is still diag(f·f))
