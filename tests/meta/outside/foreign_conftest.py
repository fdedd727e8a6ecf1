"""Somebody else's test suite: its own `dtype` fixture, Hypothesis defaults, TF32 as it likes it."""
import pytest
import torch

torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch.set_num_threads(2)


@pytest.fixture
def dtype():
    return "their own dtype"
