"""Per-claim results collected during a pytest run, and the verdict rule.

The runner (lstm_claims/runner.py) feeds a ClaimLog as each check runs:
  example(ID, aggregate=..., **figures)   one example checked; each figure aggregates as its
                              check declares (Check.aggregate: max, min, last, sum), numbers by
                              max and everything else by last when not declared
  figures(ID, aggregate=..., **figures)   figures without counting an example (tables, fitted rates)
  refute(ID, counterexample, reproduce=...)   the note's statement, as written, fails here
  points(ID, key, label, xs, ys, title=..., xlabel=..., ylabel=...)   add points to a plot figure
                              (claims/plots.py), one series per label, accumulated over examples
The plugin adds each test's outcome. The verdict of a claim:
  failed                 a check that must hold did not (the cell under test or the kit is wrong);
                         also when the failure was expected (xfails file): the cell departs from the claim
  refuted                every check passed and a reproducible counterexample to the note was recorded
  holds-under-condition  every check passed; the claim's record names a condition
  holds                  every check passed; the claim holds unconditionally
  not-run                no check of the claim ran (deselected, or skipped: e.g. CUDA only)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

VERDICTS = ("holds", "holds-under-condition", "refuted", "failed", "not-run")


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
    failures: list = field(default_factory=list)  # [(test id, first line of the message)]

    def verdict(self, unconditional: bool) -> str:
        if self.failed or self.xpassed or self.xfailed:
            return "failed"
        if not (self.passed or self.xfailed):
            return "not-run"
        if self.counterexample is not None:
            return "refuted"
        return "holds" if unconditional else "holds-under-condition"

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
        entry = self[claim_id].figures
        for key, value in figures.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            how = aggregate.get(key, "max" if number else "last")
            if how == "last" or not number:
                entry[key] = value  # tables, lists, strings, plots: the last one written
            elif how == "sum":
                entry[key] = entry.get(key, 0.0) + float(value)
            else:
                pick, start = (min, math.inf) if how == "min" else (max, -math.inf)
                entry[key] = pick(entry.get(key, start), float(value))

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
