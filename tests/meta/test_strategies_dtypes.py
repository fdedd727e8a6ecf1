"""Every public strategy draws values exact in its `exact_in` dtype (strategies/exact.py).

For float32, bfloat16 and float16: each drawn value round-trips exactly through exact_in
(t.to(dtype).to(float64) == t) and is finite there, with the pre-activations formed from it;
the default draws are float32-exact and are the draws of exact_in=torch.float32; a bad
exact_in fails early, naming the option. Few examples each: the test is a fast promise check
(the regimes themselves are shown by test_strategies.py and its siblings).
"""
import dataclasses
import math

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lstm_claims.reference.lstm_step import preactivations
from lstm_claims.strategies.exact import round_to
from lstm_claims.strategies.gating_sequences import (fixed_point_sequences, random_sequence, separated_forget_sequences,
                                                     sequences)
from lstm_claims.strategies.gradients import gradient_sets, max_norms, rescalings
from lstm_claims.strategies.long_range_sequences import (forget_gate_sequence, forget_gate_sequences,
                                                         sequence_problems, seeded_uniform)
from lstm_claims.strategies.lstm_problems import step_problems
from lstm_claims.strategies.residual_stacks import residual_stacks
from lstm_claims.strategies.vanilla_rnn_problems import rnn_problems

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
FEW = settings(max_examples=5, database=None, derandomize=True, deadline=None, phases=[Phase.generate],
               suppress_health_check=list(HealthCheck))

# Every public strategy, as a function of exact_in (small sizes where the defaults are slow to draw).
STRATEGIES = {
    "step_problems": lambda d: step_problems(exact_in=d),
    "sequence_problems": lambda d: sequence_problems(exact_in=d),
    "sequence_problems, W_hh = 0": lambda d: sequence_problems(recurrent=False, exact_in=d),
    "forget_gate_sequences": lambda d: forget_gate_sequences(max_log10_steps=2, exact_in=d),
    "fixed_point_sequences": lambda d: fixed_point_sequences(exact_in=d),
    "separated_forget_sequences": lambda d: separated_forget_sequences(exact_in=d),
    "sequences": lambda d: sequences(exact_in=d),
    "sequences, seeded inputs": lambda d: sequences(min_steps=150, max_steps=200, hidden_feedback=False, exact_in=d),
    "max_norms": lambda d: max_norms(exact_in=d),
    "rescalings": lambda d: rescalings(6, exact_in=d),
    "residual_stacks": lambda d: residual_stacks(max_depth=4, exact_in=d),
    "rnn_problems": lambda d: rnn_problems(max_steps=6, exact_in=d),
}
# Not strategies, but public makers of the same values.
MAKERS = {
    "random_sequence": lambda d: random_sequence(5, steps=20, exact_in=d),
    "forget_gate_sequence": lambda d: forget_gate_sequence(30, 3, 2, 2, 1, 20.0, 9, exact_in=d),
    "seeded_uniform": lambda d: seeded_uniform((4, 5), -12, 3, exact_in=d),
}


def _values(v):
    """Every float value in a draw, as float64 tensors."""
    if isinstance(v, torch.Tensor):
        yield v
    elif isinstance(v, float):
        yield torch.tensor([v], dtype=torch.float64)
    elif dataclasses.is_dataclass(v):
        for f in dataclasses.fields(v):
            if f.name != "drawn":
                yield from _values(getattr(v, f.name))
    elif isinstance(v, (list, tuple)):
        for x in v:
            yield from _values(x)


def _assert_exact_and_finite(v, dtype):
    values = list(_values(v))
    assert values, f"nothing drawn in {v!r}"
    for t in values:
        assert t.dtype == torch.float64
        assert torch.equal(round_to(t, dtype), t), f"a value is not exact in {dtype}: {t}"
        assert bool(torch.isfinite(t.to(dtype)).all()), f"a value is not finite in {dtype}"


def _assert_preactivations_fit(v, dtype):
    # Pre-activations formed from the drawn values (computed in float64) stay within dtype's range.
    big = torch.finfo(dtype).max
    if hasattr(v, "x") and hasattr(v, "params"):  # StepProblem
        a = preactivations(v.params, v.x, v.h)
        assert max(float(t.abs().max()) for t in (a.a_i, a.a_f, a.a_g, a.a_o)) < big
    if hasattr(v, "xs") and hasattr(v, "params") and hasattr(v.params, "weight_ih"):
        p = v.params
        hmax = 1.0
        bound = (p.weight_ih.abs().sum(1).max() * v.xs.abs().max() + p.weight_hh.abs().sum(1).max() * hmax
                 + p.bias_ih.abs().max() + p.bias_hh.abs().max())
        assert float(bound) < big


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_drawn_values_are_exact_and_finite_in_exact_in(name, dtype):
    @FEW
    @given(v=STRATEGIES[name](dtype))
    def check(v):
        _assert_exact_and_finite(v, dtype)
        _assert_preactivations_fit(v, dtype)

    check()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(MAKERS))
def test_made_values_are_exact_and_finite_in_exact_in(name, dtype):
    _assert_exact_and_finite(MAKERS[name](dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_gradient_significands_are_exact_in_exact_in(dtype):
    # gradient_sets' magnitudes are `dtype`'s regimes (below and past its range on purpose);
    # exact_in sets the significand: every finite value is m 2^e with m exact in exact_in.
    @FEW
    @given(data=st.data(), regime=st.sampled_from(["representable", "overflowing"]),
           grad_dtype=st.sampled_from([torch.float32, torch.float64]))
    def check(data, regime, grad_dtype):
        for g in data.draw(gradient_sets(dtype=grad_dtype, regime=regime, exact_in=dtype)):
            m, _ = torch.frexp(g)
            assert torch.equal(round_to(m, dtype), m), f"a significand is not exact in {dtype}: {g}"

    check()


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_default_draws_are_float32_exact_and_those_of_exact_in_float32(name):
    drawn = {}
    for key, strategy in (("default", _default(name)), ("float32", STRATEGIES[name](torch.float32))):
        got = drawn[key] = []

        @seed(20240611)
        @FEW
        @given(v=strategy)
        def collect(v):
            got.append([t.clone() for t in _values(v)])

        collect()
    assert len(drawn["default"]) == len(drawn["float32"]) > 0
    for a, b in zip(drawn["default"], drawn["float32"]):
        assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
        for t in a:
            assert torch.equal(round_to(t, torch.float32), t)


def _default(name):
    # The same strategy with exact_in left out (its default).
    return {
        "step_problems": lambda: step_problems(),
        "sequence_problems": lambda: sequence_problems(),
        "sequence_problems, W_hh = 0": lambda: sequence_problems(recurrent=False),
        "forget_gate_sequences": lambda: forget_gate_sequences(max_log10_steps=2),
        "fixed_point_sequences": lambda: fixed_point_sequences(),
        "separated_forget_sequences": lambda: separated_forget_sequences(),
        "sequences": lambda: sequences(),
        "sequences, seeded inputs": lambda: sequences(min_steps=150, max_steps=200, hidden_feedback=False),
        "max_norms": lambda: max_norms(),
        "rescalings": lambda: rescalings(6),
        "residual_stacks": lambda: residual_stacks(max_depth=4),
        "rnn_problems": lambda: rnn_problems(max_steps=6),
    }[name]()


@pytest.mark.parametrize("name", list(MAKERS))
def test_default_made_values_are_those_of_exact_in_float32(name):
    default = {"random_sequence": lambda: random_sequence(5, steps=20),
               "forget_gate_sequence": lambda: forget_gate_sequence(30, 3, 2, 2, 1, 20.0, 9),
               "seeded_uniform": lambda: seeded_uniform((4, 5), -12, 3)}[name]()
    a, b = list(_values(default)), list(_values(MAKERS[name](torch.float32)))
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


@FEW
@given(p=step_problems(max_batch=4, cell_exps=(-4, -4), exact_in=torch.float16))
def test_float16_rows_stay_distinct_below_the_normal_range(p):
    # c = unit x 2^-4 reaches float16's subnormals (below 2^-14), where rounding could merge
    # two drawn values: elements are distinct after the rounding.
    for t in (p.x, p.h, p.c):
        assert t.flatten().unique().numel() == t.numel()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_clamped_ranges_stay_positive_and_finite(dtype):
    @FEW
    @given(m=max_norms(exact_in=dtype), d=rescalings(8, max_exp=40, exact_in=dtype))
    def check(m, d):
        assert 0 < m < torch.finfo(dtype).max
        assert bool((d > 0).all()) and bool(torch.isfinite((d * d).to(dtype)).all())
        assert bool(((1 / d).to(dtype) < math.inf).all())

    check()


BAD = [torch.int32, torch.bool, torch.complex64, "float16", None, torch.float8_e4m3fn]


@pytest.mark.parametrize("bad", BAD, ids=str)
@pytest.mark.parametrize("make", [
    *STRATEGIES.values(),
    lambda d: gradient_sets(dtype=torch.float32, exact_in=d),
    *MAKERS.values(),
], ids=[*STRATEGIES, "gradient_sets", *MAKERS])
def test_bad_exact_in_fails_early_naming_the_option(make, bad):
    with pytest.raises(InvalidArgument, match="exact_in"):
        make(bad)


def test_ranges_that_float16_cannot_hold_are_refused_or_clamped():
    with pytest.raises(InvalidArgument, match="weight_exps"):
        rnn_problems(weight_exps=(20, 30), exact_in=torch.float16)

    @FEW
    @given(p=step_problems(weight_exps=(0, 12), exact_in=torch.float16))
    def check(p):
        # 2^12 weights cannot fit float16's pre-activations: the range is clamped below.
        assert p.drawn["weight_exp"] < 12
        _assert_exact_and_finite(p, torch.float16)
        _assert_preactivations_fit(p, torch.float16)

    check()
