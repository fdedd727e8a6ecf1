"""One record per claim of CLAIMS.md: what the note says, under what condition, and the checks that run it.

A claim module defines its record in two parts: `CLAIM = register(Claim(...))` at the top
(the note's sentence, the condition, the quantity: what a reader looks for first) and
`CLAIM.define_checks(Check(...), ...)` at the bottom, after the functions the checks name.
The claim suite (lstm_claims/suite), the in-process catalogue runner (lstm_claims/inprocess)
and the report are generated from these records; nothing else lists checks. Adding a claim
is one module and one line in CLAIM_MODULES.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from lstm_claims.claims.record import Check

from lstm_claims.names import CLAIM_IDS  # noqa: E402  (defined with the plugin's other light names)

# Where each claim's record lives (imported on first use by all_claims()).
CLAIM_MODULES = {
    "L0": "l0_standard_cell", "L1": "l1_gates_blind_to_c", "L2": "l2_decomposition", "L3": "l3_direct_term",
    "L4": "l4_derivative_bounds", "L5": "l5_indirect_term", "L6": "l6_chain_rule_product",
    "L7": "l7_product_near_diag", "L8": "l8_log_space_memory", "L9": "l9_forget_bias",
    "G1": "g1_exploding", "G2": "g2_clipping", "G3": "g3_anisotropy", "G4": "g4_sequential",
    "V1": "v1_vanilla_jacobian", "V2": "v2_vanilla_decay", "V3": "v3_vanilla_norm_measured",
    "R1": "r1_residual_form", "R2": "r2_skip_path",
}

CLAIMS: dict[str, "Claim"] = {}


@dataclass
class Claim:
    id: str  # stable ID from CLAIMS.md
    title: str  # a few words
    statement: str  # the note's sentence (or CLAIMS.md's precise form) that the claim encodes
    condition: str  # when it is supposed to hold, in words
    quantity: str  # what the suite computes and compares
    # True: the claim holds without a condition (an identity, a theorem, a definition); its verdict
    # reads `holds`. False: `holds-under-condition` (the condition above is part of the statement).
    unconditional: bool = False
    checks: tuple[Check, ...] = field(default=())  # set once, by define_checks

    def define_checks(self, *checks: Check) -> "Claim":
        if self.checks:
            raise ValueError(f"claim {self.id}: checks are defined twice")
        names = [c.name for c in checks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"claim {self.id}: check names must be unique, {', '.join(dupes)} repeats")
        if not checks:
            raise ValueError(f"claim {self.id}: a claim needs at least one check")
        self.checks = tuple(checks)
        return self

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"claim {self.id} has no check {name!r} ({', '.join(c.name for c in self.checks)})")


def register(claim: Claim) -> Claim:
    if claim.id not in CLAIM_IDS:
        raise ValueError(f"unknown claim ID {claim.id!r}; the IDs are {', '.join(CLAIM_IDS)}")
    if claim.id in CLAIMS and CLAIMS[claim.id] is not claim:
        raise ValueError(f"claim {claim.id} is registered twice")
    CLAIMS[claim.id] = claim
    return claim


def all_claims(ids=CLAIM_IDS) -> list[Claim]:
    """The records of `ids`, in catalogue order, each module imported once."""
    out = []
    for cid in ids:
        if cid not in CLAIMS:
            importlib.import_module(f"lstm_claims.claims.{CLAIM_MODULES[cid]}")
        claim = CLAIMS[cid]
        if not claim.checks:
            raise ValueError(f"claim {cid} ({CLAIM_MODULES[cid]}) registered no checks")
        out.append(claim)
    return out
