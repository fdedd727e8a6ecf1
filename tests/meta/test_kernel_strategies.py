"""strategies/kernel_problems.py reaches the regimes where kernels break (issue: kernel-grade power).

Under the ci settings the kernel-size checks draw 30 examples per case; these tests show
that such a run reaches tile tails past 128 and up to 257, batches past 32 that are not a
multiple of 8, distinct rows, and, for the extreme problems, pre-activations past e^a's
overflow in float32 (88.7) and float64 (709.8); and that every value is exact in float32.
"""
import math

import torch
from hypothesis import given, settings

from lstm_claims.profiles import PROFILES
from lstm_claims.reference.lstm_step import preactivations
from lstm_claims.strategies.kernel_problems import (KERNEL_EXAMPLES, KERNEL_WIDTHS, extreme_step_problems,
                                                     kernel_step_problems)


def _draw(strategy, n=30):
    seen = []

    @settings(PROFILES["ci"], max_examples=n)
    @given(strategy)
    def collect(problem):
        seen.append(problem)

    collect()
    return seen


def test_tile_boundaries_and_large_batches_are_reached():
    """The checks' explicit examples reach them in every run; the draws reach them too over a thorough run."""
    assert {2 ** k + d for k in range(4, 9) for d in (-1, 0, 1)} <= set(KERNEL_WIDTHS) and max(KERNEL_WIDTHS) == 257
    for problems in (KERNEL_EXAMPLES, _draw(kernel_step_problems(), n=120)):
        assert any(p.hidden_size > 256 and p.hidden_size % 128 for p in problems), "no tile tail past 256"
        assert any(p.hidden_size > 128 and p.hidden_size % 128 for p in problems), "no tile tail past 128"
        assert any(p.batch > 64 and p.batch % 8 for p in problems), "no batch past 64 off a multiple of 8"
        assert any(8 < p.batch < 32 and p.batch % 8 for p in problems)
    from lstm_claims.claims.registry import all_claims
    (l0,) = all_claims(["L0"])
    assert l0.check("forward-kernel-sizes").examples == KERNEL_EXAMPLES


def test_rows_are_distinct_and_values_float32_exact():
    for p in _draw(kernel_step_problems(), n=10):
        for t in (p.x, p.h, p.c, *p.params.as_dict().values()):
            assert torch.equal(t.to(torch.float32).to(torch.float64), t)
        if p.batch > 1:
            assert len({tuple(r) for r in p.h.tolist()}) == p.batch


def test_extreme_problems_pass_the_exp_overflow_thresholds():
    largest = [max(g.abs().max().item() for g in (pre.a_i, pre.a_f, pre.a_g, pre.a_o))
               for pre in (preactivations(p.params, p.x, p.h) for p in _draw(extreme_step_problems()))]
    assert min(largest) > math.log(torch.finfo(torch.float32).max)  # every example overflows e^a in float32
    assert sum(a > math.log(torch.finfo(torch.float64).max) for a in largest) >= 5  # and many in float64


def test_the_same_sign_example_grows_the_partial_sums_and_keeps_the_gates_unsaturated():
    """KERNEL_EXAMPLES' same-sign problem: every product of both GEMMs is >= 0 (partial sums reach Σ|terms|,
    where an accumulator in the dtype's own precision loses most), and the centring bias keeps |a| of order 1,
    so the error shows through the gates' slopes instead of vanishing in saturation."""
    from lstm_claims.reference.lstm_step import preactivations
    (p,) = [e for e in KERNEL_EXAMPLES if e.drawn.get("same_sign")]
    assert (p.x >= 0).all() and (p.h >= 0).all()
    assert (p.params.weight_ih >= 0).all() and (p.params.weight_hh >= 0).all()
    assert torch.equal(p.params.bias_ih, p.params.bias_ih.to(torch.float32).to(torch.float64))
    g = preactivations(p.params, p.x, p.h)
    a = torch.cat([g.a_i, g.a_f, g.a_g, g.a_o], 1)
    magnitude = p.x @ p.params.weight_ih.T + p.h @ p.params.weight_hh.T
    assert magnitude.min() > 10 * a.abs().median()  # the sums are large next to the pre-activations
    assert a.abs().median() < 1 and a.abs().max() < 4
