""".ci/gpu: what it says first, its skip without CUDA (exit 0), and its steps' bookkeeping.

Without a GPU the script runs nothing after its probe of torch (quick). Its GPU path runs here
with a stand-in interpreter that reports a GPU and runs no suite: each step's wall time is
printed, a failing or timed-out step makes the exit status 1, and the steps write under DIR.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "gpu"
FIRST_LINE = ("lstm-claims .ci/gpu: on a CUDA GPU, runs the claim suite on cuda for the reference cell, "
              "torch.nn:LSTMCell and torch.nn:LSTM (cuDNN), then lstm-claims bench (CPU and CUDA cases), into ")

FAKE_PYTHON = """#!/usr/bin/env bash
# Stand-in interpreter: reports a GPU; `-m ...` (the kit's commands) prints its arguments and exits 0,
# or 1 when they contain $FAKE_FAIL, or sleeps when they contain $FAKE_SLOW.
case "$1" in
  -c) case "$2" in *get_device_name*) echo "2.13.0|Fake H200|12.8";; esac; exit 0;;
  -m) echo "ran: $*"
      if [ -n "${FAKE_SLOW:-}" ] && [[ "$*" == *"$FAKE_SLOW"* ]]; then sleep 30; fi
      if [ -n "${FAKE_FAIL:-}" ] && [[ "$*" == *"$FAKE_FAIL"* ]]; then exit 1; fi
      exit 0;;
  -) cat >/dev/null; exit 0;;
esac
"""


def run_script(out: Path, python: str, **env):
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("FAKE_")}, "PYTHON": python, **env}
    proc = subprocess.run([str(SCRIPT), str(out)], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_the_script_is_executable():
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA: the script would run")
def test_without_cuda_it_says_what_it_would_do_then_skips_with_exit_0(tmp_path):
    rc, out, err = run_script(tmp_path / "report-gpu", sys.executable)
    assert rc == 0, out + err
    lines = out.splitlines()
    assert lines[0].startswith(FIRST_LINE), lines[0]
    assert lines[1].startswith("lstm-claims .ci/gpu: skipped: CUDA is not available on this machine"), out
    assert "torch.cuda.is_available() is False" in lines[1] and len(lines) == 2, out
    assert not (tmp_path / "report-gpu").exists()  # nothing ran, nothing written


@pytest.fixture
def fake_python(tmp_path):
    path = tmp_path / "python"
    path.write_text(FAKE_PYTHON)
    path.chmod(0o755)
    return str(path)


def test_on_a_gpu_it_runs_the_four_steps_and_prints_their_wall_times(tmp_path, fake_python):
    out_dir = tmp_path / "report-gpu"
    rc, out, err = run_script(out_dir, fake_python)
    assert rc == 0, out + err
    assert out.splitlines()[0].startswith(FIRST_LINE)
    assert "GPU: Fake H200" in out
    assert f"ran: -m lstm_claims.cli run --device cuda -n 4 --out {out_dir}/reference" in out
    assert f"ran: -m lstm_claims.cli run --device cuda -n 4 --lstm-impl=torch.nn:LSTMCell --out {out_dir}/torch-LSTMCell" in out
    assert f"ran: -m lstm_claims.cli run --device cuda -n 4 --lstm-impl=torch.nn:LSTM --out {out_dir}/torch-LSTM" in out
    assert f"ran: -m lstm_claims.cli bench --out {out_dir}/bench" in out
    for step in ("claims-reference", "claims-torch-LSTMCell", "claims-torch-LSTM", "bench"):
        assert f"step {step}: passed in " in out
        assert (out_dir / f"{step}.log").is_file()


def test_gpu_workers_1_runs_the_claim_steps_serially(tmp_path, fake_python):
    rc, out, err = run_script(tmp_path / "r", fake_python, GPU_WORKERS="1")
    assert rc == 0, out + err
    assert f"ran: -m lstm_claims.cli run --device cuda --out {tmp_path}/r/reference" in out and " -n " not in out


def test_a_failing_step_makes_the_exit_status_1_and_the_others_still_run(tmp_path, fake_python):
    rc, out, err = run_script(tmp_path / "r", fake_python, FAKE_FAIL="LSTMCell")
    assert rc == 1, out + err
    assert "step claims-torch-LSTMCell: FAILED (exit status 1)" in out
    assert "step bench: passed" in out and "a step failed" in out


def test_a_step_over_its_time_limit_fails(tmp_path, fake_python):
    rc, out, err = run_script(tmp_path / "r", fake_python, FAKE_SLOW="bench", GPU_STEP_LIMIT_S="1")
    assert rc == 1, out + err
    assert "step bench: TIMED OUT after" in out
