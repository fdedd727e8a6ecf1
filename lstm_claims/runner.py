"""Run one CheckCase: draw its examples with Hypothesis, call the check, record what it measured.

Used by the claim suite (lstm_claims/suite), the in-process catalogue runner
(lstm_claims/inprocess) and parametrize_with_checks (lstm_claims/testing), so every caller
runs the same checks the same way. What it adds around a check's `run`:

* examples: one per call, counted until the first failure; Hypothesis's shrink attempts
  and its final replay of the minimal example run with recording off (they are not new
  examples, and a passing shrink candidate must not move the figures);
* refutation: a ClaimViolation that the check's `refuted_by` accepts is a counterexample to
  the note, recorded, and the example passes;
* seeds: derandomized profiles derive each check's seed from its case id; random profiles
  take `seed` (the session's, mixed with the case id) so a run can be replayed;
* Hypothesis's harvesting of constants from imported modules is off while a check runs, so
  the same case draws the same examples alone and inside the whole suite.
"""
from __future__ import annotations

import contextlib
import traceback
import zlib

from hypothesis import example, given, note, seed as hypothesis_seed, settings
from hypothesis.errors import StopTest, UnsatisfiedAssumption

from lstm_claims.claims.cell_under_test import CellContractError
from lstm_claims.claims.record import CheckCase, CheckContext
from lstm_claims.claims.violation import ClaimViolation


@contextlib.contextmanager
def _constants_from_imports_off():
    """Hypothesis (6.131+) mixes constants harvested from the imported *local* modules into
    draws, so a derandomized check drew other examples alone (its reproduce command) than
    inside the full suite. Off while a check runs, restored after. A private hook: on a
    Hypothesis without it this does nothing."""
    try:
        from hypothesis.internal.conjecture import providers
        empty = providers.Constants()
        original = providers._get_local_constants
    except (ImportError, AttributeError, TypeError):
        yield
        return
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = original


class ImplementationRaised(Exception):
    """The implementation under test raised an exception (not a claim's violation): a finding, said once."""

    def __init__(self, message: str, phase: str, original: BaseException):
        super().__init__(message)
        self.phase, self.original = phase, original


def _phase_of(exc: BaseException) -> str | None:
    """'forward' if exc was raised inside the implementation's forward (CellUnderTest.step), 'backward'
    if inside torch.autograd (the implementation's backward), else None (the kit's own code)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if any(f.name == "step" and f.filename.endswith("cell_under_test.py") for f in frames):
        return "forward"
    if any("/torch/autograd/" in f.filename.replace("\\", "/") for f in frames):
        return "backward"
    return None


def implementation_raised(exc: BaseException, case: CheckCase, cut) -> ImplementationRaised | None:
    """The finding for an exception the implementation raised while `case` ran it, or None."""
    if cut is None or isinstance(exc, (ClaimViolation, AssertionError)) or not isinstance(exc, Exception):
        return None
    if isinstance(exc, CellContractError) and exc.__cause__ is None:
        # The kit's own check of a result's shape or dtype (CellUnderTest.step), broken under this
        # check's path only (the session's contract check passed): this check fails, saying what is
        # wrong; the implementation did not raise, so nothing else is blocked.
        return None
    phase = _phase_of(exc)
    if phase is None:
        return None
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()] or [""]
    # The first line and the last (TorchScript puts its interpreter's traceback between them).
    first_line = lines[0][:300] + (f" ... {lines[-1][:300]}" if len(lines) > 1 else "")
    calls = "; ".join(list(cut.calls)[-6:]) or "none recorded"
    return ImplementationRaised(
        f"the implementation under test ({cut.spec}) raised {type(exc).__name__} in its {phase}: {first_line}\n"
        f"  while check {case.id} ran it; its last forward calls (oldest first): {calls}", phase, exc)


def case_seed(session_seed: int, case: CheckCase) -> int:
    return (int(session_seed) + zlib.crc32(case.id.encode())) % 2 ** 32


def run_case(case: CheckCase, cut, log, *, settings_: settings, session_seed: int | None = None,
             reproduce: str = "", strategy=None, examples_scale: float = 1.0) -> None:
    """Run `case` on `cut` (None for checks that do not run the implementation), recording into `log`.

    Raises the check's ClaimViolation (or any other exception) when it fails; Hypothesis
    prints the minimal example, with the case id and `reproduce` as notes. `strategy`
    replaces the check's own (for the kit's meta tests). `examples_scale` multiplies the check's
    max_examples_scale (the plugin's per-dtype budget: claims/low_precision.py).
    """
    __tracebackhide__ = True
    check = case.check
    ctx = CheckContext(case, cut, log, reproduce=reproduce)
    failed = []

    def call(*drawn):
        ctx.recording = not failed
        try:
            figures = check.run(ctx, *drawn)
        except ClaimViolation as exc:
            if check.refuted_by is not None and check.refuted_by(exc):
                ctx.refute({"check": case.id, "device": case.device, "dtype": str(case.dtype), "message": str(exc),
                            **exc.figures})
                ctx.figures(counterexamples=1.0)
                figures = {}
            else:
                failed.append(exc)
                raise
        except (UnsatisfiedAssumption, StopTest):
            raise  # Hypothesis's control flow (an assume() that rejects, the end of the data): not a failure
        except BaseException as exc:
            failed.append(exc)
            finding = implementation_raised(exc, case, cut)
            if finding is not None:
                raise finding from exc
            raise
        if ctx.recording:
            log.example(case.claim_id, aggregate=check.aggregate, **(figures or {}))

    with _constants_from_imports_off():
        if check.strategy is None and strategy is None:
            call()
            return

        def inner(drawn):
            note(f"claim {case.claim_id}, check {case.id}" + (f"; reproduce: {reproduce}" if reproduce else ""))
            call(drawn)

        inner.__name__ = inner.__qualname__ = "check_" + case.id.replace("-", "_")
        # A derandomized seed derives from the test function's source and this extra digest (the hook
        # Hypothesis's own pytest plugin uses for parametrized cases): one seed per case id, whatever
        # else runs in the session.
        inner._hypothesis_internal_add_digest = case.id.encode()
        test = given(strategy if strategy is not None else check.strategy(case.device, case.dtype))(inner)
        for value in reversed(check.examples):
            test = example(value)(test)
        scale = check.max_examples_scale * examples_scale
        test = settings(settings_, max_examples=max(1, round(settings_.max_examples * scale)))(test)
        if session_seed is not None and not settings_.derandomize:
            test = hypothesis_seed(case_seed(session_seed, case))(test)
        test()
