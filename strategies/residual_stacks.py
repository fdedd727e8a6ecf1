"""Random residual stacks x_l = x_(l-1) + F_l(x_(l-1)), F_l(x) = W2 tanh(W1 x + b1) + b2 (CLAIMS.md R1, R2).

R2's bounds need ||A_l|| = ||J_(F_l)|| < 1. Since ||J_F(x)|| <= ||W2|| max tanh' ||W1|| <= ||W2|| ||W1||,
each block's W2 is scaled by a power of two (exact) so that ||W2|| ||W1|| <= ρ, with ρ drawn
from CONTRACTIONS: from 1/64 (blocks nearly the identity) to 7/8 (||A_l|| close to 1, where
Π(1 - ||A_l||) is tiny and the bound is tested hardest). Depths 1 .. max_depth; the stack's
own autograd Jacobian is formed for depths up to `autograd_depth` (R2 checks it against the
product of the block Jacobians there).

Every value is exact in `exact_in` (keyword option, default float32; strategies/exact.py):
the scaled W2 is rounded to exact_in and ||W2|| ||W1|| <= ρ checked again on the rounded
matrices. All magnitudes (entries <= 1, |x_L| <= 1 + L (k + 1)) fit float16 too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lstm_claims.pretty import repr_pretty
from lstm_claims.reference.residual import BlockParams
from lstm_claims.strategies.exact import DEFAULT_EXACT_IN, check_exact_in, round_to
from lstm_claims.strategies.long_range_sequences import _drawn_matrix, check_range, seeded_uniform

CONTRACTIONS = (1 / 64, 1 / 8, 1 / 2, 7 / 8)


@dataclass(frozen=True)
class ResidualStack:
    """L residual blocks and a batch of inputs x0 (B, n)."""

    blocks: tuple
    x0: torch.Tensor
    drawn: dict = field(default_factory=dict, compare=False)

    @property
    def depth(self) -> int:
        return len(self.blocks)

    @property
    def width(self) -> int:
        return self.x0.shape[1]

    @property
    def batch(self) -> int:
        return self.x0.shape[0]

    def as_json(self) -> dict:
        return {"depth": self.depth, "n": self.width, "B": self.batch, "drawn": dict(self.drawn),
                "blocks": [{k: v.tolist() for k, v in b.as_dict().items()} for b in self.blocks],
                "x0": self.x0.tolist()}

    _repr_pretty_ = repr_pretty  # Hypothesis prints the __repr__ below (lstm_claims/pretty.py)

    def __repr__(self) -> str:
        return f"ResidualStack(depth={self.depth}, n={self.width}, B={self.batch}, drawn={self.drawn}, " \
               f"x0={self.x0.tolist()!r}, blocks={[{k: v.tolist() for k, v in b.as_dict().items()} for b in self.blocks]!r})"


@st.composite
def _residual_stacks(draw, min_depth, max_depth, max_width, max_inner, max_batch, contractions, exact_in):
    L = draw(st.integers(min_depth, max_depth), label="depth")
    n = draw(st.integers(1, max_width), label="width")
    k = draw(st.integers(1, max_inner), label="hidden units per block")
    B = draw(st.integers(1, max_batch), label="batch")
    rho = draw(st.sampled_from(contractions), label="contraction ρ")
    b_exp = draw(st.integers(-4, 0), label="bias exponent")
    # The first block's values are drawn one by one (they shrink to simple values); deeper blocks' come
    # from a drawn seed: Hypothesis draws an element in about 0.1 ms, and a stack of 32 blocks of 5 x 6
    # weights drawn element by element cost R2 about 9 s of the ci profile (measured, 37 examples).
    weights_seed = draw(st.integers(0, 2 ** 32 - 1), label="seed of the deeper blocks' weights")
    blocks = []
    for index in range(L):
        if index == 0:
            w1, w2 = _drawn_matrix(draw, (k, n), 0, exact_in), _drawn_matrix(draw, (n, k), 0, exact_in)
            b1, b2 = _drawn_matrix(draw, (k,), b_exp, exact_in), _drawn_matrix(draw, (n,), b_exp, exact_in)
        else:
            def seed(j):  # four independent streams per block
                return (weights_seed + 4 * index + j) % 2 ** 32
            w1, w2 = seeded_uniform((k, n), 0, seed(0), exact_in=exact_in), seeded_uniform((n, k), 0, seed(1), exact_in=exact_in)
            b1, b2 = seeded_uniform((k,), b_exp, seed(2), exact_in=exact_in), seeded_uniform((n,), b_exp, seed(3), exact_in=exact_in)
        n1 = torch.linalg.matrix_norm(w1, 2)
        s = (n1 * torch.linalg.matrix_norm(w2, 2)).item()
        # The largest power of two 2^e with 2^e s <= ρ (s > 0); a zero block is left as it is.
        e = math.floor(math.log2(rho / s)) if s > 0 else 0
        while s > 0 and 2.0 ** e * s > rho:  # guard against log2 rounding
            e -= 1
        # 2^e W2 rounded to exact_in (the identity unless entries fall below exact_in's normal
        # range, e.g. float16's 2^-14); if rounding raised the norm past ρ, scale down further.
        w2s = round_to(w2 * 2.0 ** e, exact_in)
        while s > 0 and (n1 * torch.linalg.matrix_norm(w2s, 2)).item() > rho:
            e -= 1
            w2s = round_to(w2 * 2.0 ** e, exact_in)
        blocks.append(BlockParams(w1, b1, w2s, b2))
    x0 = _drawn_matrix(draw, (B, n), 0, exact_in)
    drawn = {"contraction": rho, "bias_exp": b_exp, "inner": k}
    if exact_in != DEFAULT_EXACT_IN:
        drawn["exact_in"] = str(exact_in)
    return ResidualStack(tuple(blocks), x0, drawn)


def residual_stacks(*, min_depth: int = 1, max_depth: int = 32, max_width: int = 5, max_inner: int = 6,
                    max_batch: int = 2, contractions: tuple[float, ...] = CONTRACTIONS,
                    exact_in: torch.dtype = DEFAULT_EXACT_IN):
    """Residual stacks with ||W2|| ||W1|| <= ρ < 1 per block (so ||A_l|| <= ρ), ρ drawn from `contractions`.

    exact_in: every value (W1, b1, W2, b2, x0) is exactly representable in this dtype and
    finite there: pass the narrowest dtype the check runs in, so that all dtypes see the same
    stack. The default (float32) draws what was always drawn.
    """
    check_exact_in(exact_in)
    check_range("depth", min_depth, max_depth, 1)
    check_range("width", 1, max_width, 1)
    check_range("max_inner", 1, max_inner, 1)
    check_range("max_batch", 1, max_batch, 1)
    if not contractions or not all(0 < float(r) < 1 for r in contractions):
        raise InvalidArgument(f"contractions must be values in (0, 1) (R2 needs ||A_l|| < 1), got {contractions!r}")
    return _residual_stacks(min_depth, max_depth, max_width, max_inner, max_batch,
                            tuple(float(r) for r in contractions), exact_in)
