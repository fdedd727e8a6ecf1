"""Hypothesis prints a failing example's dataclass field by field, ignoring its __repr__.

Its pretty-printer (hypothesis.vendor.pretty) formats any dataclass as `Cls(field=..., ...)`,
each tensor as torch prints it: four significant digits, "..." past a thousand elements, so the
printed falsifying example neither rebuilds the problem nor fits on a screen (measured: 44 kB for
one L0 non-contiguous-inputs problem, which Hypothesis also warned about). The kit's problem
dataclasses define a __repr__ that does both: the exact values (17 digits), or the seeded call
that rebuilds them. `_repr_pretty_ = repr_pretty` makes Hypothesis print that.
"""
from __future__ import annotations


def repr_pretty(self, p, cycle) -> None:
    """Hypothesis's (IPython's) pretty-printing hook: print the object's own __repr__."""
    p.text(repr(self))
