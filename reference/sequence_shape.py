"""Sizes read off a sequence problem's tensors: one mixin instead of the same properties per class."""
from __future__ import annotations


class SequenceShape:
    """steps, batch, hidden_size, input_size of a problem with `xs` (T, B, m) and `params` (n, m)."""

    @property
    def steps(self) -> int:
        return self.xs.shape[0]

    @property
    def batch(self) -> int:
        return self.xs.shape[1]

    @property
    def hidden_size(self) -> int:
        return self.params.hidden_size

    @property
    def input_size(self) -> int:
        return self.params.input_size
