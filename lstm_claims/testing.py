"""Run the kit's checks inside your own pytest suite (in the spirit of scikit-learn's parametrize_with_checks).

    from lstm_claims.testing import parametrize_with_checks

    @parametrize_with_checks(["mypackage.cells:MyLSTMCell"])
    def test_lstm_claims(impl, check):
        check(impl)

yields one test per check case that runs the implementation under test (the claims it can
break: L0-L9, G1-G4), with readable ids (`test_lstm_claims[MyLSTMCell-L2-decomposition-cpu-float32]`),
on the kit's `ci` profile. A check that fails raises the claim's ClaimViolation with the
shrunk example; a counterexample to the note (a refutation) passes, as in `lstm-claims run`.
No plugin option is needed, and nothing outside these tests changes.
"""
from __future__ import annotations

import functools

import pytest
import torch

from lstm_claims.claims.cell_under_test import CellUnderTest, check_contract
from lstm_claims.claims.record import DTYPES, CheckCase, cases_of
from lstm_claims.claims.registry import CLAIM_IDS, all_claims
from lstm_claims.profiles import profile_settings
from lstm_claims.results import ClaimLog
from lstm_claims.runner import run_case


@functools.lru_cache(maxsize=None)
def _load(spec: str) -> CellUnderTest:
    return CellUnderTest.load(spec)


class _Check:
    """One check case, callable on an implementation spec (the `check` argument of the test)."""

    def __init__(self, case: CheckCase, profile: str):
        self.case, self.profile = case, profile

    def __call__(self, impl: str) -> None:
        __tracebackhide__ = True
        cut = _load(impl)
        if self.case.device == "cuda" and not torch.cuda.is_available():
            pytest.skip("CUDA is not available on this machine")
        check_contract(cut, self.case.device, self.case.dtype)
        run_case(self.case, cut, ClaimLog(), settings_=profile_settings(self.profile),
                 reproduce=f"lstm-claims run --lstm-impl={impl} --claims={self.case.claim_id} --select={self.case.id}")

    def __repr__(self):
        return f"check {self.case.id}"


def parametrize_with_checks(impls, *, claims=CLAIM_IDS, devices=("cpu", "cuda"), checks=None, profile: str = "ci",
                            dtypes=tuple(DTYPES)):
    """A pytest.mark.parametrize over (impl, check) for every implementation in `impls` (MODULE:ATTR specs)
    and every check of `claims` that runs the implementation under test (only those named in `checks`,
    e.g. ("forward", "backward"), when given), in each of its dtypes within `dtypes` (default: all four)."""
    if isinstance(impls, str):
        impls = [impls]
    profile_settings(profile)  # one clear error for an unknown profile
    params = []
    for impl in impls:
        for case in cases_of(all_claims(tuple(claims)), devices=devices, dtypes=tuple(dtypes)):
            if not case.check.through_impl or (checks is not None and case.check.name not in checks):
                continue
            marks = []
            if case.device == "cuda" and not torch.cuda.is_available():
                marks.append(pytest.mark.skip(reason="CUDA is not available on this machine"))
            params.append(pytest.param(impl, _Check(case, profile), marks=marks,
                                       id=f"{impl.rsplit(':', 1)[-1]}-{case.id}"))
    return pytest.mark.parametrize("impl, check", params)
