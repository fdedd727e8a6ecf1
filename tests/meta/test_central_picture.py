"""The report's central picture: ||dc_t/dc_0|| at every t per dtype (reference/low_precision_paths.py,
claims/forget_bias_study.py central_curves, claims/forget_bias_plot.py, the plot-spec extensions)."""
import math

import pytest
import torch

from lstm_claims.claims.forget_bias_plot import central_picture_by_dtype, central_rows
from lstm_claims.claims.forget_bias_study import CENTRAL_SIZES, RNN_LABEL, central_configs, central_curves
from lstm_claims.claims.plots import panels, plot_spec, series, series_values, series_x
from lstm_claims.reference.forget_bias import default_lstm_params, with_forget_bias
from lstm_claims.reference.jacobian_chain import full_state_jacobian
from lstm_claims.reference.low_precision_paths import (
    lstm_forward, rnn_forward, rnn_running_log10_norms, running_log10_norms,
)
from lstm_claims.reference.vanilla_rnn import default_rnn_params, log10_product_norms

LOW = (torch.bfloat16, torch.float16)


def _xs(T, P, m, seed=0):
    return torch.randn(T, P, m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_lstm_forward_is_torchs_cpu_kernel_bit_for_bit(dtype):
    plist = [with_forget_bias(default_lstm_params(8, 6, s), b) for s, b in ((0, 1.0), (1, 5.0))]
    xs = _xs(40, 2, 6)
    fwd = lstm_forward(plist, xs, dtype)
    for k, p in enumerate(plist):
        w = [t.to(dtype) for t in (p.weight_ih, p.weight_hh, p.bias_ih, p.bias_hh)]
        h = c = torch.zeros(1, 8, dtype=dtype)
        for t in range(40):
            h, c = torch._VF.lstm_cell(xs[t, k:k + 1].to(dtype), (h, c), *w)
            assert torch.equal(c[0], fwd.c[t, k]), (t, k)
            assert torch.equal(h[0], fwd.o[t, k] * fwd.tanh_c[t, k]), (t, k)


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_rnn_forward_is_torchs_cpu_kernel_bit_for_bit(dtype):
    plist = [default_rnn_params(8, 6, s) for s in range(2)]
    xs = _xs(40, 2, 6)
    hs = rnn_forward(plist, xs, dtype)
    for k, p in enumerate(plist):
        w = [getattr(p, n).to(dtype) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        h = torch.zeros(1, 8, dtype=dtype)
        for t in range(40):
            h = torch._VF.rnn_tanh_cell(xs[t, k:k + 1].to(dtype), h, *w)
            assert torch.equal(h[0], hs[t, k]), (t, k)


def test_a_bfloat16_forget_gate_is_one_or_at_most_one_minus_2_to_the_minus_8():
    fwd = lstm_forward([with_forget_bias(default_lstm_params(16, 16, 0), 5.0)], _xs(50, 1, 16), torch.bfloat16)
    f = fwd.f.to(torch.float64)
    assert ((f == 1) | (f <= 1 - 2 ** -8)).all()
    assert (f == 1).any() and (f < 1).any()  # at b_f = 5 both occur: the rounding the picture measures


def test_running_norms_are_the_closed_form_total_derivative_at_every_t():
    plist = [with_forget_bias(default_lstm_params(6, 5, s), b) for s, b in ((0, 1.0), (1, 3.0))]
    xs = _xs(12, 2, 5, seed=3)
    fwd = lstm_forward(plist, xs, torch.float64)
    exact = running_log10_norms(fwd, exact_at=range(1, 13))
    power = running_log10_norms(fwd)
    z = torch.zeros(1, 6, dtype=torch.float64)
    for k, p in enumerate(plist):
        for T in range(1, 13):
            ref = math.log10(torch.linalg.matrix_norm(full_state_jacobian(p, xs[:T, k:k + 1], z, z), 2).item())
            assert math.isclose(exact.log10_norm[k, T - 1].item(), ref, abs_tol=1e-10), (k, T)
            # the power iteration is a lower bound, and the gap the exact run reports is the real one
            # (both runs iterate the same vectors; the exact run only replaces the recorded value)
            assert power.log10_norm[k, T - 1].item() <= ref + 1e-10
            assert ref - power.log10_norm[k, T - 1].item() <= exact.max_estimate_gap + 1e-10, (k, T)
    assert exact.max_estimate_gap == pytest.approx((exact.log10_norm - power.log10_norm).max().item(), abs=1e-12)


def test_rnn_running_norms_are_the_explicit_product():
    plist = [default_rnn_params(6, 5, s) for s in range(2)]
    xs = _xs(30, 2, 5, seed=4)
    hs = rnn_forward(plist, xs, torch.float64)
    got = rnn_running_log10_norms(hs, torch.stack([p.weight_hh for p in plist]), exact_at=range(1, 31))
    for k, p in enumerate(plist):
        ref = log10_product_norms(p, xs[:, k:k + 1], tuple(range(1, 31)))[0]
        torch.testing.assert_close(got.log10_norm[k], ref, rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def curves():
    return central_curves()


def test_dense_curves_have_every_t_and_ordered_bands_per_dtype(curves):
    T = CENTRAL_SIZES["T"]
    assert list(curves["curves"]) == list(CENTRAL_SIZES["dtypes"])
    spec = central_picture_by_dtype(curves)
    assert spec["kind"] == "panels" and [p["title"] for p in spec["panels"]] == [
        f"forward in {d}" for d in CENTRAL_SIZES["dtypes"]]
    expected = [*central_configs(), RNN_LABEL]
    for dtype, panel in zip(CENTRAL_SIZES["dtypes"], spec["panels"]):
        assert len(panel["series"]) == len(expected)
        for line, cfg in zip(panel["series"], expected):
            assert series_x(line) == list(range(1, T + 1)), line["label"]
            y, lo, hi = (series_values(line, k) for k in ("y", "lower", "upper"))
            assert len(y) == len(lo) == len(hi) == T
            assert all(math.isfinite(v) for v in y + lo + hi)
            assert all(a <= b <= c for a, b, c in zip(lo, y, hi)), (dtype, cfg)
            assert y == curves["curves"][dtype][cfg]["median"]
    # The story the picture tells, as numbers (float32 panel, t = 1000): b_f = 0 and 1 and the RNN vanish
    # far below float32's unit roundoff (log10 2^-24 = -7.2); chrono keeps the path within a decade of 1.
    at_end = {cfg: c["median"][T - 1] for cfg, c in curves["curves"]["float32"].items()}
    assert at_end["b_f=0"] < -7.2 and at_end["b_f=1"] < -7.2 and at_end[RNN_LABEL] < at_end["b_f=0"]
    assert at_end["chrono"] > -1
    assert curves["max_power_iteration_gap_log10"] < 0.05


def test_central_rows_read_the_curves(curves):
    rows = central_rows(curves)
    assert len(rows) == len(central_configs()) + 1
    assert rows[1]["bfloat16 t=100"] == curves["curves"]["bfloat16"]["b_f=1"]["median"][99]


def test_series_bands_ranges_and_packing():
    s = series("a", range(1, 4), [1.23456, 2.0, 3.0], lower=[1.0, 1.5, 2.5], upper=[2.0, 2.5, 3.5], digits=3)
    assert s["x"] == {"first": 1, "last": 3} and series_x(s) == [1, 2, 3]
    assert s["y"] == "1.23 2 3" and series_values(s) == [1.23, 2.0, 3.0]
    with pytest.raises(ValueError, match="not ordered at index 1"):
        series("b", [1, 2], [1.0, 2.0], lower=[0.0, 2.5], upper=[2.0, 3.0])
    with pytest.raises(ValueError, match="both lower and upper"):
        series("c", [1], [1.0], lower=[0.0])
    with pytest.raises(ValueError, match="step 1"):
        series("d", range(0, 10, 2), [0.0] * 5)
    with pytest.raises(ValueError, match="zoom"):
        panels("p", [plot_spec("t", "x", "y", [s])], zoom=(1, 0))
    with pytest.raises(ValueError, match="plot_spec"):
        panels("p", [{"kind": "table"}])
