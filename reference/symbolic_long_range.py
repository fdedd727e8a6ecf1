"""SymPy proofs of the long-range identities (CLAIMS.md L6-L9, V1-V2, R1-R2).

Built on reference.symbolic: σ is its `sigmoid` Function (σ' = σ(1 - σ), itself proved
there), one LSTM step is its `symbolic_cell`. Each proof returns a dict saying what was
proved and how, and raises reference.symbolic.ProofFailure when the symbolic difference
does not vanish. Identities are proved for small sizes (n, T); the inequalities built on
them are stated in the docstrings with the argument that turns the identity into the bound.
"""
from __future__ import annotations

import itertools
from functools import lru_cache

import sympy as sp

from lstm_claims.reference.symbolic import ProofFailure, _assert_zero_matrix, _zero, sigmoid, symbolic_cell


def _ds(z):
    return sigmoid(z) * (1 - sigmoid(z))


def _dt(z):
    return 1 - sp.tanh(z) ** 2


def _vec(name, n):
    return sp.Matrix(n, 1, lambda k, _: sp.Symbol(f"{name}{k}", real=True))


@lru_cache(maxsize=None)
def _unrolled(n: int, T: int, zero_w_ho: bool):
    """Symbols and per-step expressions of an LSTM unrolled T steps (m = 1), h_0 a symbol held fixed.

    Returns dict with c0 (symbols), and per step t = 1..T: a_i, a_f, a_g, a_o, i, f, g, o, c, h
    (as expressions in the parameters, x_t, h_0 and c_0).
    """
    S = symbolic_cell(1, n)
    W_hh = S["W_hh"]
    sub_w = {}
    if zero_w_ho:
        sub_w = {W_hh[3 * n + r, k]: 0 for r in range(n) for k in range(n)}
    h0, c0 = _vec("h0_", n), _vec("c0_", n)
    steps = []
    h, c = h0, c0
    for t in range(1, T + 1):
        x_t = sp.Matrix([[sp.Symbol(f"x{t}", real=True)]])
        sub = {**sub_w, **dict(zip(S["h"], h)), **dict(zip(S["c"], c)), **dict(zip(S["x"], x_t))}
        step = {k: S[k].subs(sub) for k in ("a_i", "a_f", "a_g", "a_o", "i", "f", "g", "o")}
        step["c_prev"], step["h_prev"] = c, h
        c = step["f"].multiply_elementwise(c) + step["i"].multiply_elementwise(step["g"])
        h = step["o"].multiply_elementwise(c.applyfunc(sp.tanh))
        step["c"], step["h"] = c, h
        steps.append(step)
    W = {k: W_hh[j * n:(j + 1) * n, :].subs(sub_w) for j, k in enumerate("ifgo")}
    return {"c0": c0, "h0": h0, "steps": steps, "W": W}


def _note_factor(U: dict, t: int) -> sp.Matrix:
    """J_t = diag(f_t) + K_t M_{t-1} (L2), with J_1 = diag(f_1) since h_0 is fixed."""
    st = U["steps"][t - 1]
    D = sp.diag(*st["f"])
    if t == 1:
        return D
    W = U["W"]
    K = (sp.diag(*st["c_prev"].multiply_elementwise(st["a_f"].applyfunc(_ds))) * W["f"]
         + sp.diag(*st["g"].multiply_elementwise(st["a_i"].applyfunc(_ds))) * W["i"]
         + sp.diag(*st["i"].multiply_elementwise(st["a_g"].applyfunc(_dt))) * W["g"])
    prev = U["steps"][t - 2]
    M = sp.diag(*prev["o"].multiply_elementwise(prev["c"].applyfunc(_dt)))
    return D + K * M


def _true_and_product(n: int, T: int, zero_w_ho: bool):
    U = _unrolled(n, T, zero_w_ho)
    true = U["steps"][-1]["c"].jacobian(U["c0"])
    P = _note_factor(U, 1)
    for t in range(2, T + 1):
        P = _note_factor(U, t) * P
    return true, P, U


def prove_chain_product_two_steps(n: int = 1) -> dict:
    """L6, T = 2: dc_2/dc_0 = J_2 J_1 for any W_ho (h_1 depends on c_0 only through c_1: o_1 reads h_0, fixed)."""
    true, P, _ = _true_and_product(n, 2, zero_w_ho=False)
    _assert_zero_matrix(true - P, f"L6 T=2 n={n}: dc_2/dc_0 - J_2 J_1")
    return {"identity": f"dc_2/dc_0 = J_2 J_1 for any W_ho (n={n}, m=1, h_0 fixed)",
            "method": "SymPy Jacobian of the 2-step unrolled LSTM minus the product of L2's closed forms simplifies to 0"}


def prove_chain_product_three_steps(witness_digits: int = 30) -> dict:
    """L6, T = 3, n = m = 1: dc_3/dc_0 = J_3 J_2 J_1 when W_ho = 0, and not in general.

    The equality is proved symbolically with W_ho = 0 (the expanded difference is 0), and the
    general difference becomes 0 when W_ho is substituted by 0 (so the gap is W_ho's path).
    The inequality is proved by a witness: the general difference evaluated with mpmath at a
    rational point, at `witness_digits` and at twice as many digits; both agree on a value
    far from 0. The point and the value are returned.
    """
    import mpmath

    true0, P0, _ = _true_and_product(1, 3, zero_w_ho=True)
    _assert_zero_matrix(true0 - P0, "L6 T=3 n=1 W_ho=0: dc_3/dc_0 - J_3 J_2 J_1")
    true, P, U = _true_and_product(1, 3, zero_w_ho=False)
    diff = (true - P)[0, 0]
    w_ho = symbolic_cell(1, 1)["W_hh"][3, 0]
    if sp.expand(diff).subs(w_ho, 0) != 0:
        raise ProofFailure("L6 T=3: the general difference does not vanish at W_ho = 0")
    syms = sorted(diff.free_symbols, key=lambda s: s.name)
    # The witness: every parameter 1/2, x_t = 1, h_0 = 1/4, c_0 = 1/3.
    point = {s: sp.Rational(1, 2) for s in syms}
    point.update({s: sp.Integer(1) for s in syms if s.name.startswith("x")})
    point.update({U["h0"][0]: sp.Rational(1, 4), U["c0"][0]: sp.Rational(1, 3)})
    fn = sp.lambdify(syms, diff.replace(sigmoid, lambda z: 1 / (1 + sp.exp(-z))), "mpmath")
    values = []
    for digits in (witness_digits, 2 * witness_digits):
        with mpmath.workdps(digits):
            values.append(fn(*[mpmath.mpf(point[s].p) / point[s].q for s in syms]))
    if abs(values[0] - values[1]) > abs(values[1]) * mpmath.mpf(10) ** (5 - witness_digits) or \
            abs(values[1]) < mpmath.mpf(10) ** (-witness_digits // 2):
        raise ProofFailure(f"L6 T=3: the difference at the witness point is {values}, not clearly nonzero")
    value = float(values[1])
    return {"identity": "dc_3/dc_0 = J_3 J_2 J_1 when W_ho = 0 (n = m = 1); != in general",
            "method": "SymPy: the expanded difference is 0 with W_ho = 0; at the witness point (all parameters "
                      f"1/2, x_t = 1, h_0 = 1/4, c_0 = 1/3) it is {value:.12g} (mpmath, {witness_digits} and "
                      f"{2 * witness_digits} digits agree)",
            "witness_difference": value}


def _ordered(factors):
    P = factors[0]
    for F in factors[1:]:
        P = F * P
    return P


def prove_telescoping_expansion(T: int) -> dict:
    """L7 (and R2 with D_t = I): Π(D_t + E_t) - Π D_t = Σ over nonempty S of the ordered product with E_t at t ∈ S.

    Proved with non-commuting symbols (matrices). Taking norms term by term, with ||D_t|| <= 1
    and ε_t = ||E_t||: ||Π J_t - Π D_t|| <= Σ_S Π_{t∈S} ε_t = Π(1 + ε_t) - 1 (the scalar identity,
    proved here too with commuting symbols).
    """
    D = sp.symbols(f"D1:{T + 1}", commutative=False)
    E = sp.symbols(f"E1:{T + 1}", commutative=False)
    lhs = sp.expand(_ordered([d + e for d, e in zip(D, E)]) - _ordered(list(D)))
    terms = 0
    for mask in itertools.product((0, 1), repeat=T):
        if any(mask):
            terms += _ordered([E[t] if mask[t] else D[t] for t in range(T)])
    if sp.expand(lhs - terms) != 0:
        raise ProofFailure(f"L7 T={T}: Π(D+E) - ΠD is not the sum over nonempty subsets")
    eps = sp.symbols(f"e1:{T + 1}", nonnegative=True)
    scalar = sum(sp.Mul(*[eps[t] for t in range(T) if mask[t]]) for mask in itertools.product((0, 1), repeat=T)
                 if any(mask))
    if not _zero(scalar - (sp.Mul(*[1 + e for e in eps]) - 1)):
        raise ProofFailure(f"L7 T={T}: Σ_S Π ε != Π(1 + ε) - 1")
    return {"identity": f"Π(D_t+E_t) - Π D_t = Σ_(S≠∅) Π_t (E_t if t∈S else D_t), and Σ_S Π_(t∈S) ε_t = Π(1+ε_t) - 1 "
                        f"(T={T})",
            "method": "non-commutative expansion in SymPy; the bound follows by the triangle inequality and "
                      "submultiplicativity with ||D_t|| <= 1"}


def prove_exp_bound() -> dict:
    """R2: Π(1 + ε_l) - 1 <= exp(Σ ε_l) - 1, from 1 + ε <= e^ε for ε >= 0.

    g(ε) = e^ε - 1 - ε has g(0) = 0, g'(ε) = e^ε - 1 with g'(0) = 0, and g'' = e^ε > 0: g' is
    increasing, so g' >= 0 on [0, ∞), so g >= 0 there.
    """
    e = sp.Symbol("e", nonnegative=True)
    g = sp.exp(e) - 1 - e
    g1, g2 = sp.diff(g, e), sp.diff(g, e, 2)
    if g.subs(e, 0) != 0 or g1.subs(e, 0) != 0 or not _zero(g2 - sp.exp(e)) or not g2.is_positive:
        raise ProofFailure("e^ε - 1 - ε: value or derivatives at 0 wrong, or g'' not positive")
    return {"identity": "1 + ε <= e^ε for ε >= 0, hence Π(1 + ε_l) <= exp(Σ ε_l)",
            "method": "g(ε) = e^ε - 1 - ε: g(0) = g'(0) = 0 and g'' = e^ε > 0 (SymPy)"}


def prove_log_space_products() -> dict:
    """L8: log Π σ(a_t) = Σ log σ(a_t) = -Σ log(1 + e^(-a_t)), and (1 - δ)^T >= 1 - Tδ on [0, 1].

    Bernoulli: b(δ) = (1 - δ)^T - 1 + Tδ has b(0) = 0 and b'(δ) = T(1 - (1 - δ)^(T-1)) >= 0 for
    δ in [0, 1], T >= 1 (proved for symbolic T). Hence Π f >= (1 - δ)^T >= 1 - Tδ if every f >= 1 - δ.
    """
    a = sp.symbols("a1:4", real=True)
    lhs = sp.log(sp.Mul(*[1 / (1 + sp.exp(-x)) for x in a]))
    rhs = -sum(sp.log(1 + sp.exp(-x)) for x in a)
    if not _zero(sp.expand_log(lhs, force=True) - rhs):
        raise ProofFailure("log Π σ(a_t) != -Σ log(1 + e^(-a_t))")
    d = sp.Symbol("delta", nonnegative=True)
    T = sp.Symbol("T", positive=True, integer=True)
    b = (1 - d) ** T - 1 + T * d
    if b.subs(d, 0) != 0 or sp.simplify(sp.powsimp(sp.diff(b, d) - T * (1 - (1 - d) ** (T - 1)), force=True)) != 0:
        raise ProofFailure("Bernoulli: b(0) or b'(δ) wrong")
    return {"identity": "log Π σ(a_t) = -Σ log(1 + e^(-a_t)); (1-δ)^T >= 1 - Tδ for δ in [0,1]",
            "method": "expand_log; b(δ) = (1-δ)^T - 1 + Tδ has b(0) = 0 and b' = T(1 - (1-δ)^(T-1)) >= 0"}


def prove_forget_bias_monotone(T: int = 3) -> dict:
    """L9: with the other inputs of the gates fixed, d/db log Π_t σ(a_t + b) = Σ_t σ(-(a_t + b)) > 0.

    So each f_t and their product increase strictly with b_f when h does not feed back (W_hh = 0).
    """
    a = sp.symbols(f"a1:{T + 1}", real=True)
    b = sp.Symbol("b", real=True)
    logprod = sum(sp.log(sigmoid(x + b)) for x in a)
    deriv = sp.diff(logprod, b)
    target = sum(1 - sigmoid(x + b) for x in a)
    if not _zero(sp.simplify(deriv - target)):
        raise ProofFailure(f"d/db log Π σ(a_t + b) != Σ (1 - σ(a_t + b)): {sp.simplify(deriv - target)}")
    z = sp.Symbol("z", real=True)
    one_minus = (1 - 1 / (1 + sp.exp(-z))) - 1 / (1 + sp.exp(z))
    if not _zero(sp.simplify(one_minus)):
        raise ProofFailure("1 - σ(z) != σ(-z)")
    if not (1 / (1 + sp.exp(z))).is_positive:
        raise ProofFailure("SymPy cannot show σ(-z) > 0")
    return {"identity": f"d/db log Π_t σ(a_t + b) = Σ_t σ(-(a_t+b)) > 0 (T={T})",
            "method": "SymPy derivative with σ' = σ(1-σ); 1 - σ(z) = σ(-z) = 1/(1+e^z) > 0"}


@lru_cache(maxsize=None)
def _vanilla(n: int, T: int):
    W = sp.Matrix(n, n, lambda r, c: sp.Symbol(f"W{r}_{c}", real=True))
    U = sp.Matrix(n, 1, lambda r, _: sp.Symbol(f"U{r}", real=True))  # m = 1
    b = _vec("b", n)
    h0 = _vec("h0_", n)
    h, zs = h0, []
    for t in range(1, T + 1):
        z = W * h + U * sp.Symbol(f"x{t}", real=True) + b
        zs.append(z)
        h = z.applyfunc(sp.tanh)
    return W, h0, zs, h


def prove_vanilla_jacobian(n: int) -> dict:
    """V1: ∂h_t/∂h_{t-1} = diag(tanh'(z_t)) W_hh for h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)."""
    W, h0, zs, h1 = _vanilla(n, 1)
    _assert_zero_matrix(h1.jacobian(h0) - sp.diag(*zs[0].applyfunc(_dt)) * W, f"V1 n={n}")
    return {"identity": f"∂h_t/∂h_(t-1) = diag(tanh'(z_t)) W_hh (n={n})",
            "method": "SymPy Jacobian minus the closed form simplifies to 0"}


def prove_vanilla_chain(n: int, T: int) -> dict:
    """V1/V2: ∂h_T/∂h_0 = J_T ⋯ J_1 exactly for the vanilla RNN (its state is h alone)."""
    W, h0, zs, hT = _vanilla(n, T)
    P = _ordered([sp.diag(*z.applyfunc(_dt)) * W for z in zs])
    _assert_zero_matrix(hT.jacobian(h0) - P, f"V1 chain n={n} T={T}")
    return {"identity": f"∂h_T/∂h_0 = Π_t diag(tanh'(z_t)) W_hh (n={n}, T={T})",
            "method": "SymPy Jacobian of the unrolled RNN minus the ordered product simplifies to 0"}


def prove_residual_jacobian(n: int) -> dict:
    """R1: the Jacobian of x + F(x) is I + J_F for an arbitrary differentiable F: R^n -> R^n."""
    x = sp.symbols(f"x0:{n}", real=True)
    F = sp.Matrix([sp.Function(f"F{i}")(*x) for i in range(n)])
    X = sp.Matrix(x)
    _assert_zero_matrix((X + F).jacobian(X) - (sp.eye(n) + F.jacobian(X)), f"R1 n={n}")
    return {"identity": f"d(x + F(x))/dx = I + J_F for undefined functions F (n={n})",
            "method": "SymPy Jacobian of x + F(x) with F_i symbolic functions"}


def prove_forget_free_step(n: int) -> dict:
    """R1: without a forget gate, c_t = c_{t-1} + i_t ⊙ g_t and dc_t/dc_{t-1} = I + K'_t M_{t-1}.

    K'_t = diag(g ⊙ σ'(a^i)) W_hi + diag(i ⊙ tanh'(a^g)) W_hg (L2's K_t without the f term),
    M_{t-1} = diag(o_{t-1} ⊙ tanh'(c_{t-1})), with h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}).
    """
    S = symbolic_cell(1, n)
    o = _vec("o", n)
    h_prev = o.multiply_elementwise(S["c"].applyfunc(sp.tanh))
    sub = dict(zip(S["h"], h_prev))
    c_next = (S["c"] + S["i"].multiply_elementwise(S["g"])).subs(sub)
    W = {k: S["W_hh"][j * n:(j + 1) * n, :] for j, k in enumerate("ifgo")}
    K = (sp.diag(*S["g"].multiply_elementwise(S["a_i"].applyfunc(_ds))) * W["i"]
         + sp.diag(*S["i"].multiply_elementwise(S["a_g"].applyfunc(_dt))) * W["g"])
    M = sp.diag(*o.multiply_elementwise(S["c"].applyfunc(_dt)))
    _assert_zero_matrix(c_next.jacobian(S["c"]) - (sp.eye(n) + K * M).subs(sub), f"R1 forget-free n={n}")
    return {"identity": f"d(c + i ⊙ g)/dc = I + K' M with h = o ⊙ tanh(c) (n={n})",
            "method": "SymPy Jacobian of the forget-free step minus the closed form simplifies to 0"}
