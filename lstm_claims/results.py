"""Per-claim results collected during a pytest run, and the verdict rule.

The runner (lstm_claims/runner.py) feeds a ClaimLog as each check runs:
  example(ID, aggregate=..., **figures)   one example checked; each figure aggregates as its
                              check declares (Check.aggregate: max, min, last, sum), numbers by
                              max and everything else by last when not declared
  figures(ID, aggregate=..., **figures)   figures without counting an example (tables, fitted rates)
  refute(ID, counterexample, reproduce=...)   the note's statement, as written, fails here
  points(ID, key, label, xs, ys, title=..., xlabel=..., ylabel=...)   add points to a plot figure
                              (claims/plots.py), one series per label, accumulated over examples
The plugin adds each test's outcome. Each result records how each of its figures aggregated
(`aggregation`), so results of separate runs merge as one run would have recorded them:
`ClaimLog.merge(other)` folds a later log into an earlier one (counts add; figures combine
by their aggregation, plots concatenate per series label; the earlier counterexample stays).
The plugin keeps one log per check case and folds them in collection order, so a run split
over pytest-xdist workers reports exactly what a serial run reports. The verdict of a claim:
  failed                 a check that must hold did not (the cell under test or the kit is wrong);
                         also when the failure was expected (xfails file): the cell departs from the claim
  refuted                every check passed and a reproducible counterexample to the note was recorded
  holds-under-condition  every check passed; the claim's record names a condition
  holds                  every check passed; the claim holds unconditionally
  not-run                no check of the claim ran (deselected, or skipped: e.g. CUDA only)
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

VERDICTS = ("holds", "holds-under-condition", "refuted", "failed", "not-run")
COUNTS = ("examples", "passed", "failed", "xfailed", "xpassed", "skipped")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _default_aggregation(value) -> str:
    return "max" if _is_number(value) else "last"


def _combine(figures: dict, key: str, value, how: str) -> None:
    """figures[key] combined with a later `value`, aggregated `how`."""
    if how == "points" and key in figures:
        lines = figures[key]["series"]
        for new in value["series"]:
            line = next((ln for ln in lines if ln["label"] == new["label"]), None)
            if line is None:
                lines.append(copy.deepcopy(new))
            else:
                line["x"] += list(new["x"])
                line["y"] += list(new["y"])
    elif how in ("last", "points") or not _is_number(value):
        figures[key] = copy.deepcopy(value)  # tables, lists, strings, plots: the last one written
    elif how == "sum":
        figures[key] = figures.get(key, 0.0) + float(value)
    else:
        pick, start = (min, math.inf) if how == "min" else (max, -math.inf)
        figures[key] = pick(figures.get(key, start), float(value))


@dataclass
class ClaimResult:
    claim_id: str
    examples: int = 0  # distinct examples executed (not Hypothesis's shrink attempts or replays)
    passed: int = 0
    failed: int = 0
    xfailed: int = 0
    xpassed: int = 0
    skipped: int = 0
    figures: dict = field(default_factory=dict)
    counterexample: dict | None = None
    reproduce: str | None = None
    failures: list = field(default_factory=list)  # [(test id, first line of the message, reproduce)]
    # figure name -> how it aggregated: "max", "min", "sum", "last" (as declared by the check), or
    # "points" (a plot accumulated by ClaimLog.points: its series concatenate per label)
    aggregation: dict = field(default_factory=dict)

    def verdict(self, unconditional: bool) -> str:
        if self.failed or self.xpassed or self.xfailed:
            return "failed"
        if not (self.passed or self.xfailed):
            return "not-run"
        if self.counterexample is not None:
            return "refuted"
        return "holds" if unconditional else "holds-under-condition"

    def merge(self, other: "ClaimResult") -> None:
        """Fold `other` (recorded later, e.g. the next check case in collection order) into this result,
        exactly as if its examples had been recorded into this one."""
        for key in COUNTS:
            setattr(self, key, getattr(self, key) + getattr(other, key))
        for key, value in other.figures.items():
            how = other.aggregation.get(key) or self.aggregation.get(key) or _default_aggregation(value)
            self.aggregation[key] = how
            _combine(self.figures, key, value, how)
        if self.counterexample is None and other.counterexample is not None:
            self.counterexample, self.reproduce = copy.deepcopy(other.counterexample), other.reproduce
        self.failures.extend(tuple(f) for f in other.failures)

    def to_json(self) -> dict:
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return repr(v)
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v
        return clean({k: getattr(self, k) for k in self.__dataclass_fields__})


class ClaimLog:
    """What the tests tell the plugin about each claim (the `claim_log` fixture)."""

    def __init__(self):
        self.results: dict[str, ClaimResult] = {}

    def __getitem__(self, claim_id) -> ClaimResult:
        if claim_id not in self.results:
            self.results[claim_id] = ClaimResult(claim_id)
        return self.results[claim_id]

    def _merge(self, claim_id, figures, aggregate):
        result = self[claim_id]
        for key, value in figures.items():
            how = aggregate.get(key, _default_aggregation(value))
            if not _is_number(value):
                how = "last"
            result.aggregation[key] = how
            if how == "last":
                result.figures[key] = value  # tables, lists, strings, plots: the last one written
            else:
                _combine(result.figures, key, value, how)

    def example(self, claim_id: str, *, aggregate=None, **figures) -> None:
        self[claim_id].examples += 1
        self._merge(claim_id, figures, aggregate or {})

    def figures(self, claim_id: str, *, aggregate=None, **figures) -> None:
        self._merge(claim_id, figures, aggregate or {})

    def points(self, claim_id: str, key: str, label: str, xs, ys, *, title: str, xlabel: str, ylabel: str,
               logx: bool = False, logy: bool = False, style: str = "o", note: str = "") -> None:
        from lstm_claims.claims.plots import plot_spec, series

        pairs = [(float(x), float(y)) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
        xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
        figures = self[claim_id].figures
        self[claim_id].aggregation[key] = "points"
        if key not in figures:
            figures[key] = plot_spec(title, xlabel, ylabel, [series(label, xs, ys, style=style)], logx=logx,
                                     logy=logy, note=note)
            return
        lines = figures[key]["series"]
        line = next((ln for ln in lines if ln["label"] == label), None)
        if line is None:
            lines.append(series(label, xs, ys, style=style))
        else:
            new = series(label, xs, ys)
            line["x"] += new["x"]
            line["y"] += new["y"]

    def refute(self, claim_id: str, counterexample: dict, reproduce: str | None = None) -> None:
        r = self[claim_id]
        if r.counterexample is None:  # keep the first: it is the one a reproduce command replays
            r.counterexample, r.reproduce = counterexample, reproduce

    # --- merging logs recorded apart (one per check case, or per pytest-xdist worker) -------------

    def merge(self, other: "ClaimLog") -> "ClaimLog":
        """Fold `other` (recorded later in collection order) into this log; returns self."""
        for claim_id, result in other.results.items():
            self[claim_id].merge(result)
        return self

    def to_dict(self) -> dict:
        """The log as plain data for JSON (json.dumps keeps non-finite figures as Infinity/NaN: lossless)."""
        return {cid: {k: getattr(r, k) for k in r.__dataclass_fields__} for cid, r in self.results.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "ClaimLog":
        log = cls()
        for cid, fields_ in data.items():
            fields_ = dict(fields_)
            fields_["failures"] = [tuple(f) for f in fields_.get("failures", [])]
            log.results[cid] = ClaimResult(**fields_)
        return log


# --- per-dtype verdicts (claims.json "dtypes") -------------------------------------------------------

DTYPE_NAMES = ("float64", "float32", "bfloat16", "float16")
NOT_CHECKED = "not-checked"  # no check of the claim runs in this dtype (the record says why: "dtypes_why_not")


def dtype_verdicts(claim, case_logs) -> dict:
    """The claim's verdict in each dtype: {"float64": ..., "float32": ..., "bfloat16": ..., "float16": ...}.

    `case_logs`: (CheckCase, ClaimLog) pairs of this run in collection order (one log per case: what the
    runner recorded and the test's outcome). A dtype's verdict is the verdict rule above applied to the
    cases run in that dtype, folded in order: `failed` if one of them failed, `refuted` if they passed and
    one recorded a counterexample, `not-run` if none ran (deselected device, skipped), and NOT_CHECKED when
    no check of the claim lists the dtype. Checks without a dtype (symbolic proofs) enter no dtype's verdict.
    """
    return {name: NOT_CHECKED if result is None else result.verdict(unconditional=claim.unconditional)
            for name, result in _dtype_results(claim, case_logs).items()}


def dtype_figures(claim, case_logs) -> dict:
    """The claim's numeric figures per dtype, {"float32": {"worst_error_over_allowed": 0.1, ...}, ...}: each
    figure aggregated over the cases run in that dtype only (claims.json "figures_by_dtype"; plots and tables
    stay in the claim's own figures). A dtype no check of the claim lists is left out."""
    return {name: {k: v for k, v in result.figures.items() if _is_number(v)}
            for name, result in _dtype_results(claim, case_logs).items() if result is not None}


def _dtype_results(claim, case_logs) -> dict:
    """{dtype name: the ClaimResult folded from the cases run in that dtype, or None if no check lists it}."""
    listed = {d for check in claim.checks for d in check.dtypes}
    out = {}
    for name in DTYPE_NAMES:
        if name not in listed:
            out[name] = None
            continue
        result = ClaimResult(claim.id)
        for case, log in case_logs:
            if case is not None and case.claim_id == claim.id and case.dtype is not None \
                    and str(case.dtype).replace("torch.", "") == name and claim.id in log.results:
                result.merge(log.results[claim.id])
        out[name] = result
    return out


def dtypes_why_not(claim) -> dict:
    """{check name: why it does not run in the low-precision dtypes} for the claim's checks that leave
    them out (Check.dtypes_why_not), so the report can say why a dtype reads not-checked."""
    return {c.name: c.dtypes_why_not for c in claim.checks if getattr(c, "dtypes_why_not", "")}
