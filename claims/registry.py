"""One record per claim of CLAIMS.md: what the note says, under what condition, what is computed.

Each claim module defines `CLAIM = register(Claim(...))`; tests, the pytest plugin and
the report look claims up here by their stable ID.
"""
from __future__ import annotations

from dataclasses import dataclass

CLAIM_IDS = ("L0", "L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9",
             "G1", "G2", "G3", "G4", "V1", "V2", "V3", "R1", "R2")

CLAIMS: dict[str, "Claim"] = {}


@dataclass(frozen=True)
class Claim:
    id: str  # stable ID from CLAIMS.md
    title: str  # a few words
    statement: str  # the note's sentence (or CLAIMS.md's precise form) that the claim encodes
    condition: str  # when it is supposed to hold ("always" for identities)
    quantity: str  # what the suite computes and compares


def register(claim: Claim) -> Claim:
    if claim.id not in CLAIM_IDS:
        raise ValueError(f"unknown claim ID {claim.id!r}; the IDs are {', '.join(CLAIM_IDS)}")
    if claim.id in CLAIMS and CLAIMS[claim.id] != claim:
        raise ValueError(f"claim {claim.id} is registered twice with different records")
    CLAIMS[claim.id] = claim
    return claim
