"""SymPy references: the LSTM step symbolically, and proofs of the identities and bounds.

σ is a SymPy Function whose derivative is σ(1 - σ); `prove_sigmoid_derivative` proves that
this is the derivative of 1/(1 + e^{-z}), so every later identity that differentiates σ
rests on a proved fact, not an assumption. Proofs return a dict describing what was
proved and raise `ProofFailure` when the symbolic difference does not vanish.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp


class ProofFailure(AssertionError):
    """A symbolic identity or bound did not simplify to what the claim says."""


class sigmoid(sp.Function):  # noqa: N801  (SymPy function names are lower case)
    """σ(z) = 1 / (1 + e^{-z}), with σ' = σ(1 - σ)."""

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return 1 / (1 + sp.exp(-z))


def _vec(name, n):
    return sp.Matrix(n, 1, lambda k, _: sp.Symbol(f"{name}{k}", real=True))


def _mat(name, rows, cols):
    return sp.Matrix(rows, cols, lambda r, c: sp.Symbol(f"{name}{r}_{c}", real=True))


@lru_cache(maxsize=None)
def symbolic_cell(m: int, n: int) -> dict:
    """Symbols and expressions of one LSTM step with input size m and hidden size n."""
    W_ih, W_hh = _mat("Wih", 4 * n, m), _mat("Whh", 4 * n, n)
    b_ih, b_hh = _vec("bih", 4 * n), _vec("bhh", 4 * n)
    x, h, c = _vec("x", m), _vec("h", n), _vec("c", n)
    a = W_ih * x + b_ih + W_hh * h + b_hh
    a_i, a_f, a_g, a_o = (a[k * n:(k + 1) * n, :] for k in range(4))
    i, f, o = (ai.applyfunc(sigmoid) for ai in (a_i, a_f, a_o))
    g = a_g.applyfunc(sp.tanh)
    c_next = f.multiply_elementwise(c) + i.multiply_elementwise(g)
    h_next = o.multiply_elementwise(c_next.applyfunc(sp.tanh))
    return dict(W_ih=W_ih, W_hh=W_hh, b_ih=b_ih, b_hh=b_hh, x=x, h=h, c=c, a=a, a_i=a_i, a_f=a_f, a_g=a_g,
                a_o=a_o, i=i, f=f, g=g, o=o, c_next=c_next, h_next=h_next)


def _zero(expr) -> bool:
    return sp.simplify(sp.expand(expr)) == 0


def _assert_zero_matrix(D: sp.Matrix, what: str):
    for idx, entry in enumerate(D):
        if not _zero(entry):
            raise ProofFailure(f"{what}: entry {idx} does not vanish: {sp.simplify(entry)}")


def prove_sigmoid_derivative() -> dict:
    """d/dz 1/(1 + e^{-z}) = σ(z)(1 - σ(z)) (so σ's fdiff above is a theorem)."""
    z = sp.Symbol("z", real=True)
    s = 1 / (1 + sp.exp(-z))
    if not _zero(sp.diff(s, z) - s * (1 - s)):
        raise ProofFailure("σ' != σ(1 - σ)")
    return {"identity": "σ'(z) = σ(z)(1 - σ(z))", "method": "simplify(d/dz σ - σ(1-σ)) = 0"}


def prove_gates_blind_to_c(n: int, m: int = 1) -> dict:
    """L1: ∂a/∂c_{t-1} = 0 and ∂c_t/∂c_{t-1} |_{h fixed} = diag(f_t), symbolically."""
    S = symbolic_cell(m, n)
    if S["a"].free_symbols & set(S["c"]):
        raise ProofFailure("the pre-activations contain c_{t-1}")
    J = S["c_next"].jacobian(S["c"])
    _assert_zero_matrix(J - sp.diag(*S["f"]), f"L1 n={n}: dc_t/dc_(t-1) - diag(f)")
    return {"identity": f"∂a/∂c = 0 and ∂c_t/∂c_(t-1)|_h = diag(f_t) for n={n}, m={m}"}


def decomposition_closed_form(S: dict, o_prev: sp.Matrix) -> tuple[sp.Matrix, sp.Matrix]:
    """(J_closed, h_prev) of L2 with h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}) substituted."""
    n = S["c"].shape[0]
    h_prev = o_prev.multiply_elementwise(S["c"].applyfunc(sp.tanh))
    sub = dict(zip(S["h"], h_prev))
    ds = lambda a: a.applyfunc(lambda z: sigmoid(z) * (1 - sigmoid(z)))  # noqa: E731
    dt = lambda a: a.applyfunc(lambda z: 1 - sp.tanh(z) ** 2)  # noqa: E731
    W = {k: S["W_hh"][j * n:(j + 1) * n, :] for j, k in enumerate("ifgo")}
    K = (sp.diag(*S["c"].multiply_elementwise(ds(S["a_f"]))) * W["f"]
         + sp.diag(*S["g"].multiply_elementwise(ds(S["a_i"]))) * W["i"]
         + sp.diag(*S["i"].multiply_elementwise(dt(S["a_g"]))) * W["g"])
    M = sp.diag(*o_prev.multiply_elementwise(dt(S["c"])))
    return (sp.diag(*S["f"]) + K * M).subs(sub), h_prev


def prove_decomposition(n: int, m: int = 1) -> dict:
    """L2: dc_t/dc_{t-1} = diag(f_t) + K_t M_{t-1} exactly, h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1})."""
    S = symbolic_cell(m, n)
    o_prev = _vec("o", n)
    J_closed, h_prev = decomposition_closed_form(S, o_prev)
    c_next = S["c_next"].subs(dict(zip(S["h"], h_prev)))
    _assert_zero_matrix(c_next.jacobian(S["c"]) - J_closed, f"L2 n={n}: autodiff - closed form")
    return {"identity": f"dc_t/dc_(t-1) = diag(f_t) + K_t M_(t-1) for n={n}, m={m}",
            "method": "SymPy Jacobian of the composed step minus the closed form simplifies to 0"}


def prove_sup_sigmoid_prime() -> dict:
    """L4: σ' <= 1/4 with equality exactly at z = 0.

    1/4 - σ(1 - σ) = (σ - 1/2)² >= 0, zero iff σ = 1/2 iff z = 0.
    """
    z, s = sp.Symbol("z", real=True), sp.Symbol("s", real=True)
    if not _zero(sp.Rational(1, 4) - s * (1 - s) - (s - sp.Rational(1, 2)) ** 2):
        raise ProofFailure("1/4 - s(1-s) != (s - 1/2)^2")
    roots = sp.solveset(sp.Eq(1 / (1 + sp.exp(-z)), sp.Rational(1, 2)), z, sp.S.Reals)
    if roots != sp.FiniteSet(0):
        raise ProofFailure(f"σ(z) = 1/2 has solutions {roots}, expected {{0}}")
    dsig = sp.diff(1 / (1 + sp.exp(-z)), z)
    if sp.simplify(dsig.subs(z, 0)) != sp.Rational(1, 4):
        raise ProofFailure("σ'(0) != 1/4")
    return {"identity": "sup σ' = 1/4, attained at z = 0",
            "method": "1/4 - σ(1-σ) = (σ - 1/2)^2; σ(z) = 1/2 iff z = 0; σ'(0) = 1/4"}


def prove_sup_tanh_prime() -> dict:
    """L4: tanh' = 1 - tanh² <= 1 with equality exactly at z = 0."""
    z = sp.Symbol("z", real=True)
    if not _zero(sp.diff(sp.tanh(z), z) - (1 - sp.tanh(z) ** 2)):
        raise ProofFailure("tanh' != 1 - tanh^2")
    roots = sp.solveset(sp.Eq(sp.tanh(z), 0), z, sp.S.Reals)
    if roots != sp.FiniteSet(0):
        raise ProofFailure(f"tanh(z) = 0 has solutions {roots}, expected {{0}}")
    return {"identity": "sup tanh' = 1, attained at z = 0",
            "method": "1 - tanh' = tanh^2 >= 0, zero iff tanh z = 0 iff z = 0"}


@lru_cache(maxsize=None)
def lambdified_step(m: int, n: int):
    """Numeric (numpy, float64) function of the symbolic step: (W_ih, W_hh, b_ih, b_hh, x, h, c) -> (h', c')."""
    S = symbolic_cell(m, n)
    args = [list(S[k]) for k in ("W_ih", "W_hh", "b_ih", "b_hh", "x", "h", "c")]
    expr = [list(S["h_next"]), list(S["c_next"])]
    return sp.lambdify(args, expr, modules=[{"sigmoid": lambda z: 1 / (1 + __import__("numpy").exp(-z))}, "numpy"])
