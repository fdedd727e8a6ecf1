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
                    max_examples=60, derandomize=True, strategy=None, checks=None) -> ClaimViolation | None:
    """The first ClaimViolation of `claim_id` on implementation `spec`, or None if every example passed.

    `strategy` replaces the drawn checks' own strategies (fixed checks still run as they are);
    `checks` (names) narrows the run to those checks of the claim.
    """
    cut = CellUnderTest.load(spec)
    run_settings = settings(max_examples=max_examples, derandomize=derandomize, database=None, deadline=None,
                            phases=[Phase.explicit, Phase.generate], print_blob=True)
    # One torch thread, as the plugin's default --claims-threads 1 (measured faster for the checks'
    # small ops, and not oversubscribed when other processes share the cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for case in catalogue_cases(claim_id, device=device, dtypes=dtypes):
            if (strategy is not None and case.check.strategy is None) or (checks and case.check.name not in checks):
                continue
            try:
                run_case(case, cut, ClaimLog(), settings_=run_settings, strategy=strategy)
            except ClaimViolation as exc:
                return exc
        return None
    finally:
        torch.set_num_threads(threads)
