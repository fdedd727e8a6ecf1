"""Run a claim's checks in-process on any implementation, from the claim records (no pytest session).

Used by the kit's catalogue of correct and buggy cells (tests/meta/test_cell_catalogue.py):
every check of a claim that runs the implementation under test and is not left out of the
catalogue for its cost (Check.not_in_catalogue) runs here, with Hypothesis settings chosen
per call and no shrinking (the first violation is all a power test needs).
"""
from __future__ import annotations

import torch
from hypothesis import Phase, settings

from lstm_claims.claims.cell_under_test import CellUnderTest
from lstm_claims.claims.record import CheckCase, dtype_name
from lstm_claims.claims.registry import all_claims
from lstm_claims.claims.violation import ClaimViolation
from lstm_claims.results import ClaimLog
from lstm_claims.runner import run_case


def catalogue_cases(claim_id: str, *, device="cpu", dtypes=(torch.float64, torch.float32)) -> list[CheckCase]:
    """The cases of `claim_id` the catalogue runs: checks through the implementation, in record order."""
    (claim,) = all_claims([claim_id])
    return [CheckCase(claim.id, check, device, dtype) for check in claim.checks if check.in_catalogue
            for dtype in dtypes if dtype_name(dtype) in check.dtypes and device in check.devices]


def first_violation(spec: str, claim_id: str, *, device="cpu", dtypes=(torch.float64, torch.float32),
                    max_examples=60, derandomize=True, strategy=None, checks=None,
                    screen: int | None = None) -> ClaimViolation | None:
    """The first ClaimViolation of `claim_id` on implementation `spec`, or None if every example passed.

    `strategy` replaces the drawn checks' own strategies (fixed checks still run as they are);
    `checks` (names) narrows the run to those checks of the claim.

    `screen` (for callers that expect a violation, e.g. a mutant's must_fail): first run every
    case with only `screen` examples (its explicit examples and the first drawn ones), so a bug
    that a later check catches at once does not wait for an earlier check's full `max_examples`
    to pass; if none fails, the full run follows, exactly as without `screen` (same settings,
    same seeds: each case's derandomized seed derives from its id alone), so what the full run
    catches is still caught. Fixed checks (no drawn examples) run in the full pass only. The
    screen pays where a claim's checks are cheap per example and a bug shows in a later check
    at once (L0: a backward-only bug); where a later check is costly per example and an earlier
    one catches the bug after some tens of examples, it only adds the screen's cost.
    """
    cut = CellUnderTest.load(spec)
    cases = [case for case in catalogue_cases(claim_id, device=device, dtypes=dtypes)
             if not ((strategy is not None and case.check.strategy is None) or (checks and case.check.name not in checks))]
    passes = [screen, max_examples] if screen is not None and screen < max_examples else [max_examples]
    # One torch thread, as the plugin's default --claims-threads 1 (measured faster for the checks'
    # small ops, and not oversubscribed when other processes share the cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for n in passes:
            run_settings = settings(max_examples=n, derandomize=derandomize, database=None, deadline=None,
                                    phases=[Phase.explicit, Phase.generate], print_blob=True)
            for case in cases:
                if n != max_examples and case.check.strategy is None and strategy is None:
                    continue  # a fixed check (no drawn examples) runs in the full pass only, in its place
                try:
                    run_case(case, cut, ClaimLog(), settings_=run_settings, strategy=strategy)
                except ClaimViolation as exc:
                    return exc
        return None
    finally:
        torch.set_num_threads(threads)
