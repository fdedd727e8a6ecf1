"""Tests that pass without lstm-claims installed, and must pass unchanged with it installed."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

def test_their_dtype_fixture_is_theirs(dtype):
    assert dtype == "their own dtype"


def test_a_device_argument_is_not_parametrized_for_them(request):
    assert "device" not in request.fixturenames


@given(st.integers())
def test_hypothesis_runs_with_its_defaults(x):
    current = settings.default
    assert settings._current_profile == "default", settings._current_profile
    assert current.max_examples == 100 and not current.derandomize, current


def test_tf32_flags_are_theirs():
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_torch_threads_untouched():
    assert torch.get_num_threads() == 2  # set by their conftest
