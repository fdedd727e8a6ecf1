"""The low-precision findings the README states about torch itself, kept true by measuring them.

G2 in float16: clip_grad_norm_ accumulates the squares in float32 (no element's square overflows), but
returns the total norm in float16, which is inf from about 65520 on (65504 + half an ulp): every
gradient is then multiplied by max_norm / inf = 0. bfloat16 has float32's range: inf only once the
float32 accumulation overflows (an element of 2^64).
"""
import pytest
import torch


def _clip(values, dtype, max_norm=1.0):
    p = torch.nn.Parameter(torch.zeros(len(values), dtype=dtype))
    p.grad = torch.tensor(values, dtype=dtype)
    total = torch.nn.utils.clip_grad_norm_([p], max_norm)
    return float(total), p.grad.double()


def test_float16_norm_overflow_zeroes_finite_gradients():
    total, grad = _clip([46400.0, 46400.0], torch.float16)  # exact norm 65619.5 > 65520: rounds to inf
    assert total == float("inf") and bool((grad == 0).all())
    total, grad = _clip([46000.0, 46000.0], torch.float16)  # exact norm 65053.8: finite, clipped to ~1
    assert total < 65504 and abs(float(grad.norm()) - 1.0) < 2 ** -8


def test_float16_squares_do_not_overflow_an_element_of_2_to_the_15():
    total, grad = _clip([32768.0], torch.float16)  # its square is 2^30, far beyond float16, fine in float32
    assert total == 32768.0 and abs(float(grad.norm()) - 1.0) < 2 ** -8


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=str)
def test_bfloat16_overflows_where_float32_does(dtype):
    total, grad = _clip([2.0 ** 64, 1.0], dtype)
    assert total == float("inf") and bool((grad == 0).all())
    total, _ = _clip([2.0 ** 62, 1.0], dtype)
    assert total == 2.0 ** 62
