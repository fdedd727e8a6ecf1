"""Plot specifications a claim records with its figures; the report draws them.

A figure whose key starts with `plot_` and whose value is `plot_spec(...)` becomes a
plot in the report, with no report code per claim:

    claim_log.figures("L9", plot_norm_vs_T=plot_spec(
        "||dc_T/dc_0|| against T", "T", "norm", [series("b_f = 1", Ts, norms)], logy=True))

Extensions, generic like the rest:
- a series with `lower=` and `upper=` is drawn as its line over a shaded band (a spread
  over seeds, a quantile band); lower <= y <= upper is checked where all three are finite;
- a series' x may be a `range` of step 1, stored compactly as {"first", "last"} (dense
  curves: every t = 1..1000 without a thousand x values per line); `series_x` expands it;
- `series(..., digits=4)` stores y (and the band) as one string of numbers rounded to that
  many significant digits, space-separated: claims.json is written with indent=2, where a
  list puts each number on a line of its own (a 1000-point band: ~60 kB as lists, ~20 kB
  packed); `series_values(line, "y")` reads either form;
- `panels(...)` puts several plot specs side by side on one shared y axis (one per dtype,
  say), with an optional `zoom=(lo, hi)` row that redraws them with that y range;
- a figure whose key starts with `central_` or `plot_central_` is the report's central
  picture: drawn on the page's first screen, above the verdict table (`is_central`).
"""
from __future__ import annotations

import math


def pack(values, digits: int) -> str:
    """Numbers as one space-separated string, each rounded to `digits` significant digits."""
    return " ".join(f"{float(v):.{digits}g}" for v in values)


def series_values(line: dict, key: str = "y") -> list:
    """A series' y (or "lower", "upper") as a list of floats, packed or not."""
    v = line[key]
    return [float(t) for t in v.split()] if isinstance(v, str) else [float(t) for t in v]


def series(label: str, x, y, *, style: str = "-o", lower=None, upper=None, digits: int | None = None) -> dict:
    if isinstance(x, range):
        if x.step != 1 or len(x) == 0:
            raise ValueError(f"series {label!r}: a range x must be non-empty with step 1, got {x}")
        x_json, n_x = {"first": x.start, "last": x.stop - 1}, len(x)
    else:
        x_json = [float(v) for v in x]
        n_x = len(x_json)
    y = [float(v) for v in y]
    if digits is not None:  # round first, so the stored values are the ones checked below
        y = [float(f"{v:.{digits}g}") for v in y]
        lower, upper = ([float(f"{v:.{digits}g}") for v in b] if b is not None else None for b in (lower, upper))
    if n_x != len(y):
        raise ValueError(f"series {label!r}: {n_x} x values but {len(y)} y values")
    out = {"label": label, "x": x_json, "y": y, "style": style}
    if (lower is None) != (upper is None):
        raise ValueError(f"series {label!r}: a band needs both lower and upper")
    if lower is not None:
        lower, upper = [float(v) for v in lower], [float(v) for v in upper]
        if not len(lower) == len(upper) == len(y):
            raise ValueError(f"series {label!r}: band of {len(lower)}/{len(upper)} values for {len(y)} y values")
        bad = [k for k, (a, b, c) in enumerate(zip(lower, y, upper))
               if all(map(math.isfinite, (a, b, c))) and not a <= b <= c]
        if bad:
            k = bad[0]
            raise ValueError(f"series {label!r}: band not ordered at index {k}: lower {lower[k]}, y {y[k]}, "
                             f"upper {upper[k]} ({len(bad)} such points)")
        out.update(lower=lower, upper=upper)
    if digits is not None:
        for key in ("y", "lower", "upper"):
            if key in out:
                out[key] = pack(out[key], digits)
    return out


def series_x(line: dict) -> list:
    """A series' x values as a list (expanding the compact {"first", "last"} of a range)."""
    x = line["x"]
    if isinstance(x, dict):
        return list(range(int(x["first"]), int(x["last"]) + 1))
    return list(x)


def plot_spec(title: str, xlabel: str, ylabel: str, lines: list, *, logx: bool = False, logy: bool = False,
              note: str = "") -> dict:
    if not lines:
        raise ValueError(f"plot {title!r} has no series")
    return {"kind": "plot", "title": title, "xlabel": xlabel, "ylabel": ylabel, "series": list(lines),
            "logx": logx, "logy": logy, "note": note}


def panels(title: str, plots: list, *, zoom: tuple | None = None, note: str = "") -> dict:
    """Plot specs side by side on a shared y axis; `zoom=(lo, hi)` adds a row redrawing them with that y range."""
    if not plots or not all(isinstance(p, dict) and p.get("kind") == "plot" for p in plots):
        raise ValueError(f"panels {title!r} needs one or more plot_spec(...) values")
    if zoom is not None and not (len(zoom) == 2 and float(zoom[0]) < float(zoom[1])):
        raise ValueError(f"panels {title!r}: zoom must be (lo, hi) with lo < hi, got {zoom!r}")
    return {"kind": "panels", "title": title, "panels": list(plots),
            "zoom": [float(zoom[0]), float(zoom[1])] if zoom is not None else None, "note": note}


def is_plot_spec(value) -> bool:
    return isinstance(value, dict) and ((value.get("kind") == "plot" and "series" in value)
                                        or (value.get("kind") == "panels" and "panels" in value))


def is_central(key: str) -> bool:
    """The figure is (part of) the report's central picture, drawn on the first screen."""
    return key.startswith(("central_", "plot_central_"))


def finite_positive(values) -> list:
    """Values safe for a log axis (non-positive or non-finite become NaN, which matplotlib skips)."""
    return [v if (math.isfinite(v) and v > 0) else float("nan") for v in values]
