"""Run a claim's checks in-process on any cell, for the kit's own tests (mutants, correct cells).

The checks and strategies are the same ones tests/claims uses (CHECKS: every check of L0-L9
and G1-G4 that calls the cell under test; small adapters only unpack drawn tuples for the
checks that take more than one problem); this runner only drives them with Hypothesis
settings chosen per call and returns the first ClaimViolation. Left to tests/claims: the
checks that never call the cell (L7's long closed forms, G1's closed-form and chaotic growth,
G2 on drawn gradients, the SymPy proofs), the explicit @example constructions, G2 at the
overflowing T (a refutation there, not a failure) and G4's fixed 10^4-step scan (the drawn
scans run the same check).
"""
from __future__ import annotations

import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from lstm_claims.claims import l0_standard_cell as L0
from lstm_claims.claims import l1_gates_blind_to_c as L1
from lstm_claims.claims import l2_decomposition as L2
from lstm_claims.claims import l3_direct_term as L3
from lstm_claims.claims import l4_derivative_bounds as L4
from lstm_claims.claims import l5_indirect_term as L5
from lstm_claims.claims import l6_chain_rule_product as L6
from lstm_claims.claims import l7_product_near_diag as L7
from lstm_claims.claims import l8_log_space_memory as L8
from lstm_claims.claims import l9_forget_bias as L9
from lstm_claims.claims import g1_exploding as G1
from lstm_claims.claims import g2_clipping as G2
from lstm_claims.claims import g3_anisotropy as G3
from lstm_claims.claims import g4_sequential as G4
from lstm_claims.claims.cell_under_test import CellUnderTest
from lstm_claims.claims.violation import ClaimViolation
from lstm_claims.reference.exploding_construction import fixed_point_example
from lstm_claims.strategies import step_problems
from lstm_claims.strategies.gating_sequences import fixed_point_sequences, separated_forget_sequences, sequences
from lstm_claims.strategies.gradients import rescalings
from lstm_claims.strategies.long_range_sequences import forget_gate_sequences, sequence_problems

_JAC = step_problems(max_hidden=6)


# Adapters for the checks that take more than (cut, problem, device, dtype): each unpacks a
# drawn tuple and calls the claim module's own check, as tests/claims does.

def _with_delta(check):
    """L9's monotonicity checks: problem and the exponent k of the bias step Δ = 2^k."""
    return lambda cut, drawn, device, dtype: check(cut, drawn[0], 2.0 ** drawn[1], device, dtype)


def _stored(check):
    """A check of a fixed example (no draw): the strategy is st.just(the example or None)."""
    return lambda cut, example, device, dtype: check(cut, *(() if example is None else (example,)), device, dtype)


def _clip_g1_gradient(cut, steps, device, dtype):
    """G2 through the cell: clip_grad_norm_(max_norm = 1) on G1's exploding dL/dθ at T = steps (below overflow)."""
    cell = G1.exploding_parameter_gradient(cut, steps, device, dtype)
    return G2.check_clip(list(cell.parameters()), 1.0, device, dtype)


def _optimizer_rescaling(cut, drawn, device, dtype):
    seq, rescaling = drawn
    return G3.check_optimizer_rescaling(cut, seq, list(rescaling), device, dtype)


def _scan(cut, drawn, device, dtype):
    seq, block = drawn
    return G4.check_scan(cut, seq, device, dtype, block=block)


def _with_rescalings(seq):
    return st.tuples(st.just(seq), st.tuples(*(rescalings(t.numel()) for t in seq.params.as_dict().values())))


_DELTA = st.integers(-4, 2)
CHECKS = {
    "L0": [(L0.check_forward, step_problems()), (L0.check_backward, step_problems())],
    "L1": [(L1.check, _JAC)],
    "L2": [(L2.check, _JAC)],
    "L3": [(L3.check, _JAC)],
    "L4": [(L4.check_cell_bias_gradients, step_problems())],
    "L5": [(L5.check_bound, _JAC)],
    # The unrolled cell's autograd dc_T/dc_0 against the closed-form total derivative (and the note's product).
    "L6": [(L6.check, sequence_problems(max_steps=10, max_hidden=4, max_batch=2))],
    # The claims over sequences (see the module docstring for what is left to tests/claims).
    "L7": [(L7.check_through_cell, sequence_problems(max_steps=16, max_hidden=5, max_batch=2))],
    "L8": [(L8.check, forget_gate_sequences(max_log10_steps=5))],
    "L9": [(_stored(L9.check_table_cell), st.just(None)),  # first: one fixed example, catches most mutants at once
           (_with_delta(L9.check_without_feedback),
            st.tuples(sequence_problems(max_steps=8, recurrent=False, output_recurrence="zero"), _DELTA)),
           (_with_delta(L9.check_with_feedback), st.tuples(sequence_problems(max_steps=8, weight_exps=(-2, 3)), _DELTA))],
    "G1": [(_stored(G1.check_cell_jacobian_growth), st.just(fixed_point_example(64))),
           (_stored(G1.check_parameter_gradient_growth), st.just(fixed_point_example(64))),
           (G1.check_search_example, fixed_point_sequences())],
    "G2": [(_clip_g1_gradient, st.sampled_from([16, 64]))],
    "G3": [(G3.check_forget_conditioning, separated_forget_sequences()),
           (_optimizer_rescaling, separated_forget_sequences(steps=8).flatmap(_with_rescalings))],
    "G4": [(G4.check_causality, sequences()),
           (_scan, st.tuples(sequences(max_steps=40, hidden_feedback=False), st.sampled_from([2, 3, 4, 8]))),
           (G4.check_not_affine, step_problems(max_hidden=4))],
}


def first_violation(spec: str, claim_id: str, *, device="cpu", dtypes=(torch.float64, torch.float32),
                    max_examples=60, derandomize=True, strategy=None) -> ClaimViolation | None:
    """The first ClaimViolation of `claim_id` on cell `spec`, or None if every example passed."""
    cut = CellUnderTest.load(spec)
    for check, default_strategy in CHECKS[claim_id]:
        for dtype in dtypes:
            @settings(max_examples=max_examples, derandomize=derandomize, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], print_blob=True)
            @given(problem=strategy if strategy is not None else default_strategy)
            def run(problem):
                check(cut, problem, device, dtype)

            try:
                run()
            except ClaimViolation as exc:
                return exc
    return None
