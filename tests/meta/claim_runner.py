"""Run a claim's checks in-process on any cell, for the kit's own tests (mutants, correct cells).

The checks and strategies are the same ones tests/claims uses; this runner only drives
them with Hypothesis settings chosen per call and returns the first ClaimViolation.
"""
from __future__ import annotations

import torch
from hypothesis import Phase, given, settings

from claims import l0_standard_cell as L0
from claims import l1_gates_blind_to_c as L1
from claims import l2_decomposition as L2
from claims import l3_direct_term as L3
from claims import l4_derivative_bounds as L4
from claims import l5_indirect_term as L5
from claims import l6_chain_rule_product as L6
from claims.cell_under_test import CellUnderTest
from claims.violation import ClaimViolation
from strategies import step_problems
from strategies.long_range_sequences import sequence_problems

_JAC = step_problems(max_hidden=6)
CHECKS = {
    "L0": [(L0.check_forward, step_problems()), (L0.check_backward, step_problems())],
    "L1": [(L1.check, _JAC)],
    "L2": [(L2.check, _JAC)],
    "L3": [(L3.check, _JAC)],
    "L4": [(L4.check_cell_bias_gradients, step_problems())],
    "L5": [(L5.check_bound, _JAC)],
    # The unrolled cell's autograd dc_T/dc_0 against the closed-form total derivative (and the note's product).
    "L6": [(L6.check, sequence_problems(max_steps=10, max_hidden=4, max_batch=2))],
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
