"""Collection and shared settings of the benchmark folder.

* bench_*.py files are collected only when this folder (or a file in it) is named in the
  pytest arguments, so `pytest .` or `pytest tests` never run a benchmark by accident.
* Denormals: every benchmark runs with torch.set_flush_denormal(False), IEEE gradual
  underflow, the default and what the accuracy tests assume, set explicitly here before
  each benchmark (nothing in the kit turns it on) and recorded in its extra_info. The scan inputs
  contain underflowing products on purpose, so this choice can matter on CPUs where
  subnormal arithmetic is slow.
* bench_impl.py (your implementation against torch's LSTMs) is collected only with --lstm-impl;
  --bench-impl-sizes=smoke shrinks it to tiny sizes.
* Threads: torch's intra-op thread count is recorded (not changed).
* TF32: the kit's pytest plugin switches TF32 off for every session, this one included, so
  CUDA float32 matmuls and cuDNN RNNs are timed in IEEE float32 (what the accuracy figures
  assume), not in torch's TF32 default for cuDNN; both flags are recorded with each benchmark.
"""
from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
import torch

BENCH_DIR = Path(__file__).resolve().parent


def pytest_addoption(parser):
    parser.addoption("--bench-impl-sizes", default="full", choices=("full", "smoke"),
                     help="sizes of bench_impl.py (the --lstm-impl benchmark): full (T = 100, B in {1, 64}, "
                          "n in {128, 512}) or smoke (tiny, seconds)")


def impl_requested(config) -> bool:
    """bench_impl.py runs only when an implementation is named (the kit's plugin's --lstm-impl)."""
    return bool(config.getoption("lstm_impl", default=None))


def pytest_configure(config):
    # torch.func imports torch.jit.script internally, which warns on every use in torch 2.13.
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def _requested(config) -> bool:
    for arg in config.args:
        path = Path(str(arg).split("::")[0]).resolve()
        if path == BENCH_DIR or BENCH_DIR in path.parents:
            return True
    return False


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix != ".py" or not fnmatch.fnmatch(file_path.name, "bench_*.py"):
        return None
    if parent.session.isinitpath(file_path) or any(
            fnmatch.fnmatch(file_path.name, pat) for pat in parent.config.getini("python_files")):
        return None  # named on the command line, or matched by python_files: pytest collects it itself
    if not _requested(parent.config):
        return None
    if file_path.name == "bench_impl.py" and not impl_requested(parent.config):
        return None  # without --lstm-impl, `lstm-claims bench` runs what it ran before bench_impl.py existed
    return pytest.Module.from_parent(parent, path=file_path)


@pytest.fixture(autouse=True)
def _benchmark_settings(request):
    """IEEE denormals (see above), set before every benchmark and recorded with it."""
    torch.set_flush_denormal(False)
    if "benchmark" in request.fixturenames:
        bench = request.getfixturevalue("benchmark")
        bench.extra_info.update(flush_denormal=False, torch_threads=torch.get_num_threads(),
                                torch=torch.__version__,
                                tf32_cuda_matmul=torch.backends.cuda.matmul.allow_tf32,
                                tf32_cudnn=torch.backends.cudnn.allow_tf32)
    yield
