"""The parts of a claim record: a Check, a CheckCase (a check on one device and dtype), and the
CheckContext a check runs in.

A Check is declarative, like an OpInfo entry: the function, the strategy it draws from, the
dtypes and devices it applies to, whether it runs the implementation under test, how its
figures aggregate over examples, and which violations refute the note instead of failing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from lstm_claims import names

# Every floating dtype the kit knows by name (test ids and xfails entries use these names).
DTYPES: dict[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32,
                                  "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICES = names.DEVICES
assert tuple(DTYPES) == names.DTYPE_NAMES
AGGREGATIONS = ("max", "min", "last", "sum")


def dtype_name(dtype: torch.dtype | None) -> str | None:
    return None if dtype is None else str(dtype).replace("torch.", "")


@dataclass(frozen=True)
class Check:
    """One executable check of a claim."""

    name: str  # unique within its claim; test ids read <claim>-<name>[-<device>][-<dtype>]
    # run(ctx, drawn) when the check has a strategy, run(ctx) when it has none. Returns the figures
    # of the example it checked (a dict, possibly empty) or None; raises ClaimViolation when the
    # claim fails on it. ctx (CheckContext) carries the implementation, device, dtype and the recorder.
    run: Callable[..., dict | None]
    # strategy(device, dtype) -> a Hypothesis strategy of what `run` takes; None: run once, no draw.
    strategy: Callable[[str | None, torch.dtype | None], Any] | None = None
    examples: tuple = ()  # explicit examples, run before the drawn ones (Hypothesis @example)
    dtypes: tuple[str, ...] = ("float64", "float32")  # () : no dtype (a symbolic proof, a table)
    devices: tuple[str, ...] = DEVICES  # () : no device (a symbolic proof)
    # Runs the implementation under test: xfails entries apply to it, and the catalogue of
    # correct and buggy cells runs it in-process (tests/meta/test_cell_catalogue.py).
    through_impl: bool = False
    # Left out of the in-process catalogue although it runs the implementation: the reason (cost).
    not_in_catalogue: str = ""
    # figure name -> how it aggregates over examples ("max", "min", "last", "sum"); numbers not
    # listed aggregate by "max", everything else (tables, strings, plots) by "last".
    aggregate: Mapping[str, str] = field(default_factory=dict)
    # A ClaimViolation for which this returns True shows the note overstating (the check records a
    # counterexample and passes: verdict `refuted`), not the implementation failing.
    refuted_by: Callable[[Exception], bool] | None = None
    max_examples_scale: float = 1.0  # a multiple of the profile's max_examples, for costly checks (a choice)
    # Why the check leaves out dtypes it could run the implementation in (e.g. bfloat16, float16: a
    # quantity measured to 1e-12); shown in claims.json ("dtypes_why_not") and the report.
    dtypes_why_not: str = ""

    def __post_init__(self):
        if not self.name or any(ch in self.name for ch in " [],"):
            raise ValueError(f"check name {self.name!r}: use letters, digits, '-' or '_'")
        bad = [d for d in self.dtypes if d not in DTYPES] + [d for d in self.devices if d not in DEVICES]
        if bad:
            raise ValueError(f"check {self.name}: unknown dtype or device {bad}")
        wrong = {k: v for k, v in self.aggregate.items() if v not in AGGREGATIONS}
        if wrong:
            raise ValueError(f"check {self.name}: aggregations must be one of {AGGREGATIONS}, got {wrong}")

    @property
    def in_catalogue(self) -> bool:
        return self.through_impl and not self.not_in_catalogue


def minimum(*names: str) -> dict:
    """Aggregation of figures that are lower bounds over examples (the worst case is the smallest)."""
    return {n: "min" for n in names}


@dataclass(frozen=True)
class CheckCase:
    """A check of a claim on one device and dtype (either may be None when the check has none)."""

    claim_id: str
    check: Check
    device: str | None
    dtype: torch.dtype | None

    @property
    def id(self) -> str:
        return "-".join(p for p in (self.claim_id, self.check.name, self.device, dtype_name(self.dtype)) if p)


def cases_of(claims, *, devices=DEVICES, dtypes=tuple(DTYPES)) -> list[CheckCase]:
    """Every (check, device, dtype) of `claims` within `devices` and `dtypes`, in record order."""
    out = []
    for claim in claims:
        for check in claim.checks:
            devs = [d for d in check.devices if d in devices] if check.devices else [None]
            dts = [DTYPES[d] for d in check.dtypes if d in dtypes] if check.dtypes else [None]
            out += [CheckCase(claim.id, check, dev, dt) for dev in devs for dt in dts]
    return out


@dataclass
class CheckContext:
    """What a check's `run` receives: the implementation, where to run it, and where to record.

    log: a lstm_claims.results.ClaimLog (or anything with its methods); recording is off while
    Hypothesis shrinks or replays a failure, so figures and counts cover examples run once.
    """

    case: CheckCase
    cut: Any  # the CellUnderTest, or None for checks that do not run the implementation
    log: Any
    reproduce: str = ""
    recording: bool = True

    @property
    def claim_id(self) -> str:
        return self.case.claim_id

    @property
    def device(self) -> str | None:
        return self.case.device

    @property
    def dtype(self) -> torch.dtype | None:
        return self.case.dtype

    @property
    def where(self) -> str:
        return " ".join(p for p in (self.device, dtype_name(self.dtype)) if p)

    def figures(self, **figures) -> None:
        """Figures that are not one example's (tables, plots, fitted rates)."""
        if self.recording:
            self.log.figures(self.claim_id, aggregate=self.case.check.aggregate, **figures)

    def points(self, key: str, label: str, xs, ys, **plot) -> None:
        if self.recording:
            self.log.points(self.claim_id, key, label, xs, ys, **plot)

    def refute(self, counterexample: dict, reproduce: str | None = None) -> None:
        """The note's statement, as written, fails here: keep the counterexample (the verdict becomes refuted)."""
        if self.recording:
            self.log.refute(self.claim_id, counterexample, reproduce=reproduce or self.reproduce)


def drawn_from(strategy) -> Callable:
    """A Check.strategy that is the same for every device and dtype."""
    return lambda device, dtype: strategy


def on_impl(fn: Callable) -> Callable:
    """A Check.run for a function fn(cut, drawn, device, dtype) -> figures (the claim modules' check_* shape)."""
    return lambda ctx, drawn: fn(ctx.cut, drawn, ctx.device, ctx.dtype)


def numbers(figures: dict) -> dict:
    """The plain numbers of a figures dict (what one example contributes to the aggregates)."""
    return {k: v for k, v in figures.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def proof_of(prove: Callable, n: int) -> Callable:
    """A Check.run for a symbolic proof prove(n) at size n (raises if the identity fails); records n."""
    def run(ctx):
        prove(n)
        return {"symbolic_n": n}
    return run
