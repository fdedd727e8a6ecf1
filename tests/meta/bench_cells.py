"""Cells for the tests of `lstm-claims bench --lstm-impl` (tests/meta/test_bench_impl.py)."""
import torch


class Float32OnlyLSTMCell(torch.nn.LSTMCell):
    """torch.nn.LSTMCell that refuses every dtype but float32 and float64, as a kernel written for
    float32 might: its bfloat16 benchmarks must be reported unsupported, with this exception."""

    def forward(self, x, state=None):
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"Float32OnlyLSTMCell supports float32 and float64, not {x.dtype}")
        return super().forward(x, state)
