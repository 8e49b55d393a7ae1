"""rnn.layer, gru.layer, lstm.layer, lstm.cell.projection, sequence.module — the first-order
probabilistic error bound of a recurrent layer's gradients, backpropagation through time
(spec/tolerances.md, "Bounds at production scale", "Gradients").

The adjoint pass g_{t−1} = J_tᵀ g_t + gy_{t−1} of an implementation errs, to first order, by

    e_{t−1} = J_tᵀ e_t + (a) its own roundings + (b) ∂(J_tᵀ g_t)/∂(saved forward values) · their
              forward errors,

and the weight gradients Σ_t g_tᵀ x_t are (c) sums over all T·B rows. It is the model of
checks/bounds/propagation.py run backwards: every rounding an independent, mean-zero ε·(its
result), |ε| ≤ u; V (units of u²) carried per element, a sum through W∘W (one extra GEMM per
step), a product through its other factors squared; the saved values' V are the forward pass's
(propagation.LSTMTape, GRUTape). Dropped, as in the forward: the covariances between components
and between steps — among them that of a forward error with itself where it enters at several
steps (b); the measured errors stay ≤ 0.11 of the bound (spec/tolerances.md). Except where
inputs repeat (a held, periodic or repeated input): there the adjoint's state sums a stretch's
errors in amplitude (:class:`Stretches`) and the weight gradients count each row of a group
that may repeat each other's errors as often as the group has rows (:func:`multiplicity`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from nnspec.checks.bounds import rules as tol
from nnspec.checks.bounds.propagation import (
    SQUARABLE,
    GRUTape,
    LSTMTape,
    Steady,
    Trajectory,
    bounds,
    dominates,
    layer_linearisable,
    repeats,
    scale,
    spread,
    summed,
    underflow,
    where_vacuous,
)


class Open(NamedTuple):
    """An open weight gradient Σ_rows Lᵀ R: value, Σ terms², the carried errors' V, and its
    number of rows; closed (rounded) once all rows are in, as one ``rows``-term sum. Where rows
    may repeat others' roundings (:func:`multiplicity`, m per row), ``weighted`` is
    Σ_rows m·terms² and ``effective`` Σ_rows m (None: every m = 1)."""

    value: np.ndarray
    squares: np.ndarray
    carried: np.ndarray
    rows: int
    weighted: np.ndarray | None = None
    effective: int | None = None

    def __add__(self, other: object) -> Open:
        assert isinstance(other, Open)
        if self.weighted is None and other.weighted is None:
            return Open(self.value + other.value, self.squares + other.squares,
                        self.carried + other.carried, self.rows + other.rows)
        return Open(self.value + other.value, self.squares + other.squares,
                    self.carried + other.carried, self.rows + other.rows,
                    self._weighted() + other._weighted(), self._effective() + other._effective())

    def _weighted(self) -> np.ndarray:
        return self.squares if self.weighted is None else self.weighted

    def _effective(self) -> int:
        return self.rows if self.effective is None else self.effective

    def close(self) -> np.ndarray:
        """V of the gradient: its own rounding as one sum of all its rows, plus the carried.
        A row in a group of m that may repeat each other (a held input: the same values added
        again and again) may repeat their roundings — the partial sum's and the product's: each
        counts m times (Cauchy–Schwarz, as for :func:`outer`'s carried errors), n·A² +
        (n + 1)·Σ terms² becoming N·(A² + Σ terms²) + Σ m·terms², N = Σ m."""
        if self.weighted is None or self.effective is None:
            return summed(self.value, self.squares, self.rows) + self.carried
        n = self.effective
        return n * self.value * self.value + n * self.squares + self.weighted + self.carried


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, a.shape[-1])


def outer(L: np.ndarray, VL: np.ndarray, R: np.ndarray | None, VR: np.ndarray | None,
          counts: np.ndarray | None = None) -> Open:
    """Σ_rows Lᵀ R over all leading axes (R None: a bias, Σ_rows L); the errors of L and R
    (VL, VR) carried as (VL)ᵀR² + (L²)ᵀVR. ``counts`` (the leading axes' shape): each row's
    group size m (:func:`multiplicity`; None: all 1). A group's rows compute on the same input
    and, once the state has settled, the same values, so their errors may be the same error —
    the forward's in the saved values and h_{t−1} whatever the cotangent, the adjoint's own
    where it repeats too: m arbitrarily dependent errors have V ≤ m·Σ V (Hölder, then
    Cauchy–Schwarz on their standard deviations), so each row's terms count m times — the
    sum's V exactly where the m errors are equal, as at a steady state (spec/tolerances.md,
    "Gradients", "Steady states of the adjoint")."""
    L, VL = _flat(L), _flat(VL)
    ell = None if counts is None else counts.reshape(-1, 1).astype(np.float64)
    L2 = L * L
    if ell is not None:
        VL = VL * ell
    if R is None:
        if ell is None:
            return Open(L.sum(0), L2.sum(0), VL.sum(0), L.shape[0])
        return Open(L.sum(0), L2.sum(0), VL.sum(0), L.shape[0], (L2 * ell).sum(0),
                    int(ell.sum()))
    R = _flat(R)
    R2 = R * R
    L2w = L2 if ell is None else L2 * ell
    carried = VL.T @ R2 if VR is None else VL.T @ R2 + L2w.T @ _flat(VR)
    if ell is None:
        return Open(L.T @ R, L2.T @ R2, carried, L.shape[0])
    return Open(L.T @ R, L2.T @ R2, carried, L.shape[0], L2w.T @ R2, int(ell.sum()))


def through(G: np.ndarray, VG: np.ndarray, W: np.ndarray,
            W2: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """G W, an n-term sum per element (n = W's rows), and its V: the sums' own roundings and
    VG (W∘W), n·(G W)² + (n + 1)·G² (W∘W) + VG (W∘W) = n·(G W)² + ((n + 1)·G² + VG)(W∘W) —
    one GEMM (propagation.spread)."""
    W2 = W * W if W2 is None else W2
    n = W.shape[0]
    shape = (*G.shape[:-1], W.shape[1])
    G, VG = _flat(G), _flat(VG)
    value = G @ W
    V = n * value * value + spread(G, VG, W2, n)
    return value.reshape(shape), V.reshape(shape)


def _product(*factors: tuple[np.ndarray, np.ndarray],
             unit: float) -> tuple[np.ndarray, np.ndarray]:
    """Π f_k of factors (f_k, V_k): each error through the other factors, squared, plus the
    m − 1 roundings, each of which is a relative error of the result: (m − 1)·result²; and the
    products of two factors' errors, unit²·V_j·V_k through the rest (``unit``: the
    implementation's u, as V is in its units). Those are second order, negligible wherever a
    first-order term is not; where two factors vanish together they are all there is: the
    20-seed soak (seed 16) met a float64 GRU whose (1 − z) and (1 − n²) both round to 0 in
    g·(1 − z)(1 − n²), exact ≈ 10⁻⁴⁰ each, so torch's ∂w_ih of −3.1e-81 came out 0 against a
    first-order V of 0."""
    value = factors[0][0]
    for f, _ in factors[1:]:
        value = value * f
    V = (len(factors) - 1) * value * value
    for k, (_, Vk) in enumerate(factors):
        others = [f for j, (f, _) in enumerate(factors) if j != k]
        rest = functools.reduce(np.multiply, others) if others else np.ones_like(value)
        V = V + rest * rest * Vk
    for j, k in itertools.combinations(range(len(factors)), 2):
        others = [f for i, (f, _) in enumerate(factors) if i not in (j, k)]
        rest = functools.reduce(np.multiply, others) if others else np.ones_like(value)
        V = V + unit * unit * rest * rest * factors[j][1] * factors[k][1]
    return value, V


def _slope_sigmoid(s: np.ndarray, Vs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """σ' = s(1 − s) from the saved s: its error through 1 − 2s (exact first order), plus the
    two roundings (of 1 − s and of the product)."""
    d = s * (1.0 - s)
    return d, (1.0 - 2.0 * s) ** 2 * Vs + 2.0 * d * d


def _slope_tanh(t: np.ndarray, Vt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tanh' = 1 − t² from the saved t: its error through 2t, plus the roundings of t² and of
    1 − t²."""
    t2 = t * t
    q = 1.0 - t2
    return q, 4.0 * t2 * Vt + t2 * t2 + q * q


def _add(a: tuple[np.ndarray, np.ndarray],
         b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """a + b, one rounding."""
    s = a[0] + b[0]
    return s, a[1] + b[1] + s * s


class Adjoint(NamedTuple):
    """A layer's gradients and their V: ∂x (T, B, D), ∂state0 (h first), and the open weight
    gradients by PyTorch's parameter names without the layer suffix."""

    dx: np.ndarray
    Vdx: np.ndarray
    dstate: tuple[np.ndarray, ...]
    Vdstate: tuple[np.ndarray, ...]
    grads: dict[str, Open]
    #: Bounds on what flipped ReLU derivatives can add (:func:`flips`), by the names above
    #: ("dx", "dstate0", …, the weights'); None: no unit near a kink is modelled.
    flips: dict[str, np.ndarray] | None = None


def _previous(traj: Trajectory, h0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """h_{t−1} for every step, with V: h0 (given, exact), then y_1 … y_{T−1}."""
    return (np.concatenate([h0[None], traj.y[:-1]]),
            np.concatenate([np.zeros_like(h0)[None], traj.Vy[:-1]]))


def _weights(dA_ih: np.ndarray, VdA_ih: np.ndarray, x: np.ndarray, Vx: np.ndarray | None,
             dA_hh: np.ndarray, VdA_hh: np.ndarray, h: np.ndarray,
             Vh: np.ndarray, counts: np.ndarray | None) -> dict[str, Open]:
    return {"weight_ih": outer(dA_ih, VdA_ih, x, Vx, counts),
            "weight_hh": outer(dA_hh, VdA_hh, h, Vh, counts),
            "bias_ih": outer(dA_ih, VdA_ih, None, None, counts),
            "bias_hh": outer(dA_hh, VdA_hh, None, None, counts)}


#: A value and its V.
Pair = tuple[np.ndarray, np.ndarray]
#: One backward step: the state it receives (the cotangents of h_t, and c_t) → (what it yields
#: for the gradients, the state it returns, the next cotangent gy_{t−1} added).
BackwardStep = Callable[[Sequence[Pair]], tuple[Any, list[Pair]]]


def _cotangent(gy: np.ndarray, Vgy: np.ndarray | None, t: int, g: np.ndarray,
               V: np.ndarray) -> Pair:
    """The cotangent of h_t: gy_t + what step t + 1 returns, one rounding."""
    return _add((gy[t], np.zeros_like(g) if Vgy is None else Vgy[t]), (g, V))


def _next(gy: np.ndarray, Vgy: np.ndarray | None, t: int) -> Pair | None:
    """gy_{t−1} with its V, what step t's returned ∂h is added to; None at t = 0."""
    if t == 0:
        return None
    return gy[t - 1], np.zeros_like(gy[t - 1]) if Vgy is None else Vgy[t - 1]


def _returned(dh: Pair, following: Pair | None) -> Pair:
    return dh if following is None else _add(following, dh)


def multiplicity(x: np.ndarray, Vx: np.ndarray | None, within: float) -> np.ndarray | None:
    """(T, B) → the size m of each step row's group: rows (t, b) whose inputs are the same —
    exactly, anywhere in the call (a held input, a periodic one, identical batch rows), or at
    consecutive steps within their errors' bounds (propagation.repeats) — joined transitively.
    Equal inputs repeat each other's roundings; nearly equal ones nearly do, which this does
    not group (spec/tolerances.md, "Known false alarm: an input that nearly repeats"). None
    where every group has one row."""
    T, B, D = x.shape
    flat = x.reshape(T * B, D) + 0.0  # −0.0 and 0.0 compute alike
    _, group, sizes = np.unique(flat, axis=0, return_inverse=True, return_counts=True)
    group = group.reshape(T, B)
    near = repeats(x, Vx, within) & (group != np.roll(group, 1, axis=0))
    if near.any():
        t, b = np.nonzero(near)
        n = len(sizes)
        graph = coo_matrix((np.ones(len(t)), (group[t - 1, b], group[t, b])), shape=(n, n))
        _, component = connected_components(graph, directed=False)
        sizes = np.bincount(component, weights=sizes).astype(np.int64)
        group = component[group]
    counts = sizes[group]
    return counts if np.any(counts > 1) else None


class Stretches:
    """The adjoint's stretches of repeated steps (propagation.repeats: the input the previous
    step's, whatever the cotangent), run backwards as the forward's (propagation.Steady):
    within a stretch the step's own errors — the saved values'
    forward errors, which repeat, and its roundings, which repeat under a constant cotangent —
    are taken as dependent and summed in amplitude per component, R' = (√L(R) + √D)²; the
    state's V gains 2·√(L(R)·D) and carries it on. Without it a float32 LSTM at a constant
    input and cotangent (T = 3000, H = 32, forget bias +6) went 1.5× over the bound on ∂c0
    (spec/tolerances.md, "Gradients")."""

    def __init__(self, rep: np.ndarray) -> None:
        T = rep.shape[0]
        back = np.zeros_like(rep)
        back[:-1] = rep[1:]  # backward step t repeats step t + 1, the one before it
        self.steady = Steady(back)
        rows = np.asarray(rep.any(axis=1)).tolist()
        self.needed = [rows[t] or (t + 1 < T and rows[t + 1]) for t in range(T)]

    def gains(self, t: int, step: BackwardStep, state: Sequence[Pair]) -> list[np.ndarray] | None:
        """What the V of the state step t returns gains (None: nothing); ``state``: what it
        receives. The step's own V D is what it returns from a state without errors; L(R) that
        from R, less D (the step is linear in the received V)."""
        if not self.needed[t]:
            self.steady.stop()
            return None

        def returned(V: Sequence[np.ndarray]) -> list[np.ndarray]:
            return [v for _, v in step([(g, v) for (g, _), v in zip(state, V, strict=True)])[1]]

        D = returned([np.zeros_like(v) for _, v in state])
        R = self.steady.R
        LR = None if R is None else [np.maximum(a - d, 0.0) for a, d in
                                     zip(returned(R), D, strict=True)]
        return self.steady.step(t, LR, D)


def _run(T: int, stretches: Stretches, state: list[Pair],
         step_at: Callable[[int], BackwardStep]) -> tuple[list[Any], list[Pair]]:
    """The adjoint pass t = T − 1 … 0 from ``state``: each step's yield (indexed by t) and the
    state returned by step 0, with the stretches' gains added."""
    yields: list[Any] = [None] * T
    for t in reversed(range(T)):
        step = step_at(t)
        yields[t], returned = step(state)
        gains = stretches.gains(t, step, state)
        state = returned if gains is None else [(g, v + d) for (g, v), d in
                                                zip(returned, gains, strict=True)]
    return yields, state


def _lstm_step(e: LSTMTape, H: int, w_hh: np.ndarray, W2: np.ndarray, w_hr: np.ndarray | None,
               Whr2: np.ndarray | None, unit: float, following: Pair | None,
               state: Sequence[Pair]) -> tuple[Any, list[Pair]]:
    """One step of :func:`lstm`'s adjoint: (g_h, g_c) → ((g_h after w_hr, dA), (∂h + gy_{t−1},
    ∂c))."""
    (gh, Vgh), (gc, Vgc) = state
    if w_hr is not None:
        gh, Vgh = through(gh, Vgh, w_hr, Whr2)
    s, Vs = e.s, e.Vs
    ds, Vds = _slope_sigmoid(s, Vs)
    q, Vq = _slope_tanh(e.tc, e.Vtc)
    o, Vo = s[:, 3 * H:], Vs[:, 3 * H:]
    dc, Vdc = _add((gc, Vgc), _product((gh, Vgh), (o, Vo), (q, Vq), unit=unit))
    qg, Vqg = _slope_tanh(s[:, 2 * H:3 * H], Vs[:, 2 * H:3 * H])
    # The four blocks at once: left · middle · right, each a three-factor product.
    cat = np.concatenate
    left = (cat([dc, dc, dc, gh], 1), cat([Vdc, Vdc, Vdc, Vgh], 1))
    middle = (cat([s[:, 2 * H:3 * H], e.c, s[:, :H], e.tc], 1),
              cat([Vs[:, 2 * H:3 * H], e.Vc, Vs[:, :H], e.Vtc], 1))
    right = (cat([ds[:, :2 * H], qg, ds[:, 3 * H:]], 1),
             cat([Vds[:, :2 * H], Vqg, Vds[:, 3 * H:]], 1))
    dA = _product(left, middle, right, unit=unit)
    dh = through(*dA, w_hh, W2)
    gc_new = _product((dc, Vdc), (s[:, H:2 * H], Vs[:, H:2 * H]), unit=unit)
    return dA, [_returned(dh, following), gc_new]


@tol.overflow_is_infinite
def lstm(traj: Trajectory, tape: Sequence[LSTMTape], x: np.ndarray, Vx: np.ndarray | None,
         h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
         w_hr: np.ndarray | None, gy: np.ndarray, Vgy: np.ndarray | None, ghT: np.ndarray,
         gcT: np.ndarray, *, unit: float, within: float = 0.0) -> Adjoint:
    """lstm.layer's VJP (lstm.cell.projection's with ``w_hr``) as autograd evaluates it from the
    saved values (spec/lstm.md, step 5): [with a projection, g_m = g_h w_hr, ∂w_hr += g_hᵀ m]
    dc = g_c + g_h o (1 − tanh²c), dA = [dc g σ'_i, dc c σ'_f, dc i (1 − g²), g_h tanh c σ'_o],
    ∂h = dA w_hh, ∂c = dc f; ∂x = dA w_ih; ∂w_ih = Σ dAᵀ x, ∂w_hh = Σ dAᵀ h, ∂b = Σ dA.
    Stretches of repeated steps (:class:`Stretches`; ``within``: propagation.repeats') sum their
    errors in amplitude."""
    T = x.shape[0]
    H = w_ih.shape[0] // 4
    W2 = w_hh * w_hh
    Whr2 = None if w_hr is None else w_hr * w_hr
    stretches = Stretches(repeats(x, Vx, within))
    state = [_cotangent(gy, Vgy, T - 1, ghT, np.zeros_like(ghT)), (gcT, np.zeros_like(gcT))]
    GH: list[Pair] = []

    def step_at(t: int) -> BackwardStep:
        step = functools.partial(_lstm_step, tape[t], H, w_hh, W2, w_hr, Whr2, unit,
                                 _next(gy, Vgy, t))
        if w_hr is None:
            return step

        def recorded(state: Sequence[Pair]) -> tuple[Any, list[Pair]]:
            dA, returned = step(state)
            return (state[0], dA), returned
        return recorded

    yields, state = _run(T, stretches, state, step_at)
    if w_hr is not None:
        GH = [g for g, _ in yields]
        yields = [dA for _, dA in yields]
    dA, VdA = np.stack([a for a, _ in yields]), np.stack([v for _, v in yields])
    dx, Vdx = through(dA, VdA, w_ih)
    hp, Vhp = _previous(traj, h0)
    counts = multiplicity(x, Vx, within)
    grads = _weights(dA, VdA, x, Vx, dA, VdA, hp, Vhp, counts)
    if w_hr is not None:
        m = [(e.m, e.Vm) for e in tape if e.m is not None and e.Vm is not None]
        grads["weight_hr"] = outer(np.stack([g for g, _ in GH]), np.stack([v for _, v in GH]),
                                   np.stack([v for v, _ in m]), np.stack([V for _, V in m]),
                                   counts)
    (gh, Vgh), (gc, Vgc) = state
    return Adjoint(dx, Vdx, (gh, gc), (Vgh, Vgc), grads)


def _gru_step(e: GRUTape, H: int, w_hh: np.ndarray, W2: np.ndarray, hp: Pair, unit: float,
              following: Pair | None, state: Sequence[Pair]) -> tuple[Any, list[Pair]]:
    """One step of :func:`gru`'s adjoint: g_h → (([dA_r dA_z dA_n], [dA_r dA_z dA_hn]),
    (∂h + gy_{t−1},))."""
    (gh, Vgh), = state
    r, Vr, z, Vz = e.s[:, :H], e.Vs[:, :H], e.s[:, H:], e.Vs[:, H:]
    omz = (1.0 - z, Vz + (1.0 - z) ** 2)
    dA_n = _product((gh, Vgh), omz, _slope_tanh(e.n, e.Vn), unit=unit)
    h_minus_n = hp[0] - e.n
    dA_z = _product((gh, Vgh), (h_minus_n, hp[1] + e.Vn + h_minus_n ** 2),
                    _slope_sigmoid(z, Vz), unit=unit)
    dA_hn = _product(dA_n, (r, Vr), unit=unit)
    dA_r = _product(dA_n, (e.A_hn, e.VA_hn), _slope_sigmoid(r, Vr), unit=unit)
    d_ih = (np.concatenate([dA_r[0], dA_z[0], dA_n[0]], 1),
            np.concatenate([dA_r[1], dA_z[1], dA_n[1]], 1))
    d_hh = (np.concatenate([dA_r[0], dA_z[0], dA_hn[0]], 1),
            np.concatenate([dA_r[1], dA_z[1], dA_hn[1]], 1))
    dh = _add(_product((gh, Vgh), (z, Vz), unit=unit), through(*d_hh, w_hh, W2))
    return (d_ih, d_hh), [_returned(dh, following)]


@tol.overflow_is_infinite
def gru(traj: Trajectory, tape: Sequence[GRUTape], x: np.ndarray, Vx: np.ndarray | None,
        h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
        gy: np.ndarray, Vgy: np.ndarray | None, ghT: np.ndarray, *, unit: float,
        within: float = 0.0) -> Adjoint:
    """gru.layer's VJP (PyTorch's cell, spec/gru.md): dA_n = g (1 − z)(1 − n²),
    dA_z = g (h − n) σ'_z, dA_hn = dA_n r, dA_r = dA_n A_hn σ'_r; ∂h = g z + [dA_r dA_z dA_hn] w_hh,
    ∂x = [dA_r dA_z dA_n] w_ih; ∂w_ih, ∂b_ih from [dA_r dA_z dA_n], ∂w_hh, ∂b_hh from
    [dA_r dA_z dA_hn]. Stretches of repeated steps as :func:`lstm`'s."""
    T = x.shape[0]
    H = w_hh.shape[1]
    W2 = w_hh * w_hh
    hp, Vhp = _previous(traj, h0)
    stretches = Stretches(repeats(x, Vx, within))

    def step_at(t: int) -> BackwardStep:
        return functools.partial(_gru_step, tape[t], H, w_hh, W2, (hp[t], Vhp[t]), unit,
                                 _next(gy, Vgy, t))

    yields, state = _run(T, stretches, [_cotangent(gy, Vgy, T - 1, ghT, np.zeros_like(ghT))],
                         step_at)
    d_ih, Vd_ih = (np.stack([d[k] for d, _ in yields]) for k in (0, 1))
    d_hh, Vd_hh = (np.stack([d[k] for _, d in yields]) for k in (0, 1))
    dx, Vdx = through(d_ih, Vd_ih, w_ih)
    (gh, Vgh), = state
    return Adjoint(dx, Vdx, (gh,), (Vgh,), _weights(d_ih, Vd_ih, x, Vx, d_hh, Vd_hh, hp, Vhp,
                                                   multiplicity(x, Vx, within)))


def _rnn_step(h: Pair, nonlinearity: str, passes: np.ndarray | None, w_hh: np.ndarray,
              W2: np.ndarray, unit: float, following: Pair | None,
              state: Sequence[Pair]) -> tuple[Any, list[Pair]]:
    """One step of :func:`rnn`'s adjoint: g_h → (g_a, (∂h + gy_{t−1},)); ``passes``: for ReLU,
    where g_h's error reaches g_a (a > 0, or a unit near its kink)."""
    (gh, Vgh), = state
    if nonlinearity == "tanh":
        ga = _product((gh, Vgh), _slope_tanh(*h), unit=unit)
    elif nonlinearity == "sigmoid":
        ga = _product((gh, Vgh), _slope_sigmoid(*h), unit=unit)
    elif nonlinearity == "linear":
        ga = (gh, Vgh)
    else:
        assert passes is not None
        ga = (gh * (h[0] > 0), Vgh * passes)
    return ga, [_returned(through(*ga, w_hh, W2), following)]


@tol.overflow_is_infinite
def rnn(traj: Trajectory, tape: Sequence[tuple[np.ndarray, np.ndarray]], x: np.ndarray,
        Vx: np.ndarray | None, h0: np.ndarray, w_ih: np.ndarray,
        w_hh: np.ndarray, nonlinearity: str, gy: np.ndarray, Vgy: np.ndarray | None,
        ghT: np.ndarray, *, unit: float, kinks: float | None = None,
        within: float = 0.0) -> Adjoint:
    """rnn.layer's VJP: g_a = g_h φ'(a) with φ' = 1 − h² (tanh), h(1 − h) (σ), 1 (identity), the
    indicator of a > 0 (ReLU); ∂h = g_a w_hh, ∂x = g_a w_ih, ∂w_ih = Σ g_aᵀ x, ∂w_hh = Σ g_aᵀ h,
    ∂b = Σ g_a. The ReLU's indicator is exact where the computed a keeps its sign; with
    ``kinks`` (λ·(u + u₆₄), propagation.scale, the forward's), a unit whose a lies within
    kinks·√V_a of 0 may flip it: its g_h's error passes either way, and :func:`flips` bounds
    what the flips add. Without, such rows are for the caller to exclude (:func:`sure`).
    Stretches of repeated steps as :func:`lstm`'s."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    W2 = w_hh * w_hh
    hp, Vhp = _previous(traj, h0)
    unsure = np.zeros((T, B, H), dtype=bool)
    relu = nonlinearity not in ("tanh", "sigmoid", "linear")
    if relu and kinks is not None:
        unsure = np.stack([tol.near_kink(a, kinks * np.sqrt(Va)) for a, Va in tape])
    stretches = Stretches(repeats(x, Vx, within))
    GH: list[np.ndarray] = [np.empty(0)] * T

    def step_at(t: int) -> BackwardStep:
        # ReLU reads the pre-activation a; the other nonlinearities their output h_t.
        h = (tape[t][0], tape[t][1]) if relu else (traj.y[t], traj.Vy[t])
        passes = (tape[t][0] > 0) | unsure[t] if relu else None
        step = functools.partial(_rnn_step, h, nonlinearity, passes, w_hh, W2, unit,
                                 _next(gy, Vgy, t))

        def recorded(state: Sequence[Pair]) -> tuple[Any, list[Pair]]:
            GH[t] = state[0][0]
            return step(state)
        return recorded

    yields, state = _run(T, stretches, [_cotangent(gy, Vgy, T - 1, ghT, np.zeros_like(ghT))],
                         step_at)
    ga, Vga = np.stack([g for g, _ in yields]), np.stack([v for _, v in yields])
    dx, Vdx = through(ga, Vga, w_ih)
    (gh, Vgh), = state
    adjoint = Adjoint(dx, Vdx, (gh,), (Vgh,), _weights(ga, Vga, x, Vx, ga, Vga, hp, Vhp,
                                                      multiplicity(x, Vx, within)))
    if kinks is None or not unsure.any():
        return adjoint
    # The weights' terms multiply a flip's change by the forward's computed x and h_{t−1}, whose
    # errors a flip from off to on meets with no share in V (the reference's g_a is 0 there).
    x_max, h_max = (np.abs(v) if V is None else np.abs(v) + kinks * np.sqrt(V)
                    for v, V in ((x, Vx), (hp, Vhp)))
    return adjoint._replace(flips=flips(unsure, np.stack(GH), tape, x_max, h_max, w_ih, w_hh))


def flips(unsure: np.ndarray, GH: np.ndarray, tape: Sequence[tuple[np.ndarray, np.ndarray]],
          x_max: np.ndarray, h_max: np.ndarray, w_ih: np.ndarray,
          w_hh: np.ndarray) -> dict[str, np.ndarray]:
    """What ReLU units near their kink (``unsure``, (T, B, H)) can add to rnn.layer's gradients
    if the implementation's a has the other sign: at unit j of step t the indicator's flip
    changes g_a,j by ±g_h,j — not a rounding, a jump no variance models (spec/tolerances.md,
    "Gradients", "Kinks"). Each flip's change is carried back exactly, the same linear map as
    the gradients (δg_h,t−1 = δg_a,t w_hh, δg_a = δg_h · 1[a > 0], ∂x += δg_a w_ih), one row
    per flip, and the bound is Σ over flips of |its change| — the flips' signs are unknown.
    A change reaching another unsure unit may be passed or stopped there: that unit's flip
    carries |the change| with its own |g_h|. The weights' Σ_t δg_aᵀ x_t are bounded through
    Σ_t |δg_a|ᵀ x_max,t (one GEMM), x_max and h_max bounding the implementation's |x| and
    |h_{t−1}|. ``GH``: the reference's g_h per step, before the indicator."""
    T, B, D = x_max.shape
    H = w_hh.shape[1]
    Fdx, S = np.zeros((T, B, D)), np.zeros((T, B, H))
    Z, rows = np.zeros((0, H)), np.zeros(0, dtype=np.intp)  # δg_h of the flips so far
    for t in reversed(range(T)):
        b, j = np.nonzero(unsure[t])
        # |g_h| of the new flips, plus every earlier flip's change that reaches them.
        reach = np.abs(Z[:, j]) * (rows[:, None] == b[None, :])
        new = np.zeros((b.size, H))
        new[np.arange(b.size), j] = np.abs(GH[t, b, j]) + reach.sum(0)
        G = np.concatenate([Z * (tape[t][0][rows] > 0), new])
        rows = np.concatenate([rows, b])
        np.add.at(Fdx[t], rows, np.abs(G @ w_ih))
        np.add.at(S[t], rows, np.abs(G))
        Z = G @ w_hh
        alive = np.any(Z != 0, axis=1)  # a change that underflowed to 0 adds nothing further
        Z, rows = Z[alive], rows[alive]
    Fdh0 = np.zeros((B, H))
    np.add.at(Fdh0, rows, np.abs(Z))
    S2 = S.reshape(T * B, H).T
    bias = S.sum((0, 1))
    return {"dx": Fdx, "dstate0": Fdh0, "weight_ih": S2 @ x_max.reshape(T * B, D),
            "weight_hh": S2 @ h_max.reshape(T * B, H), "bias_ih": bias, "bias_hh": bias}


def sure(tape: Sequence[tuple[np.ndarray, np.ndarray]], scale_: float) -> np.ndarray:
    """Per batch row, True where no ReLU pre-activation lies within its bound (scale_·√V_a) of
    the kink at any step: there the implementation's derivative indicator is the reference's.
    Elsewhere it may flip, an error of the whole |g_h| that no rounding model covers: the row is
    left to the worst case."""
    near = np.stack([np.abs(a) <= scale_ * np.sqrt(Va) for a, Va in tape])
    return np.asarray(~near.any(axis=(0, 2)))


def squarable(*arrays: Any) -> bool:
    """Every nonzero element's square a normal float64 number (propagation.SQUARABLE)."""
    for a in arrays:
        m = np.abs(np.asarray(a, dtype=np.float64))
        if np.any((m != 0) & ((m < SQUARABLE) | (m > 1 / SQUARABLE))):
            return False
    return True


def gradient_bounds(what: str, dtype: np.dtype, names: Sequence[str], adj: Adjoint,
                    weights: Sequence[str], b_ih: np.ndarray | None, b_hh: np.ndarray | None,
                    ok: np.ndarray, worst: Sequence[tol.Bound | None] | None,
                    count: int) -> tuple[tol.Bound | None, ...]:
    """A VJP's bounds in the contract's order — (∂x, ∂state0…, ∂weights…, ∂b_ih, ∂b_hh), None
    for an absent bias — each the running worst case (``worst``, in the same order; None: not
    run, infinite) and, where that is infinite, λ·(u + u₆₄)·√V (propagation.where_vacuous), λ for
    all the call's gradient elements together. ``ok``: per batch row, whether the first-order
    model holds along the whole trajectory; the weight gradients, sums over every row, need it
    for all. ``count``: the call's roundings (propagation.roundings), for the underflow floor."""
    biases = (("bias_ih", b_ih), ("bias_hh", b_hh))
    V = [adj.Vdx, *adj.Vdstate, *(adj.grads[w].close() for w in weights),
         *(None if b is None else adj.grads[n].close() for n, b in biases)]
    keys = ["dx", *(f"dstate{k}" for k in range(len(adj.Vdstate))), *weights,
            *(n for n, _ in biases)]
    jumps = [0.0 if adj.flips is None else adj.flips[k] for k in keys]
    inputs = [ok[None, :, None], *(ok[:, None] for _ in adj.Vdstate)]
    masks = inputs + [np.asarray(ok.all())] * (len(V) - len(inputs))
    s, floor = scale(dtype, sum(v.size for v in V if v is not None)), underflow(dtype, count)
    return tuple(
        None if v is None else where_vacuous(np.inf if w is None else w.atol,
                                             np.where(m & ~np.isnan(v),
                                                      s * np.sqrt(v) + floor + f, np.inf),
                                             dtype, f"{what} {name}")
        for name, v, m, w, f in zip(names, V, masks, worst or [None] * len(V), jumps,
                                    strict=True))


def worst_case_stop(traj: Trajectory, dtype: np.dtype) -> Any:
    """The forward worst-case run's stop rule (propagation.dominates on the layer's
    probabilistic bound on y): once it stops, the worst case on the gradients, which reads every
    step's forward bounds, is infinite and is not run."""
    ok_y, ok_T = layer_linearisable(traj, dtype)
    # Without the underflow floor (count 0): a stop rule only decides how long the worst case
    # runs, and a lower probabilistic bound lets it run longer.
    prob = bounds([traj.Vy, *traj.Vstate], dtype, [ok_y, *(ok_T for _ in traj.Vstate)], 0)
    return dominates(prob[0])


def rows_ok(traj: Trajectory, dtype: np.dtype, *cotangents: Any) -> np.ndarray:
    """Per batch row, whether the first-order model holds for the gradients: the forward's
    (propagation.layer_linearisable, at every step), cotangents whose squares are normal, and
    no coherent growth the diagonal model misses (:func:`diagonal`)."""
    ok = layer_linearisable(traj, dtype)[1] & diagonal(traj)
    return ok & squarable(*cotangents)


def diagonal(traj: Trajectory) -> np.ndarray:
    """Per batch row, whether the forward's variance is the diagonal model's within
    coherence.DIAGONAL_LIMIT (propagation.Trajectory.coherent). This backward model carries no coherent
    subspace: where the forward needed one — a long memory, the tangent map contracting slowly —
    its diagonal adjoint variance is not trusted, and the gradients are left to the worst case
    (spec/tolerances.md, "Long memory")."""
    return np.ones(traj.y.shape[1], dtype=bool) if traj.coherent is None else ~traj.coherent
