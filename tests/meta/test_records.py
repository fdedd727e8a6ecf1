"""The claim records and the runner: what every caller of a check relies on.

* every claim of CLAIMS.md has a record with checks, and every check case has a readable, unique id;
* `examples` counts distinct examples executed: not Hypothesis's shrink attempts or its replay;
* figures aggregate as their check declares, not by their names;
* a violation the check's `refuted_by` accepts is a counterexample (the example passes), any other fails.
"""
import pytest
import torch
from hypothesis import settings
from hypothesis import strategies as st

from lstm_claims.claims.record import Check, CheckCase, cases_of, drawn_from
from lstm_claims.claims.registry import CLAIM_IDS, all_claims
from lstm_claims.claims.violation import ClaimViolation
from lstm_claims.profiles import PROFILES
from lstm_claims.results import ClaimLog
from lstm_claims.runner import run_case


def test_every_claim_has_a_record_with_checks_and_unique_readable_case_ids():
    claims = all_claims()
    assert [c.id for c in claims] == list(CLAIM_IDS)
    ids = [case.id for case in cases_of(claims)]
    assert len(ids) == len(set(ids))
    assert "L2-decomposition-cpu-float32" in ids and "L1-symbolic-n1" in ids and "V3-norm-and-rate-measured-cuda" in ids
    for claim in claims:
        assert claim.checks and all(isinstance(c, Check) for c in claim.checks)
        # Claims that never run the implementation are exactly the V and R claims (torch's own modules).
        assert any(c.through_impl for c in claim.checks) == (claim.id[0] in "LG"), claim.id


def _case(run, strategy=None, **kw):
    return CheckCase("L0", Check("synthetic", run, None if strategy is None else drawn_from(strategy), **kw),
                     "cpu", torch.float64)


def test_examples_count_distinct_examples_not_shrinks_or_replays():
    calls, log = [], ClaimLog()

    def run(ctx, x):
        calls.append(x)
        if x >= 500:
            raise ClaimViolation("L0", f"x = {x} is too large")
        return {"largest_x": x}

    with pytest.raises(ClaimViolation) as info:
        run_case(_case(run, st.integers(0, 1000)), None, log, settings_=settings(PROFILES["ci"], max_examples=200))
    first_failure = next(i for i, x in enumerate(calls) if x >= 500)
    assert str(info.value) == "[L0] x = 500 is too large"  # shrunk to the boundary
    assert len(calls) > first_failure + 1  # Hypothesis shrank and replayed...
    assert log["L0"].examples == first_failure  # ...and none of that counts
    assert log["L0"].figures["largest_x"] < 500  # nor moves a figure


def test_figures_aggregate_as_declared():
    xs = iter([3.0, 1.0, 2.0])

    def run(ctx, _):
        x = next(xs)
        return {"worst": x, "lowest": x, "total": x, "label": f"x={x}"}

    log = ClaimLog()
    run_case(_case(run, st.integers(0, 10 ** 6), aggregate={"lowest": "min", "total": "sum"}), None, log,
             settings_=settings(PROFILES["ci"], max_examples=3))
    f = log["L0"].figures
    assert (f["worst"], f["lowest"], f["total"], f["label"]) == (3.0, 1.0, 6.0, "x=2.0")


def test_refutation_is_recorded_and_passes_other_violations_fail():
    def run(ctx):
        raise ClaimViolation("L0", "the note overstates here", figures={"case": "overstated", "size": 7})

    log = ClaimLog()
    run_case(_case(run, refuted_by=lambda exc: exc.figures.get("case") == "overstated"), None, log,
             settings_=PROFILES["ci"], reproduce="lstm-claims run ...")
    r = log["L0"]
    assert r.counterexample["size"] == 7 and r.counterexample["check"] == "L0-synthetic-cpu-float64"
    assert r.reproduce == "lstm-claims run ..." and r.examples == 1  # a refuted example was executed
    with pytest.raises(ClaimViolation):
        run_case(_case(run, refuted_by=lambda exc: False), None, ClaimLog(), settings_=PROFILES["ci"])


def test_derandomized_case_draws_the_same_examples_alone_and_after_others():
    def drawn_by(case_name):
        seen = []
        case = CheckCase("L0", Check(case_name, lambda ctx, x: seen.append(x), drawn_from(st.integers())), "cpu",
                         torch.float64)
        run_case(case, None, ClaimLog(), settings_=PROFILES["ci"])
        return seen

    first = drawn_by("a")
    drawn_by("b")
    assert drawn_by("a") == first and drawn_by("b") != first


@pytest.mark.parametrize("bad", [dict(dtypes=("float8",)), dict(devices=("tpu",)), dict(aggregate={"x": "mean"})])
def test_a_malformed_check_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="synthetic"):
        Check("synthetic", lambda ctx: None, **bad)


def test_examples_rejected_by_assume_are_not_failures():
    """assume() raises Hypothesis's UnsatisfiedAssumption: the example is discarded, later ones still count."""
    from hypothesis import assume

    def run(ctx, x):
        assume(x % 2 == 0)
        return {"largest_even": x}

    log = ClaimLog()
    run_case(_case(run, st.integers(0, 10 ** 6)), None, log, settings_=settings(PROFILES["ci"], max_examples=20))
    assert log["L0"].examples >= 10 and log["L0"].figures["largest_even"] % 2 == 0
