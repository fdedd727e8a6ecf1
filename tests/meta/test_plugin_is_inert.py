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
import torch

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


def _tf32_state():
    b = torch.backends
    state = {"matmul.allow_tf32": b.cuda.matmul.allow_tf32, "cudnn.allow_tf32": b.cudnn.allow_tf32}
    for name, backend in (("matmul", b.cuda.matmul), ("cudnn.conv", getattr(b.cudnn, "conv", None)),
                          ("cudnn.rnn", getattr(b.cudnn, "rnn", None))):
        if backend is not None and hasattr(backend, "fp32_precision"):
            state[name + ".fp32_precision"] = backend.fp32_precision
    return state


def test_the_sessions_ieee_float32_settings_read_back_and_restore():
    """The claim session turns TF32 off in both of torch's APIs (the new one reaches cuDNN's RNNs, the
    legacy one alone did not on torch 2.11): while it is off, torch's own RNN modules and user code can
    still read the legacy flags (torch refuses reads when the two APIs disagree), and afterwards every
    flag is as it was."""
    from lstm_claims.plugin import _ieee_float32, _restore_float32

    before = _tf32_state()
    saved = _ieee_float32()
    try:
        during = _tf32_state()  # raises if torch sees a mix of the legacy and new APIs
        assert during["matmul.allow_tf32"] is False and during["cudnn.allow_tf32"] is False, during
        assert all(v == "ieee" for k, v in during.items() if k.endswith("fp32_precision")), during
        torch.nn.RNN(3, 4)(torch.randn(2, 1, 3))  # reads cudnn.allow_tf32
    finally:
        _restore_float32(saved)
    assert _tf32_state() == before


def test_a_caller_on_the_new_tf32_api_alone_keeps_it():
    """A caller who set only the per-backend API (torch then refuses legacy reads): the session sets and
    restores the new API alone, and does not crash reading the legacy flags. In a fresh interpreter, so
    this process's flags stay untouched."""
    script = (
        "import torch\n"
        "from lstm_claims.plugin import _ieee_float32, _restore_float32\n"
        "b = torch.backends\n"
        "b.cuda.matmul.fp32_precision = 'tf32'; b.cudnn.conv.fp32_precision = 'tf32'; b.cudnn.rnn.fp32_precision = 'tf32'\n"
        "saved = _ieee_float32()\n"
        "assert (b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision, b.cudnn.rnn.fp32_precision) == ('ieee',) * 3\n"
        "_restore_float32(saved)\n"
        "assert (b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision, b.cudnn.rnn.fp32_precision) == ('tf32',) * 3\n"
        "print('ok')\n")
    if not hasattr(torch.backends.cudnn, "rnn"):
        pytest.skip(f"torch {torch.__version__} has no per-backend TF32 API (torch.backends.cudnn.rnn)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


def test_a_run_without_the_claim_suite_imports_neither_torch_nor_the_kit(tmp_path):
    """The plugin is loaded into every pytest run of the environment: a run that does not collect the claim
    suite must not pay torch's import (2.6 s, measured) nor need torch at all. Serially and under xdist."""
    (tmp_path / "test_light.py").write_text(
        "import sys\n\n\n"
        "def test_nothing_heavy_was_imported():\n"
        "    heavy = [m for m in ('torch', 'sympy', 'lstm_claims.claims.registry') if m in sys.modules]\n"
        "    assert not heavy, heavy\n"
        "\n\n"
        "import pytest\n\n\n"
        "@pytest.mark.parametrize('case', [1, 2])\n"  # a parameter named like the suite's must not load the kit
        "def test_a_param_named_case(case):\n"
        "    assert 'torch' not in sys.modules\n")
    rc, out = run_pytest(tmp_path, "-q", "test_light.py")
    assert rc == 0 and "3 passed" in out, out
    assert "lstm_claims.plugin" in run_pytest(tmp_path, "--trace-config", "-q", "test_light.py")[1]  # it was loaded
    rc, out = run_pytest(tmp_path, "-q", "-n", "2", "-p", "no:benchmark", "test_light.py")
    assert rc == 0 and "3 passed" in out, out
