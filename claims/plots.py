"""Plot specifications a claim records with its figures; the report draws them.

A figure whose key starts with `plot_` and whose value is `plot_spec(...)` becomes a
plot in the report, with no report code per claim:

    claim_log.figures("L9", plot_norm_vs_T=plot_spec(
        "||dc_T/dc_0|| against T", "T", "norm", [series("b_f = 1", Ts, norms)], logy=True))
"""
from __future__ import annotations

import math


def series(label: str, x, y, *, style: str = "-o") -> dict:
    x, y = [float(v) for v in x], [float(v) for v in y]
    if len(x) != len(y):
        raise ValueError(f"series {label!r}: {len(x)} x values but {len(y)} y values")
    return {"label": label, "x": x, "y": y, "style": style}


def plot_spec(title: str, xlabel: str, ylabel: str, lines: list, *, logx: bool = False, logy: bool = False,
              note: str = "") -> dict:
    if not lines:
        raise ValueError(f"plot {title!r} has no series")
    return {"kind": "plot", "title": title, "xlabel": xlabel, "ylabel": ylabel, "series": list(lines),
            "logx": logx, "logy": logy, "note": note}


def is_plot_spec(value) -> bool:
    return isinstance(value, dict) and value.get("kind") == "plot" and "series" in value


def finite_positive(values) -> list:
    """Values safe for a log axis (non-positive or non-finite become NaN, which matplotlib skips)."""
    return [v if (math.isfinite(v) and v > 0) else float("nan") for v in values]
