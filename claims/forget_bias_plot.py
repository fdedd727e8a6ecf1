"""The plot specs of L9's central picture (drawn by the report through claims/plots.py).

Its one job: turn claims/forget_bias_study.py's results into plot specs:
- `central_picture(table)`: the table's ||dc_T/dc_0|| at four T per forget bias, beside the
  vanilla RNN (L9's section);
- `central_picture_by_dtype(curves)`: the dense curves, every t = 1..1000, median line and
  min..max band over seeds, per forget bias, chrono and the vanilla RNN, one panel per dtype
  (float32, bfloat16, float16) — the report's first screen (figure key `plot_central_...`);
- `central_rows(curves)`: the medians at a few t as table rows, per dtype, beside the picture.
"""
from __future__ import annotations

from lstm_claims.claims.forget_bias_study import (
    CENTRAL_DIGITS, CENTRAL_SIZES, RNN_LABEL, TABLE_SIZES, vanilla_rnn_beside_table,
)
from lstm_claims.claims.plots import panels, plot_spec, series

# The zoomed row's y range (log10): chosen to show the curves that stay near 1 (b_f = 3, 5, chrono),
# where a bfloat16 forget gate rounding to 1 changes the picture; the full row shows the rest.
CENTRAL_ZOOM = (-3.0, 3.0)
# The t at which central_rows reports the medians (chosen: a decade apart, and the end).
ROW_STEPS = (10, 100, 1000)


def central_picture(table: dict) -> dict:
    """The note's central picture as a plot spec: ||dc_T/dc_0|| against T per forget bias, beside the vanilla RNN."""
    steps = TABLE_SIZES["steps"]
    # log10 on a linear axis: the vanilla RNN's 10^-334 at T = 1000 is below float64's range.
    lines = [series(cfg.replace("b_f=", "LSTM, b_f = ").replace("chrono", "LSTM, chrono init"), steps,
                    [row["per_T"][str(T)]["log10_median"] for T in steps]) for cfg, row in table["rows"].items()]
    rnn = vanilla_rnn_beside_table()
    lines.append(series("vanilla RNN ||∂h_T/∂h_0||", steps, [rnn[str(T)] for T in steps], style="--s"))
    return plot_spec("||dc_T/dc_0|| against T, default init (median of 8 seeds)", "T",
                     "log10 of the Jacobian's norm", lines, logx=True,
                     note=f"{table['meta']['sizes']}; {table['meta']['inputs']}; {table['meta']['bias']}.")


def _label(config: str) -> str:
    if config == RNN_LABEL:
        return "vanilla RNN ||dh_t/dh_0||"
    return config.replace("b_f=", "LSTM, b_f = ").replace("chrono", "LSTM, chrono init")


def central_picture_by_dtype(curves: dict) -> dict:
    """Every t = 1..T: log10 ||dc_t/dc_0|| per forget bias and chrono, beside the vanilla RNN, one panel per dtype."""
    t = range(curves["t_first"], curves["t_last"] + 1)
    plots = []
    for dtype, per_config in curves["curves"].items():
        lines = [series(_label(cfg), t, c["median"], lower=c["lower"], upper=c["upper"], digits=CENTRAL_DIGITS,
                        style="--" if cfg == RNN_LABEL else "-") for cfg, c in per_config.items()]
        plots.append(plot_spec(f"forward in {dtype}", "t", "log10 ||dc_t/dc_0||", lines))
    S = len(CENTRAL_SIZES["seeds"])
    meta = curves["meta"]
    return panels(f"||dc_t/dc_0|| against t, every t = 1..{curves['t_last']}, torch's default init: median of {S} "
                  f"seeds, shaded min..max", plots, zoom=CENTRAL_ZOOM,
                  note=f"{meta['sizes']}; {meta['init']}; {meta['inputs']}. {meta['precision']}. {meta['norm']} "
                       f"(largest gap measured: {curves['max_power_iteration_gap_log10']:.2g} in log10). "
                       f"Lower row: the same curves, y in {list(CENTRAL_ZOOM)}.")


def central_rows(curves: dict) -> list:
    """One row per configuration: its median log10 norm at ROW_STEPS in each dtype (the picture's figures)."""
    rows = []
    configs = next(iter(curves["curves"].values())).keys()
    for cfg in configs:
        row = {"": _label(cfg)}
        for dtype, per_config in curves["curves"].items():
            for T in ROW_STEPS:
                row[f"{dtype} t={T}"] = per_config[cfg]["median"][T - curves["t_first"]]
        rows.append(row)
    return rows
