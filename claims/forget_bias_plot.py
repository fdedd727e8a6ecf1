"""The plot spec of L9's central picture (drawn by the report through claims/plots.py).

Its one job: turn claims/forget_bias_study.py's table, and the vanilla RNN beside it, into
one plot_spec: ||dc_T/dc_0|| against T per forget bias.
"""
from __future__ import annotations

from lstm_claims.claims.forget_bias_study import TABLE_SIZES, vanilla_rnn_beside_table
from lstm_claims.claims.plots import plot_spec, series


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
