"""V1-V3: the vanilla (tanh) RNN, on torch.nn.RNN, against the closed forms and SymPy; V3 measured."""
import pytest
import torch
from hypothesis import given, target

from lstm_claims.claims import v1_vanilla_jacobian as V1
from lstm_claims.claims import v2_vanilla_decay as V2
from lstm_claims.claims import v3_vanilla_norm_measured as V3
from lstm_claims.strategies.vanilla_rnn_problems import rnn_problems

pytestmark = pytest.mark.claims



@pytest.mark.claim("V1")
@given(problem=rnn_problems(max_steps=12))
def test_V1_rnn_step_jacobian(claim_log, device, dtype, problem):
    claim_log.example("V1", **V1.check(problem, device, dtype))


@pytest.mark.claim("V1")
def test_V1_symbolic(claim_log):
    claim_log.figures("V1", symbolic=[p["identity"] for p in V1.proofs()])
    claim_log.example("V1")


@pytest.mark.claim("V2")
@given(problem=rnn_problems(max_steps=40))
def test_V2_product_bounded_by_beta_pow_T(claim_log, device, dtype, problem):
    figures = V2.check(problem, device, dtype)
    target(figures["max_per_step_ratio_to_bound"], label="(||Π J|| / β^T)^(1/T)")
    claim_log.example("V2", **figures)


@pytest.mark.claim("V3")
def test_V3_norm_and_rate_measured(claim_log, device):
    table = V3.measure(device)
    summary = V3.check(table)
    on = torch.device(device).type  # one table, line and plot per device: a CUDA run must not overwrite the CPU's
    claim_log.figures("V3", **{f"table_{on}": table, f"verdict_line_{on}": V3.verdict_line(summary),
                               f"plot_norm_and_rate_vs_n_{on}": V3.plot(table)},
                      **{k: v for k, v in summary.items() if isinstance(v, (int, float))})
    cx = V3.counterexample(table, summary)
    if cx:
        claim_log.refute("V3", cx, reproduce=f"python -m pytest tests -m claims -k 'test_V3_norm_and_rate_measured "
                                             f"and {device}'")
    claim_log.example("V3", sizes_measured=len(table["rows"]))
