"""The strategies reach every regime the claims talk about, and keep their promises."""
import pytest
import torch
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis.errors import InvalidArgument

from lstm_claims.reference.lstm_step import preactivations
from lstm_claims.strategies import step_problems

# No shrinking: reaching the regime is the point, not the minimal example that does.
FIND = settings(max_examples=3000, database=None, derandomize=True, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck))


def _a(p):
    g = preactivations(p.params, p.x, p.h)
    return torch.cat([g.a_i, g.a_f, g.a_g, g.a_o], 1)


REGIMES = {
    # σ'(8) < 3.4e-4: every gate deep in saturation.
    "all gates saturated (min |a| >= 8)": lambda p: _a(p).abs().min() >= 8,
    # σ'(0.5) > 0.235: every gate in its near-linear range.
    "all gates unsaturated (max |a| <= 0.5)": lambda p: _a(p).abs().max() <= 0.5,
    "forget gates near 1 (min f >= 1 - 1e-6)": lambda p: preactivations(p.params, p.x, p.h).f.min() >= 1 - 1e-6,
    "forget gates small (max f <= 0.1)": lambda p: preactivations(p.params, p.x, p.h).f.max() <= 0.1,
    "odd width > 1": lambda p: p.hidden_size % 2 == 1 and p.hidden_size > 1,
    "even width": lambda p: p.hidden_size % 2 == 0,
    "width 1": lambda p: p.hidden_size == 1,
    "batch 1": lambda p: p.batch == 1,
    "batch > 1 and width > 1": lambda p: p.batch > 1 and p.hidden_size > 1,
    "small cell state (max |c| <= 0.1)": lambda p: p.c.abs().max() <= 0.1,
    "large cell state (max |c| >= 32)": lambda p: p.c.abs().max() >= 32,
    "tiny weights (max |W| <= 2^-6)": lambda p: p.params.weight_hh.abs().max() <= 2 ** -6,
    # claims/through_cell.vjps leaves an output with a zero cotangent out of the loss: the backward paths of a
    # loss that reads h_t alone, or c_t alone (tests/cells/mutants.py: UnreadCellOutputSkipsCellPath).
    "loss reads h only (v_c = 0, v_h != 0)": lambda p: bool((p.v_c == 0).all() and (p.v_h != 0).any()),
    "loss reads c only (v_h = 0, v_c != 0)": lambda p: bool((p.v_h == 0).all() and (p.v_c != 0).any()),
}


@pytest.mark.parametrize("regime", list(REGIMES))
def test_step_problems_reach_regime(regime):
    find(step_problems(), REGIMES[regime], settings=FIND)


@settings(max_examples=100, database=None, derandomize=True)
@given(p=step_problems())
def test_batch_rows_distinct_and_values_float32_exact(p):
    for name, t in [("x", p.x), ("h", p.h), ("c", p.c)]:
        assert len({tuple(r) for r in t.tolist()}) == p.batch, f"{name} has repeated rows: {t}"
    for name, t in [*p.params.as_dict().items(), ("x", p.x), ("h", p.h), ("c", p.c), ("o_prev", p.o_prev)]:
        assert t.dtype == torch.float64
        assert torch.equal(t, t.float().double()), f"{name} is not exactly representable in float32"
    assert ((p.o_prev > 0) & (p.o_prev < 1)).all()


@pytest.mark.parametrize("kwargs,needle", [
    ({"min_hidden": 0}, "hidden size"),
    ({"max_hidden": 0}, "hidden size"),
    ({"max_batch": 0}, "max_batch"),
    ({"weight_exps": (3, -6)}, "weight_exps"),
    ({"forget_shifts": (0.5,)}, "forget_shifts"),
    ({"forget_shifts": ()}, "forget_shifts"),
])
def test_bad_strategy_arguments_fail_early_naming_the_argument(kwargs, needle):
    with pytest.raises(InvalidArgument, match=needle):
        step_problems(**kwargs)


def test_hypothesis_prints_the_problems_by_their_own_repr():
    """A falsifying example is printed by Hypothesis's pretty-printer, which shows a dataclass field by field
    (tensors at four digits); the problems' _repr_pretty_ makes it print their __repr__: the exact values, or
    the seeded call that rebuilds them (lstm_claims/pretty.py)."""
    from hypothesis.vendor.pretty import pretty

    from lstm_claims.strategies.kernel_problems import KERNEL_EXAMPLES, kernel_step_problem
    from lstm_claims.strategies.long_range_sequences import forget_gate_sequences, sequence_problems
    from lstm_claims.strategies.residual_stacks import residual_stacks
    from lstm_claims.strategies.vanilla_rnn_problems import rnn_problems

    from lstm_claims.strategies.kernel_problems import UNREAD_OUTPUT_EXAMPLES
    for p in (*KERNEL_EXAMPLES, *UNREAD_OUTPUT_EXAMPLES):
        assert pretty(p) == repr(p)
        rebuilt = eval(repr(p), {"kernel_step_problem": kernel_step_problem})
        assert torch.equal(rebuilt.x, p.x) and torch.equal(rebuilt.params.bias_ih, p.params.bias_ih)
        assert torch.equal(rebuilt.v_h, p.v_h) and torch.equal(rebuilt.v_c, p.v_c)
    from lstm_claims.strategies.sequence_checks import sequence_checks
    for strategy in (step_problems(), sequence_problems(max_steps=3), forget_gate_sequences(), residual_stacks(),
                     rnn_problems(), sequence_checks()):
        value = find(strategy, lambda _: True, settings=FIND)
        assert pretty(value) == repr(value), type(value).__name__
    # A long sequence's cotangents: the seeded calls that rebuild them, not 3000 numbers.
    from lstm_claims.claims.l0_sequences import SEQUENCE_EXAMPLES
    long = max(SEQUENCE_EXAMPLES, key=lambda c: c.seq.steps)
    assert pretty(long) == repr(long) and "sequence_check(1000, 66, 3, 4, seed=12)" in repr(long)
    assert "v_hs=[" not in repr(long)
