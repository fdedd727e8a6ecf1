"""L9's default-initialisation study: the table of ||dc_T/dc_0|| per forget bias and span.

Its one job: what b_f = 1 buys at torch's default initialisation, measured in float64 (no
cell under test; claims/l9_forget_bias.py checks one entry through the cell and reads the
verdict off the table). ||dc_T/dc_0|| (the true total derivative) for b_f in {0, 1, 2, 3, 5}
and the chrono initialisation, T in {10, 50, 200, 1000}, over seeds, by
reference.forget_bias.jacobian_norm_table; and the vanilla RNN at the same sizes, inputs and
seeds (reference.vanilla_rnn), the note's contrast on the same footing.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from lstm_claims.claims.tolerances import unit_roundoff
from lstm_claims.reference.forget_bias import chrono_forget_bias, default_lstm_params, jacobian_norm_table, with_forget_bias
from lstm_claims.reference.long_range import single_threaded
from lstm_claims.reference.lstm_step import LSTMParams
from lstm_claims.reference.vanilla_rnn import median_log10_product_norms

# Below float32's unit roundoff relative to an O(1) gradient, a contribution is lost when the
# two are summed in float32: "vanished" for training purposes. Derived: u of float32, 2^-24.
VANISHED = unit_roundoff(torch.float32)
# Chosen, not derived: ||dc_T/dc_0|| >= 0.1 reads as "the gradient through c_0 is within an
# order of magnitude of O(1)". It only labels the table (flows_up_to_T); no verdict rests on it.
FLOWS = 0.1

TABLE_SIZES = {"hidden_size": 32, "input_size": 32, "seeds": tuple(range(8)), "steps": (10, 50, 200, 1000),
               "b_f": (0.0, 1.0, 2.0, 3.0, 5.0), "chrono_T_max": 1000}


def table_problem(config: str, seed: int) -> LSTMParams:
    """The parameters of one table cell: torch.nn.LSTMCell(32, 32)'s init under manual_seed(seed), bias set."""
    n, m = TABLE_SIZES["hidden_size"], TABLE_SIZES["input_size"]
    p = default_lstm_params(n, m, seed)
    if config == "chrono":
        b_f = chrono_forget_bias(n, TABLE_SIZES["chrono_T_max"], seed)
        return with_forget_bias(p, b_f, -b_f)
    return with_forget_bias(p, float(config.split("=")[1]))


def table_inputs(seed: int, T: int) -> torch.Tensor:
    """x_t ~ N(0, 1), (T, 1, m), from torch.Generator().manual_seed(1000 + seed)."""
    gen = torch.Generator().manual_seed(1000 + seed)
    return torch.randn(T, 1, TABLE_SIZES["input_size"], generator=gen, dtype=torch.float64)


@lru_cache(maxsize=1)
def forget_bias_table() -> dict:
    """||dc_T/dc_0|| per (b_f configuration, T) over the seeds: median, min, max, and the note's diag(Π f)."""
    sz = TABLE_SIZES
    configs = [f"b_f={b:g}" for b in sz["b_f"]] + ["chrono"]
    seeds, steps = sz["seeds"], sz["steps"]
    plist = [table_problem(cfg, s) for cfg in configs for s in seeds]
    xs = torch.cat([table_inputs(s, max(steps)) for _ in configs for s in seeds], dim=1)
    with single_threaded():
        tab = jacobian_norm_table(plist, xs, steps)
    rows = {}
    for k, cfg in enumerate(configs):
        blk = tab.log10_norm[k * len(seeds):(k + 1) * len(seeds)]
        diag = tab.log10_diag[k * len(seeds):(k + 1) * len(seeds)]
        b = None if cfg == "chrono" else float(cfg.split("=")[1])
        cells = {}
        for j, T in enumerate(tab.steps):
            med = blk[:, j].quantile(0.5).item()
            cells[str(T)] = {"median": 10 ** med, "min": 10 ** blk[:, j].min().item(), "max": 10 ** blk[:, j].max().item(),
                             "log10_median": med, "log10_spread": blk[:, j].max().item() - blk[:, j].min().item(),
                             "diag_prod_f_median": 10 ** diag[:, j].quantile(0.5).item(),
                             "sigmoid_b_f_pow_T": (1 / (1 + math.exp(-b))) ** T if b is not None else None}
        flows = [T for T in tab.steps if cells[str(T)]["median"] >= FLOWS]
        gone = [T for T in tab.steps if cells[str(T)]["median"] < VANISHED]
        rows[cfg] = {"per_T": cells, "flows_up_to_T": max(flows) if flows else None,
                     "vanished_from_T": min(gone) if gone else None}
    meta = {"what": "||dc_T/dc_0||_2, the true total derivative (h_0, inputs fixed), torch.nn.LSTMCell default init",
            "sizes": f"n = m = {sz['hidden_size']}, batch 1 per seed, h_0 = c_0 = 0",
            "inputs": "x_t ~ N(0, 1) iid, torch.Generator().manual_seed(1000 + seed)",
            "seeds": f"torch.manual_seed(seed) before torch.nn.LSTMCell(32, 32), seed in {list(seeds)}; "
                     "median, min and max over the seeds",
            "bias": "b_f is what the gate sees: bias_ih[f] = b_f, bias_hh[f] = 0 (torch adds the two)",
            "chrono": f"b_f = log U(1, {sz['chrono_T_max'] - 1}) per unit, b_i = -b_f (Tallec & Ollivier 2018)",
            "flows": f"median >= {FLOWS}", "vanished": f"median < 2^-24 = {VANISHED:.3g} (float32 unit roundoff)"}
    return {"meta": meta, "rows": rows}


def vanilla_rnn_beside_table() -> dict:
    """The vanilla RNN at the table's sizes, inputs and seeds: median log10 ||∂h_T/∂h_0|| per T.

    torch.nn.RNN(32, 32) default init under torch.manual_seed(seed), the same x_t as the LSTM
    table, h_0 = 0: the note's contrast, measured on the same footing.
    """
    sz = TABLE_SIZES
    with single_threaded():
        return median_log10_product_norms(sz["hidden_size"], sz["input_size"], sz["seeds"], sz["steps"],
                                          lambda seed: table_inputs(seed, max(sz["steps"])))
