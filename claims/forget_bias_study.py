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


# --- the central picture: ||dc_t/dc_0|| at every t = 1..1000, per dtype (issue 14 item 4, issue 12 item 3) ----

# Chosen for the budget (this runs in every `lstm-claims run`, a few seconds on 2 cores):
#  - n = m = 16: the product's cost per step grows like n^3 and a step's 2-norm like n^3 too;
#    torch's init (uniform ±1/√n) makes W_hh's spectrum n-independent in distribution, so n = 16
#    shows the same decay rates as the table's n = 32 (b_f = 1, T = 1000: 10^-100 against 10^-90).
#  - 8 seeds, batch 1 per seed (one sequence per seed): the band is min..max over 8 draws of
#    weights and inputs; a quantile band of 8 draws would be min..max anyway.
#  - the three dtypes' parameter sets run as one batch in one float64 pass (one loop, not three).
CENTRAL_SIZES = {"hidden_size": 16, "input_size": 16, "seeds": tuple(range(8)), "T": 1000,
                 "b_f": (0.0, 1.0, 3.0, 5.0), "chrono_T_max": 1000, "dtypes": ("float32", "bfloat16", "float16")}
# The steps where the 2-norm is an exact SVD (the others: warm-started power iteration; the gap is measured).
# Every t <= 20 exactly: there the product is still near diag(f_t ⋯ f_1), whose close singular values make
# the power iteration slow (measured: 0.0025 in log10 short at t = 1 after stopping at 1e-4 a step).
CENTRAL_EXACT_AT = (*range(1, 21), 30, 50, 100, 200, 500, 1000)
# Stored precision: log10 values to 4 significant digits (0.1% of a decade at worst for |log10| < 10).
CENTRAL_DIGITS = 4
RNN_LABEL = "vanilla RNN"


def central_configs() -> list[str]:
    return [f"b_f={b:g}" for b in CENTRAL_SIZES["b_f"]] + ["chrono"]


def central_problem(config: str, seed: int) -> LSTMParams:
    """torch.nn.LSTMCell(16, 16)'s init under manual_seed(seed), forget bias (or chrono) set as in the table."""
    n, m = CENTRAL_SIZES["hidden_size"], CENTRAL_SIZES["input_size"]
    p = default_lstm_params(n, m, seed)
    if config == "chrono":
        b_f = chrono_forget_bias(n, CENTRAL_SIZES["chrono_T_max"], seed)
        return with_forget_bias(p, b_f, -b_f)
    return with_forget_bias(p, float(config.split("=")[1]))


def central_inputs(seed: int) -> torch.Tensor:
    """x_t ~ N(0, 1), (T, 1, m), from torch.Generator().manual_seed(1000 + seed) (the table's rule)."""
    gen = torch.Generator().manual_seed(1000 + seed)
    return torch.randn(CENTRAL_SIZES["T"], 1, CENTRAL_SIZES["input_size"], generator=gen, dtype=torch.float64)


def _round(values: torch.Tensor) -> list:
    return [float(f"{v:.{CENTRAL_DIGITS}g}") for v in values.tolist()]


def band_over_seeds(log10_norms: torch.Tensor) -> dict:
    """(seeds, T) log10 values -> {"median", "lower" (min), "upper" (max)} per t, rounded; lower <= median <= upper."""
    med = log10_norms.quantile(0.5, dim=0)
    lo, hi = log10_norms.amin(0), log10_norms.amax(0)
    out = {"median": _round(med), "lower": _round(lo), "upper": _round(hi)}
    # Rounding each to 4 digits is monotone, so the order survives it; checked, not assumed.
    if not all(a <= b <= c for a, b, c in zip(out["lower"], out["median"], out["upper"])):
        raise AssertionError("band_over_seeds: rounding broke lower <= median <= upper")
    return out


@lru_cache(maxsize=1)
def central_curves() -> dict:
    """log10 ||dc_t/dc_0||_2 (LSTM) and log10 ||dh_t/dh_0||_2 (vanilla RNN) for every t = 1..T, per dtype.

    Forward in the dtype as torch's CPU kernels compute it, derivative in float64
    (reference/low_precision_paths.py says why). Returns {"meta", "t_first", "t_last",
    "curves": {dtype: {config: band_over_seeds(...)}}, "max_power_iteration_gap_log10", "seconds"}.
    """
    import time

    from lstm_claims.reference.low_precision_paths import (
        lstm_forward, rnn_forward, rnn_running_log10_norms, running_log10_norms,
    )
    from lstm_claims.reference.vanilla_rnn import default_rnn_params

    start, cpu_start = time.perf_counter(), time.process_time()
    sz = CENTRAL_SIZES
    seeds, configs = sz["seeds"], central_configs()
    dtypes = [getattr(torch, d) for d in sz["dtypes"]]
    plist = [central_problem(cfg, s) for cfg in configs for s in seeds]
    xs = torch.cat([central_inputs(s) for _ in configs for s in seeds], dim=1)
    rnn_params = [default_rnn_params(sz["hidden_size"], sz["input_size"], s) for s in seeds]
    rnn_xs = torch.cat([central_inputs(s) for s in seeds], dim=1)
    with single_threaded():
        lstm = running_log10_norms([lstm_forward(plist, xs, d) for d in dtypes], exact_at=CENTRAL_EXACT_AT)
        hs, ws = [], []
        for d in dtypes:
            hs.append(rnn_forward(rnn_params, rnn_xs, d))
            ws.append(torch.stack([p.weight_hh for p in rnn_params]).to(d))
        rnn = rnn_running_log10_norms(torch.cat([h.to(torch.float64) for h in hs], dim=1),
                                      torch.cat([w.to(torch.float64) for w in ws]), exact_at=CENTRAL_EXACT_AT)
    S, per_dtype = len(seeds), len(configs) * len(seeds)
    curves = {}
    for j, name in enumerate(sz["dtypes"]):
        block = lstm.log10_norm[j * per_dtype:(j + 1) * per_dtype]
        curves[name] = {cfg: band_over_seeds(block[k * S:(k + 1) * S]) for k, cfg in enumerate(configs)}
        curves[name][RNN_LABEL] = band_over_seeds(rnn.log10_norm[j * S:(j + 1) * S])
    meta = {"what": "log10 ||dc_t/dc_0||_2 (LSTM, true total derivative, h_0 and inputs fixed) and "
                    "log10 ||dh_t/dh_0||_2 (vanilla tanh RNN) for every t = 1..T, one pass per seed",
            "sizes": f"n = m = {sz['hidden_size']}, batch 1 per seed, h_0 = c_0 = 0, T = {sz['T']}",
            "init": "torch.nn.LSTMCell / torch.nn.RNN default init under torch.manual_seed(seed); b_f as in the "
                    f"table (bias_ih[f] = b_f, bias_hh[f] = 0); chrono: b_f = log U(1, {sz['chrono_T_max'] - 1}), b_i = -b_f",
            "inputs": "x_t ~ N(0, 1) iid, torch.Generator().manual_seed(1000 + seed)",
            "seeds": f"{list(seeds)}; line: median over seeds; band: min..max over seeds",
            "precision": "forward (gates, c, h) in the dtype as torch's CPU lstm_cell / rnn_tanh_cell compute it "
                         "(GEMMs accumulate in float32, each result rounded to the dtype); the Jacobian product in "
                         "float64 at the forward's rounded states, so the curve shows what the forward's rounding "
                         "does (a bfloat16 forget gate is 1 or <= 1 - 2^-8), not a low-precision product's noise",
            "norm": f"2-norm: exact SVD at t <= 20 and t in {[t for t in CENTRAL_EXACT_AT if t > 20]}, "
                    "warm-started power iteration elsewhere",
            "stored": f"log10 values rounded to {CENTRAL_DIGITS} significant digits"}
    first_estimated = next(t for t in range(1, sz["T"] + 1) if t not in CENTRAL_EXACT_AT)
    return {"meta": meta, "t_first": 1, "t_last": sz["T"], "curves": curves,
            # measured at the exact steps past the exact start, where the curve shows the estimate
            "max_power_iteration_gap_log10": max(r.max_gap_from(first_estimated) for r in (lstm, rnn)),
            "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start}
