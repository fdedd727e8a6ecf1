"""Per-dtype verdicts (lstm_claims/results.py: dtype_verdicts) and their table (lstm_claims/report_dtypes.py),
and the low-precision budget and input rounding of claims/low_precision.py."""
from __future__ import annotations

import torch

from lstm_claims.claims.low_precision import LOW_PRECISION_CI_SCALE, examples_scale, exact_problem
from lstm_claims.claims.record import Check, CheckCase
from lstm_claims.claims.registry import Claim
from lstm_claims.report_dtypes import dtypes_html
from lstm_claims.results import NOT_CHECKED, ClaimLog, dtype_figures, dtype_verdicts, dtypes_why_not
from lstm_claims.strategies.exact import round_to
from lstm_claims.strategies.lstm_problems import StepProblem
from lstm_claims.reference.lstm_step import LSTMParams


def _claim(*checks, unconditional=True):
    claim = Claim(id="L0", title="t", statement="s", condition="c", quantity="q", unconditional=unconditional)
    claim.define_checks(*checks)
    return claim


def _log(passed=0, failed=0, refuted=False):
    log = ClaimLog()
    r = log["L0"]
    r.passed, r.failed = passed, failed
    if refuted:
        log.refute("L0", {"x": 1})
    return log


def test_each_dtype_gets_the_verdict_of_its_own_cases():
    lp = Check("a", lambda ctx: {}, dtypes=("float64", "float32", "bfloat16", "float16"))
    only = Check("b", lambda ctx: {}, dtypes=("float64", "float32"), dtypes_why_not="a reason")
    claim = _claim(lp, only)
    cases = [
        (CheckCase("L0", lp, "cpu", torch.float64), _log(passed=1)),
        (CheckCase("L0", only, "cpu", torch.float64), _log(passed=1, refuted=True)),
        (CheckCase("L0", lp, "cpu", torch.float32), _log(passed=1)),
        (CheckCase("L0", lp, "cpu", torch.bfloat16), _log(failed=1)),
        (CheckCase("L0", lp, "cuda", torch.float16), ClaimLog()),  # skipped: nothing ran
    ]
    got = dtype_verdicts(claim, cases)
    assert got == {"float64": "refuted", "float32": "holds", "bfloat16": "failed", "float16": "not-run"}
    assert dtypes_why_not(claim) == {"b": "a reason"}


def test_a_dtype_no_check_lists_is_not_checked():
    claim = _claim(Check("a", lambda ctx: {}, dtypes=("float64",)), unconditional=False)
    got = dtype_verdicts(claim, [(CheckCase("L0", claim.checks[0], "cpu", torch.float64), _log(passed=2))])
    assert got == {"float64": "holds-under-condition", "float32": NOT_CHECKED, "bfloat16": NOT_CHECKED,
                   "float16": NOT_CHECKED}


def test_each_dtype_gets_the_figures_of_its_own_cases():
    """claims.json's figures_by_dtype: a figure aggregated over one dtype's cases only (the claim's own figure
    is the aggregate over all of them); plots and tables stay out; an unlisted dtype is left out."""
    check = Check("a", lambda ctx: {}, dtypes=("float64", "float32", "bfloat16"))
    claim = _claim(check)
    logs = []
    for dtype, worst in ((torch.float64, 0.1), (torch.float32, 0.4), (torch.bfloat16, 0.2), (torch.float32, 0.3)):
        log = ClaimLog()
        log.example("L0", worst_error_over_allowed=worst, table={"a": 1})
        logs.append((CheckCase("L0", check, "cpu", dtype), log))
    got = dtype_figures(claim, logs)
    assert got == {"float64": {"worst_error_over_allowed": 0.1}, "float32": {"worst_error_over_allowed": 0.4},
                   "bfloat16": {"worst_error_over_allowed": 0.2}}


def test_the_table_shows_every_claim_and_the_reasons():
    page = dtypes_html({"claims": {"L0": {"dtypes": {"float64": "holds", "float32": "holds", "bfloat16": "failed",
                                                     "float16": NOT_CHECKED},
                                          "dtypes_why_not": {"b": "float16 <overflows>"}}}})
    assert "Verdicts per dtype" in page and ">failed<" in page and ">not-checked<" in page
    assert "float16 &lt;overflows&gt;" in page  # escaped
    assert dtypes_html({"claims": {"L0": {}}}) == ""


def test_low_precision_runs_fewer_examples_in_ci_only():
    assert examples_scale(torch.bfloat16, "ci") == examples_scale(torch.float16, "ci") == LOW_PRECISION_CI_SCALE < 1
    assert examples_scale(torch.float32, "ci") == examples_scale(torch.bfloat16, "thorough") == 1.0


def test_explicit_examples_are_rounded_to_the_low_dtype_only():
    t = torch.tensor([[1 + 2.0 ** -20, 0.1]], dtype=torch.float64)
    p = StepProblem(LSTMParams(torch.ones(4, 2, dtype=torch.float64) / 3, torch.ones(4, 1, dtype=torch.float64) / 3,
                               torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)),
                    t, t[:, :1], t[:, :1], t[:, :1], t[:, :1], t[:, :1], {})
    assert exact_problem(p, torch.float32) is p
    q = exact_problem(p, torch.bfloat16)
    assert torch.equal(q.x, round_to(t, torch.bfloat16)) and torch.equal(q.params.weight_ih, round_to(p.params.weight_ih,
                                                                                                     torch.bfloat16))
    assert torch.equal(exact_problem(q, torch.bfloat16).x, q.x)  # exact values stay as they are
