"""rnn.layer, gru.layer, lstm.layer, lstm.cell.projection, sequence.module — the probabilistic
first-order error bound of a recurrent layer (spec/tolerances.md, "Bounds at production scale").

The running worst-case bound (checks/bounds/engine.py) carries every error through |W| at every
step, so over long sequences it grows like a product of |W| and becomes infinite. Here the
implementation's state s̃_t = step(s̃_{t−1}) + δ_t is linearised about the reference trajectory:

    e_T = Σ_t J_T ⋯ J_{t+1} δ_t,      J_t = the step's actual (signed) Jacobian,

and every elementary rounding inside δ_t is an independent, mean-zero error bounded by u·|its
exact result| (Higham & Mary, SIAM J. Sci. Comput. 41(5), 2019), and a library σ or tanh by
:data:`LIBRARY_ULPS`·u·(|f| + 1). Then e_{T,i} = Σ_ρ a_ρ ε_ρ and Hoeffding's inequality gives
|e_{T,i}| ≤ λ·u·√V_i with V_i = Σ_ρ a_ρ² s_ρ² (s_ρ the bound on ε_ρ / u), with probability at
least 1 − 2 exp(−λ²/2). V is carried forward per element ("diagonal variance propagation"):

- an n-term sum A (a pre-activation, a projection) in an order that does not depend on the
  values: each partial sum's mean square is at most A² + Σ terms² (over orders), so its own
  roundings add n·A² + (n + 1)·Σ terms² (the products' roundings included);
- an error passes a linear step through its coefficients squared — a sum through W∘W,
  V_A += V_in (W∘W)ᵀ, a gate product c' = f c + i g through f², c², g², i² — which treats the
  errors of different components as uncorrelated ("diagonal variance propagation"). This one
  step is a model, not a bound: the covariances it drops are those of the different rows of W
  and gates of one state; measured against the exact variance of the same linear model it is
  off by ≤ 1.1× (within the estimate's noise, spec/tolerances.md), while Minkowski's
  (Σ|a_k|√V_k)², which holds for any correlation, over-estimates 2.3× typically;
- each product, sum and difference adds its result's own rounding, value².

Where the tangent map contracts slowly (a long memory), the covariances the diagonal model drops
carry the error's growth; checks/bounds/coherence.py follows them — a narrow subspace of the
least contracting directions tests the diagonal model at every call, and where it is short the
call's V comes from random tangents of the exact linear model instead (spec/tolerances.md,
"Long memory").

The probabilistic bound holds for the implementation and for the float64 reference (whose error
is the same V at u₆₄), each with probability 1 − α/2 over the whole call: λ is set by the number
of elements compared (Bonferroni) and :data:`CALL_ALPHA`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from nnspec.checks.bounds import coherence as C
from nnspec.checks.bounds import rules as tol
from nnspec.reference.activations import sigmoid as _sigmoid

#: False-alarm probability of one call's probabilistic bound, over all its compared elements
#: together (both the implementation's and the reference's errors). 10⁴ calls per implementation
#: and run — more than the default run makes — then alarm falsely with probability ≤ 1e-4, the
#: family-wise budget of tol.statistical (checks/harness/stats.py).
CALL_ALPHA = 1e-8

#: Error of one σ or tanh call in the probabilistic model, in units of u·(|f| + 1): vectorised
#: math libraries document ≤ 4 ulp = 8u (SLEEF, MKL VML, CUDA libdevice); the cancelling formulas
#: (½(1 + tanh(x/2)), 2σ(2x) − 1) err by a few u absolutely. The products and sums around the call
#: are counted here as roundings of their own, which tol.elementwise's 16 ulp also covers.
LIBRARY_ULPS = 8.0

#: The first-order model neglects e²-terms (|σ''| ≤ 0.1, |tanh''| ≤ 0.77, the gate products):
#: relative to the bound they are of the order of the bound itself. Where a state's bound exceeds
#: this (absolute, on states of size ≤ 1), that batch row's later bounds are left infinite, so
#: the worst-case bound decides there.
LINEARISATION_LIMIT = 2.0 ** -10


def confidence(elements: int) -> float:
    """λ with 2·elements·2·exp(−λ²/2) = CALL_ALPHA: every element of the implementation's and
    of the reference's errors within λ·u·√V, with probability ≥ 1 − CALL_ALPHA."""
    return float(np.sqrt(2.0 * np.log(4.0 * max(elements, 1) / CALL_ALPHA)))


def scale(dtype: np.dtype, elements: int) -> float:
    """λ·(u + u₆₄): the bound per unit √V, for |implementation − reference| (both err)."""
    return confidence(elements) * (tol.unit_roundoff(dtype) + tol.unit_roundoff(np.float64))


def roundings(rows: int, *weights: np.ndarray | None) -> int:
    """At most how many roundings one call over ``rows`` = T·B step rows makes, forward and
    backward: each weight element enters a product and a sum per row forward and two of each
    backward (its VJP's ∂input and ∂weight), and each weight row's gate arithmetic (σ or tanh,
    the gate products, the state update, forward and back) counts as 16 more."""
    return 3 * rows * sum(2 * w.size + 16 * w.shape[0] for w in weights if w is not None)


def underflow(dtype: np.dtype, count: int) -> float:
    """The underflow floor of a probabilistic bound: every rounding of ``count`` may lose up to
    ``tiny`` absolutely, in the implementation's dtype and in the reference's float64 (rules.py,
    "underflow"). The model's V is relative — u·|result| per rounding — so without it a result
    that underflows, a float32 gradient of 1e-53 computed as 0, has a bound of 0. The loss is
    carried to the output unamplified: a value reaches the underflow range by contracting
    factors, and those that follow it are of the same kind (spec/tolerances.md, "Bounds at
    production scale")."""
    return count * (tol.underflow(dtype) + tol.underflow(np.float64))


# ---- the pieces of the model: V in units of u² --------------------------------------------------

def summed(A: np.ndarray, squares: np.ndarray, n: int) -> np.ndarray:
    """The own roundings of an n-term sum with value A and Σ terms² = squares."""
    return n * A * A + (n + 1) * squares


def library(f: np.ndarray) -> np.ndarray:
    """One tanh call: (LIBRARY_ULPS·(|f| + 1))²."""
    return (LIBRARY_ULPS * (np.abs(f) + 1.0)) ** 2


def library_sigmoid(s: np.ndarray) -> np.ndarray:
    """One σ call, s = σ(x) ∈ [0, 1]: (LIBRARY_ULPS·max(s, 1 − s) + 1)², what every σ formula
    needs (spec/tolerances.md, "Local errors"): a library's k·s, 1 − σ(−x)'s k·(1 − s) + s,
    1/(1 + e^{−x})'s s·(k·(1 − s) + 2) and ½(1 + tanh(x/2))'s (k/2)·|2s − 1| + s, k = 8."""
    return (LIBRARY_ULPS * np.maximum(s, 1.0 - s) + 1.0) ** 2


def uncorrelated(*terms: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """V of Σ_k a_k e_k for uncorrelated errors e_k with V_k: Σ a_k² V_k."""
    return sum(a * a * v for a, v in terms)  # type: ignore[return-value]


class Trajectory(NamedTuple):
    """A layer run on the reference trajectory: the outputs y (T, B, ·), the final states, and
    the variance proxies V (units of u²) of each."""

    y: np.ndarray
    state: tuple[np.ndarray, ...]
    Vy: np.ndarray
    Vstate: tuple[np.ndarray, ...]
    #: Per batch row, whether the coherent subspace raised some V above DIAGONAL_LIMIT times the
    #: diagonal model's (coherence.py): the gradients' model, diagonal only, is not trusted there.
    coherent: np.ndarray | None = None
    #: From a run (not in a returned trajectory): the V that errors correlated across steps add
    #: (:class:`Correlated`) to y and to each final state, None where there are none.
    correlated: tuple[np.ndarray, ...] | None = None


def spread(v: np.ndarray, Vv: np.ndarray | float, W2: np.ndarray, n: int) -> np.ndarray:
    """The share of the terms v_k w_jk of an n-term sum A_j = Σ_k v_k w_jk in its V, all but the
    n·A² of :func:`summed`: (n + 1)·Σ terms² plus the error V_v carried through W∘W,
    (n + 1)·v² (W∘W)ᵀ + V_v (W∘W)ᵀ = ((n + 1)·v² + V_v)(W∘W)ᵀ — one GEMM (W2 = (W∘W)ᵀ)."""
    return ((n + 1) * (v * v) + Vv) @ W2


class _Inputs(NamedTuple):
    """x w_ihᵀ + b_ih (+ b_hh) for every step, and the input terms' share in the V of the
    step's n-term sums, :func:`spread` plus (n + 1)·Σ b²: one GEMM each over all T·B rows, as
    an implementation's input projection."""

    xw: np.ndarray
    rest: np.ndarray


def _inputs(x: np.ndarray, Vx: np.ndarray | None, w_ih: np.ndarray,
            biases: Sequence[np.ndarray | None], n: int) -> _Inputs:
    T, B, D = x.shape
    flat = x.reshape(T * B, D)  # one 2-D GEMM: a 3-D matmul would be T GEMMs of B rows
    xw = flat @ w_ih.T
    rest = spread(flat, 0.0 if Vx is None else Vx.reshape(T * B, D), (w_ih * w_ih).T, n)
    for b in biases:
        if b is not None:
            xw += b
            rest += (n + 1) * (b * b)
    return _Inputs(xw.reshape(T, B, -1), rest.reshape(T, B, -1))


def _below(Vx: np.ndarray | None, w_ih: np.ndarray) -> np.ndarray | None:
    """The layer below's errors' share in the V of the input projection, V_x (w_ih∘w_ih)ᵀ, per
    step (T, B, rows of w_ih); None where the input is exact."""
    if Vx is None or not np.any(Vx):
        return None
    T, B, D = Vx.shape
    return (Vx.reshape(T * B, D) @ (w_ih * w_ih).T).reshape(T, B, -1)


#: The model squares values (V is in units of u², from terms²): a nonzero value below this or
#: above its inverse has a square that underflows or overflows float64 (found by the decay
#: checks: a linear RNN's h = 7e-190 got a bound of 0). Such a row is left to the worst case.
SQUARABLE = 1e-100


def _linearisable(V: np.ndarray, scale_: float, y: np.ndarray) -> np.ndarray:
    """Per batch row (axis 1 of (T, B, …)), True up to the first step whose bound exceeds
    LINEARISATION_LIMIT or whose outputs leave the range where their squares are normal
    numbers (SQUARABLE), False from there on."""
    a = np.abs(y)
    strange = (a != 0) & ((a < SQUARABLE) | (a > 1 / SQUARABLE))
    over = ((scale_ * np.sqrt(V) > LINEARISATION_LIMIT) | strange | ~np.isfinite(y))
    over = over.reshape(V.shape[0], V.shape[1], -1).any(-1)
    return ~np.logical_or.accumulate(over, axis=0)


def _guarded(traj: Trajectory, *arrays: np.ndarray | None) -> Trajectory:
    """``traj``, or its V made infinite (the worst case decides) where an input's square is not
    a normal number (SQUARABLE): the model would lose that input's terms. A V that overflowed
    (inf, or inf·0 = NaN at a saturated unit) is infinite too: no bound, never a silent one."""
    traj = Trajectory(traj.y, traj.state, np.where(np.isnan(traj.Vy), np.inf, traj.Vy),
                      tuple(np.where(np.isnan(v), np.inf, v) for v in traj.Vstate),
                      traj.coherent)
    for a in arrays:
        if a is None:
            continue
        m = np.abs(np.asarray(a, dtype=np.float64))
        if np.any((m != 0) & ((m < SQUARABLE) | (m > 1 / SQUARABLE))):
            return Trajectory(traj.y, traj.state, np.full(traj.Vy.shape, np.inf),
                              tuple(np.full(v.shape, np.inf) for v in traj.Vstate), traj.coherent)
    return traj


def repeats(x: np.ndarray, Vx: np.ndarray | None, within: float) -> np.ndarray:
    """(T, B): True where step t of batch row b may repeat step t − 1's roundings — its input
    equal to the previous step's, exactly, or, for an input with errors (a layer below, V_x),
    within ``within``·(√V_x of both): the implementation's two inputs may then be the same bits.
    A constant input (a padded or silent stretch) is where a layer settles to a steady state."""
    same = np.zeros(x.shape[:2], dtype=bool)
    step = np.abs(np.diff(x, axis=0))
    if Vx is None or within == 0.0:
        same[1:] = np.all(step == 0.0, axis=-1)
    else:
        sd = np.sqrt(Vx)
        same[1:] = np.all(step <= within * (sd[1:] + sd[:-1]), axis=-1)
    return same


class Steady:
    """Stretches of repeated steps (:func:`repeats`), whose roundings the model may not take as
    independent (spec/tolerances.md, "Steady states"): a stretch's errors are the same
    roundings, so they add up in amplitude. Per batch row and state component, R is the V of
    the current stretch's errors, carried by the step's linear map L as V is; a repeated step
    with its own roundings D makes R' = (√L(R) + √D)² (Minkowski: valid under any dependence)
    where the model takes L(R) + D: the difference 2·√(L(R)·D) is the step's gain
    (:class:`Correlated` carries it on). A step that does not repeat starts a new stretch,
    R = D; the earlier stretch's errors, independent of later ones, are carried on as before."""

    def __init__(self, same: np.ndarray) -> None:
        self.same = same
        self.R: tuple[np.ndarray, ...] | None = None

    def step(self, t: int, LR: Sequence[np.ndarray] | None,
             D: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Step t, with L(R) (None: no stretch) and the step's own V, D, per state part (each
        (B, ·)) → what each part's V gains."""
        rows = self.same[t][:, None]
        if LR is None:
            LR = [np.zeros_like(d) for d in D]
        gain = [np.where(rows, 2.0 * np.sqrt(lr * d), 0.0) for lr, d in zip(LR, D, strict=True)]
        self.R = tuple(np.where(rows, lr + d + g, d) for lr, d, g in zip(LR, D, gain, strict=True))
        return gain

    def stop(self) -> None:
        """A step no stretch reaches: R is dropped."""
        self.R = None


class LSTMTape(NamedTuple):
    """What an LSTM step saves for its VJP, with V: c_{t−1}, the gates [i f g o] (g in block 2),
    tanh c_t, and m (None without a projection)."""

    c: np.ndarray
    Vc: np.ndarray
    s: np.ndarray
    Vs: np.ndarray
    tc: np.ndarray
    Vtc: np.ndarray
    m: np.ndarray | None
    Vm: np.ndarray | None


class GRUTape(NamedTuple):
    """What a GRU step saves for its VJP, with V: [r z], A_hn = h W_hnᵀ + b_hn, and n."""

    s: np.ndarray
    Vs: np.ndarray
    A_hn: np.ndarray
    VA_hn: np.ndarray
    n: np.ndarray
    Vn: np.ndarray


class _LSTMStep(NamedTuple):
    """One LSTM step's values and own V that :func:`_lstm_variances` combines: the gates
    s = σ(A) [i f · o], σ' (ds), their own V; g = tanh(A_g), tanh', its own V; c_{t−1}; the
    roundings of c' = f c + i g; tanh c', tanh'; m = o tanh c'."""

    s: np.ndarray
    ds: np.ndarray
    Vs_loc: np.ndarray
    g: np.ndarray
    dg: np.ndarray
    Vg_loc: np.ndarray
    c: np.ndarray
    rounded: np.ndarray
    tc: np.ndarray
    dtc: np.ndarray
    m: np.ndarray


def _lstm_variances(p: _LSTMStep, carried: np.ndarray, Vc_in: np.ndarray,
                    own: float) -> tuple[np.ndarray, ...]:
    """(V_s, V_g, V_c', V_tanh c', V_m) of an LSTM step from the carried V of A's h-terms and
    the V of c, with the step's own roundings (own = 1) or without them (own = 0: the step's
    linear map L alone, :class:`Steady`)."""
    H = p.c.shape[1]
    i, f, o = p.s[:, :H], p.s[:, H:2 * H], p.s[:, 3 * H:]
    Vs = own * p.Vs_loc + p.ds * p.ds * carried
    Vg = own * p.Vg_loc + p.dg * p.dg * carried[:, 2 * H:3 * H]
    Vc = uncorrelated((f, Vc_in), (p.c, Vs[:, H:2 * H]), (p.g, Vs[:, :H]), (i, Vg)) + own * p.rounded
    Vtc = p.dtc * p.dtc * Vc + own * library(p.tc)
    return Vs, Vg, Vc, Vtc, uncorrelated((o, Vtc), (p.tc, Vs[:, 3 * H:])) + own * p.m * p.m


class _GRUStep(NamedTuple):
    """One GRU step's values and own V that :func:`_gru_variances` combines: [r z] = σ(A_rz),
    σ', their own V; A_hn's own V and value; A_in's V; the roundings of A_n = A_in + r A_hn;
    n = tanh(A_n), tanh'; h_{t−1}; the roundings of h' = (1 − z) n + z h."""

    s: np.ndarray
    ds: np.ndarray
    Vs_loc: np.ndarray
    VA_hn_loc: np.ndarray
    A_hn: np.ndarray
    VA_in: np.ndarray
    rounded_n: np.ndarray
    nv: np.ndarray
    dn: np.ndarray
    h: np.ndarray
    rounded: np.ndarray


def _gru_variances(p: _GRUStep, carried: np.ndarray, Vh_in: np.ndarray, own: float,
                   VA_in: np.ndarray | float = 0.0) -> tuple[np.ndarray, ...]:
    """(V_[r z], V_A_hn, V_n, V_h') of a GRU step from the carried V of the h-terms [rz | n]
    and the V of h, with the step's own roundings (own = 1) or without them (own = 0: L alone,
    :class:`Steady`); ``VA_in``: a V of A_in's besides the step's own (the layer below's)."""
    H = p.h.shape[1]
    r, z = p.s[:, :H], p.s[:, H:]
    Vs = own * p.Vs_loc + p.ds * p.ds * carried[:, :2 * H]
    VA_hn = own * p.VA_hn_loc + carried[:, 2 * H:]
    VA_n = uncorrelated((r, VA_hn), (p.A_hn, Vs[:, :H])) + own * p.VA_in + own * p.rounded_n + VA_in
    Vn = p.dn * p.dn * VA_n + own * library(p.nv)
    return Vs, VA_hn, Vn, uncorrelated((1.0 - z, Vn), (p.h - p.nv, Vs[:, H:]),
                                       (z, Vh_in)) + own * p.rounded


class Correlated:
    """The errors the model may not take as independent across steps: stretches of repeated
    steps (:class:`Steady` over :func:`repeats`) and, above another layer, the layer below's
    errors (one stretch over the whole sequence, ``below``). G, per state part, is the V their
    gains add, carried by the step's linear map L as V is: the call's V is the independent
    model's (the larger of the diagonal model's and the coherent subspace's, whose test compares
    those two alone) plus G (spec/tolerances.md, "Steady states" and "Stacked layers")."""

    def __init__(self, same: np.ndarray, below: bool) -> None:
        self.steady = Steady(same)
        # Only steps in or just before a stretch of repeats need their own V (D).
        ahead = np.zeros(len(same) + 1, dtype=bool)
        ahead[:-1] = same.any(axis=1)
        self.needed = (ahead[:-1] | ahead[1:]).tolist()
        lower = np.ones_like(same)
        lower[0] = False
        self.lower = Steady(lower) if below else None
        self.G: list[np.ndarray] | None = None

    def needs_own(self, t: int) -> bool:
        """Whether step t needs its own V (D): it is in or just before a stretch."""
        return bool(self.needed[t])

    def step(self, t: int, carry: Callable[[Sequence[np.ndarray]], list[np.ndarray]],
             own: list[np.ndarray] | None, from_below: list[np.ndarray] | None
             ) -> list[np.ndarray] | None:
        """Step t: ``carry`` applies its L to per-part V; ``own``, its own V where
        :meth:`needs_own`; ``from_below``, the layer below's errors' share in it. → G after
        the step (None: nothing yet)."""
        gains: list[np.ndarray] | None = None
        if own is not None:
            R = self.steady.R
            gains = self.steady.step(t, None if R is None else carry(R), own)
        else:
            self.steady.stop()
        if self.lower is not None and from_below is not None:
            R = self.lower.R
            more = self.lower.step(t, None if R is None else carry(R), from_below)
            gains = more if gains is None else [a + b for a, b in zip(gains, more, strict=True)]
        if self.G is not None:
            carried = carry(self.G)
            self.G = carried if gains is None else [a + b for a, b in
                                                    zip(carried, gains, strict=True)]
        else:
            self.G = gains
        return self.G


def _lstm_carry(p: _LSTMStep, Whh2: np.ndarray, Whr2: np.ndarray | None,
                parts: Sequence[np.ndarray]) -> list[np.ndarray]:
    """L of an LSTM step on the V of (h, c): through W_hh∘W_hh, the gates and the update (and
    the projection)."""
    L = _lstm_variances(p, parts[0] @ Whh2, parts[1], 0.0)
    return [L[4] if Whr2 is None else L[4] @ Whr2, L[2]]


def _gru_carry(p: _GRUStep, W2: np.ndarray, parts: Sequence[np.ndarray]) -> list[np.ndarray]:
    """L of a GRU step on the V of h."""
    return [_gru_variances(p, parts[0] @ W2, parts[0], 0.0)[3]]


def _rnn_carry(slope: np.ndarray, Whh2: np.ndarray,
               parts: Sequence[np.ndarray]) -> list[np.ndarray]:
    """L of an RNN step on the V of h: φ'² (V_h (W∘W)ᵀ)."""
    return [slope * slope * (parts[0] @ Whh2)]


# ---- the families ---------------------------------------------------------------------------

def probe_inflation(K: int, elements: float = 1e10) -> float:
    """(x_K/λ)²: what makes λ·√(inflation·V̂) the probes' own bound. For K Gaussian tangents'
    mean square V̂ (χ²_K·V/K, independent of the implementation's error e, sub-Gaussian with
    proxy V), P(|e| > x√V̂) ≤ E 2exp(−x²V̂/2V) = 2(1 + x²/K)^(−K/2) (χ²'s moment generating
    function); Bonferroni as :func:`confidence` gives x² = K((4N/α)^(2/K) − 1). The ratio to λ²
    grows with N, so it is taken at ``elements`` = 10¹⁰, more than any call holds (1.81 at
    N = 4·10⁶, 2.10 at 10¹⁰ for K = 64)."""
    t = np.log(4.0 * elements / CALL_ALPHA)
    return float(K * np.expm1(2.0 * t / K) / (2.0 * t))


def _coherent(run: Callable[[Any, list[Any] | None], Trajectory], rows: int, states: int,
              V0: np.ndarray | None, tape: list[Any] | None) -> Trajectory:
    """``run(tracker, tape)`` → a trajectory whose V are pairs (the larger of the diagonal model's
    and ``tracker``'s, the diagonal model's) (coherence.py). First a coherence.Subspace of WIDTH
    directions: where it is the whole state, its V is exact and decides; where it stays within
    GAIN of the diagonal model's everywhere, the larger of the two decides; otherwise the call is
    run again with coherence.Probes; to the V chosen the run's correlated errors' V is added
    (:class:`Correlated`). The last run's steps are appended to ``tape``."""
    steps: list[Any] | None = None if tape is None else []
    sub = C.Subspace(rows, states, C.WIDTH, V0)
    traj = run(sub, steps)
    pairs = [traj.Vy, *traj.Vstate]
    if not sub.whole and not all(np.all(p[0] <= C.GAIN * p[1]) for p in pairs):
        steps = None if tape is None else []
        traj = run(C.Probes(rows, states, C.PROBES, probe_inflation(C.PROBES), V0), steps)
        pairs = [traj.Vy, *traj.Vstate]
    V = [p[0] for p in pairs]
    if traj.correlated is not None:
        # Added after the test above, which compares the two estimates of the independent
        # model alone: the correlated errors' V is neither's.
        V = [v + g for v, g in zip(V, traj.correlated, strict=True)]
    if tape is not None and steps is not None:
        tape.extend(steps)
    return Trajectory(traj.y, traj.state, V[0], tuple(V[1:]), traj.coherent)


def _start(h0: np.ndarray, Vh0: np.ndarray | None,
           T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A run's start: h and its V (zero: exact), the outputs y (T, B, H), their V pairs
    (2, T, B, H) (_pair) and, per batch row, whether the second exceeded DIAGONAL_LIMIT."""
    B, H = h0.shape
    return (h0, np.zeros_like(h0) if Vh0 is None else Vh0, np.empty((T, B, H)),
            np.empty((2, T, B, H)), np.zeros(B, dtype=bool))


def _pair(V: np.ndarray, coherent: np.ndarray, grew: np.ndarray, excess: float) -> np.ndarray:
    """(the larger of the diagonal model's V and the subspace's or the probes', V) stacked on
    axis 0 (coherence.py: both estimate the same exact variance); ``grew`` (per batch row)
    records where the second exceeds DIAGONAL_LIMIT·V by more than the tracker's ``excess``
    (its inflation and noise, coherence.NOISE)."""
    grew |= np.any(coherent > C.DIAGONAL_LIMIT * excess * V, axis=-1)
    return np.stack([np.maximum(V, coherent), V])


@tol.overflow_is_infinite
def lstm(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
         b_ih: np.ndarray | None, b_hh: np.ndarray | None, w_hr: np.ndarray | None = None,
         Vx: np.ndarray | None = None, Vh0: np.ndarray | None = None,
         Vc0: np.ndarray | None = None, tape: list[Any] | None = None, *,
         within: float = 0.0) -> Trajectory:
    """lstm.layer (lstm.cell.projection with ``w_hr``): A = x w_ihᵀ + h w_hhᵀ + b (n = D + H + 2),
    i, f, o = σ, g = tanh of its blocks, c' = f c + i g, m = o tanh c', h' = m (or m w_hrᵀ,
    n = H). Vx: the input's V (a layer below), Vh0, Vc0 the initial state's (None: exact).
    ``tape``, a list, receives every step's :class:`LSTMTape` (the gradients' bound needs them).
    V is the diagonal model's plus the coherent subspace's (checks/bounds/coherence.py), plus
    that of the errors correlated across steps (:class:`Correlated`: stretches of repeated
    steps, ``within`` the bound per unit √V of x's errors (:func:`repeats`), and V_x's)."""
    T, B, D = x.shape
    H = w_hh.shape[1] if w_hr is None else w_ih.shape[0] // 4
    n = D + w_hh.shape[1] + 2
    inp = _inputs(x, Vx, w_ih, (b_ih, b_hh), n)
    Whh2 = (w_hh * w_hh).T
    Whr2 = None if w_hr is None else (w_hr * w_hr).T
    h0, c0 = np.asarray(h0, dtype=np.float64), np.asarray(c0, dtype=np.float64)
    Ph = h0.shape[1]
    hp, cp = slice(0, Ph), slice(Ph, Ph + H)

    def to_h(v: np.ndarray) -> np.ndarray:
        return v if w_hr is None else v @ w_hr.T

    def from_h(Q: np.ndarray) -> np.ndarray:
        return Q[:, :, hp] if w_hr is None else Q[:, :, hp] @ w_hr

    def state(vh: np.ndarray, vc: np.ndarray | None = None) -> np.ndarray:
        return np.concatenate([vh, np.zeros((*vh.shape[:2], H)) if vc is None else vc], -1)

    same = repeats(x, Vx, within)
    below = _below(Vx, w_ih)

    def run(sub: Any, steps: list[Any] | None) -> Trajectory:
        c = c0
        h, Vh, ys, Vys, grew = _start(h0, Vh0, T)
        Vc = np.zeros_like(c) if Vc0 is None else Vc0
        corr = Correlated(same, below is not None)
        Gy = np.zeros((T, B, Ph)) if same.any() or below is not None else None
        G: list[np.ndarray] | None = None
        for t in range(T):
            tangents = sub.tangents()
            qh, qc = tangents[:, :, hp], tangents[:, :, cp]
            A = inp.xw[t] + h @ w_hh.T
            # The terms' squares and the carried V through W∘W in one GEMM, apart: the step's
            # own roundings (local) and the carried error are both needed.
            sq = np.concatenate([h * h, Vh]) @ Whh2
            VA_loc = n * A * A + inp.rest[t] + (n + 1) * sq[:B]
            s = _sigmoid(A)
            ds = s * (1.0 - s)
            Vs_loc = ds * ds * VA_loc + library_sigmoid(s)
            i, f, o = s[:, :H], s[:, H:2 * H], s[:, 3 * H:]
            g = np.tanh(A[:, 2 * H:3 * H])
            dg = 1.0 - g * g
            Vg_loc = dg * dg * VA_loc[:, 2 * H:3 * H] + library(g)
            fc, ig = f * c, i * g
            c_new = fc + ig
            c_prev, Vc_prev = c, Vc
            rounded = fc * fc + ig * ig + c_new * c_new
            tc = np.tanh(c_new)
            dtc = 1.0 - tc * tc
            m = o * tc

            step = _LSTMStep(s, ds, Vs_loc, g, dg, Vg_loc, c, rounded, tc, dtc, m)

            Vs, Vg, Vc, Vtc, Vm = _lstm_variances(step, sq[B:], Vc, 1.0)
            Dc = uncorrelated((c, Vs_loc[:, H:2 * H]), (g, Vs_loc[:, :H]), (i, Vg_loc)) + rounded
            # δm = o·tanh'(c')·δc' + η: the one correlation inside a step, kept exactly.
            a = o * dtc
            D_eta = o * o * library(tc) + tc * tc * Vs_loc[:, 3 * H:] + m * m
            k = tangents.shape[1]
            dA = (qh.reshape(-1, Ph) @ w_hh.T).reshape(B, k, 4 * H)
            dgate = ds[:, None, :] * dA
            yc = (f[:, None] * qc + c[:, None] * dgate[..., H:2 * H] + g[:, None] * dgate[..., :H]
                  + (i * dg)[:, None] * dA[..., 2 * H:3 * H])
            ym = a[:, None] * yc + tc[:, None] * dgate[..., 3 * H:]
            yh = ym if w_hr is None else (ym.reshape(-1, H) @ w_hr.T).reshape(B, k, Ph)
            sub.rotate(np.concatenate([yh, yc], -1))
            # The step's own errors: δc' (Dc), reaching h through a = o·tanh'(c'); η (D_eta),
            # m's own; with a projection, the projection's sum (D_p). Their effects on the state
            # (h, c), and the transposes (a state direction's coordinates per source).
            sub.add(Dc, lambda v, a=a: state(to_h(a[:, None, :] * v), v),
                    lambda Q, a=a: a[:, None, :] * from_h(Q) + Q[:, :, cp])
            sub.add(D_eta, lambda v: state(to_h(v)), from_h)
            if w_hr is None:
                h, Vh = m, Vm
            else:
                assert Whr2 is not None
                h = m @ w_hr.T
                sqm = np.concatenate([m * m, Vm]) @ Whr2
                D_p = H * h * h + (H + 1) * sqm[:B]
                Vh = D_p + sqm[B:]
                sub.add(D_p, state, lambda Q: Q[:, :, hp])
            own = None
            if corr.needs_own(t):
                mine = _lstm_variances(step, np.zeros_like(A), np.zeros_like(c), 1.0)
                own = [mine[4] if w_hr is None else D_p + mine[4] @ Whr2, mine[2]]
            from_below = None
            if below is not None:
                theirs = _lstm_variances(step, below[t], np.zeros_like(c), 0.0)
                from_below = [theirs[4] if Whr2 is None else theirs[4] @ Whr2, theirs[2]]
            G = corr.step(t, partial(_lstm_carry, step, Whh2, Whr2), own, from_below)
            if Gy is not None and G is not None:
                Gy[t] = G[0]
            c = c_new
            ys[t], Vys[:, t] = h, _pair(Vh, sub.variance(hp), grew, sub.excess)
            if steps is not None:
                s[:, 2 * H:3 * H], Vs[:, 2 * H:3 * H] = g, Vg  # block 2's σ is unused: keep g
                steps.append(LSTMTape(c_prev, Vc_prev, s, Vs, tc, Vtc,
                                      *((None, None) if w_hr is None else (m, Vm))))
        return Trajectory(ys, (h, c), Vys, (Vys[:, -1], _pair(Vc, sub.variance(cp), grew, sub.excess)),
                          grew, None if Gy is None or G is None else (Gy, Gy[-1], G[1]))

    V0 = None if Vh0 is None and Vc0 is None else np.concatenate(
        [np.zeros_like(h0) if Vh0 is None else Vh0, np.zeros_like(c0) if Vc0 is None else Vc0], 1)
    traj = _coherent(run, B, Ph + H, V0, tape)
    return _guarded(traj, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)


@tol.overflow_is_infinite
def gru(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
        b_ih: np.ndarray | None, b_hh: np.ndarray | None, Vx: np.ndarray | None = None,
        Vh0: np.ndarray | None = None, tape: list[Any] | None = None, *,
        within: float = 0.0) -> Trajectory:
    """gru.layer (PyTorch's cell): r, z = σ(x W_{r,z}ᵀ + h W_{r,z}ᵀ + b) (n = D + H + 2),
    A_in = x W_inᵀ + b_in (n = D + 1), A_hn = h W_hnᵀ + b_hn (n = H + 1), n = tanh(A_in + r A_hn),
    h' = (1 − z) n + z h. ``tape``, a list, receives every step's :class:`GRUTape`. V is the
    diagonal model's plus the coherent subspace's (checks/bounds/coherence.py), plus that of
    the errors correlated across steps (:class:`Correlated`; ``within``: as :func:`lstm`'s)."""
    T, B, D = x.shape
    H = w_hh.shape[1]

    def rows(b: np.ndarray | None, k: slice) -> np.ndarray | None:
        return None if b is None else b[k]

    rz, nn = slice(0, 2 * H), slice(2 * H, 3 * H)
    n_rz = D + H + 2
    inp_rz = _inputs(x, Vx, w_ih[rz], (rows(b_ih, rz), rows(b_hh, rz)), n_rz)
    inp_n = _inputs(x, Vx, w_ih[nn], (rows(b_ih, nn),), D + 1)
    W2 = (w_hh * w_hh).T
    b_hn = np.zeros(H) if b_hh is None else b_hh[nn]
    h0 = np.asarray(h0, dtype=np.float64)

    same = repeats(x, Vx, within)
    below_rz, below_n = _below(Vx, w_ih[rz]), _below(Vx, w_ih[nn])

    def run(sub: Any, steps: list[Any] | None) -> Trajectory:
        h, Vh, ys, Vys, grew = _start(h0, Vh0, T)
        corr = Correlated(same, below_rz is not None)
        Gy = np.zeros((T, B, H)) if same.any() or below_rz is not None else None
        G: list[np.ndarray] | None = None
        for t in range(T):
            qh = sub.tangents()
            hw = h @ w_hh.T
            sq = np.concatenate([h * h, Vh]) @ W2
            A_rz = inp_rz.xw[t] + hw[:, rz]
            VA_rz_loc = n_rz * A_rz * A_rz + inp_rz.rest[t] + (n_rz + 1) * sq[:B, rz]
            s = _sigmoid(A_rz)
            ds = s * (1.0 - s)
            Vs_loc = ds * ds * VA_rz_loc + library_sigmoid(s)
            r, z = s[:, :H], s[:, H:]
            A_in = inp_n.xw[t]
            VA_in = (D + 1) * A_in * A_in + inp_n.rest[t]
            A_hn = hw[:, nn] + b_hn
            VA_hn_loc = (H + 1) * A_hn * A_hn + (H + 2) * (sq[:B, nn] + b_hn * b_hn)
            P = r * A_hn
            A_n = A_in + P
            rounded_n = P * P + A_n * A_n
            nv = np.tanh(A_n)
            dn = 1.0 - nv * nv
            keep, take = z * h, (1.0 - z) * nv
            h_new = take + keep
            rounded = (nv * (1.0 - z)) ** 2 + take * take + keep * keep + h_new * h_new

            step = _GRUStep(s, ds, Vs_loc, VA_hn_loc, A_hn, VA_in, rounded_n, nv, dn, h,
                            rounded)
            Vs, VA_hn, Vn, Vh_new = _gru_variances(step, sq[B:], Vh, 1.0)
            # The step's own: variances(0, 0, 1)[3], without its multiplications by zero.
            VA_n_loc = uncorrelated((r, VA_hn_loc), (A_hn, Vs_loc[:, :H])) + VA_in + rounded_n
            Vn_loc = dn * dn * VA_n_loc + library(nv)
            D_h = uncorrelated((1.0 - z, Vn_loc), (h - nv, Vs_loc[:, H:])) + rounded
            dhw = (qh.reshape(-1, H) @ w_hh.T).reshape(B, qh.shape[1], 3 * H)
            dgate = ds[:, None, :] * dhw[..., rz]
            dA_n = r[:, None] * dhw[..., nn] + A_hn[:, None] * dgate[..., :H]
            sub.rotate((1.0 - z)[:, None] * dn[:, None] * dA_n
                       + (h - nv)[:, None] * dgate[..., H:] + z[:, None] * qh)
            sub.add(D_h, C.identity, C.identity)
            from_below = None
            if below_rz is not None and below_n is not None:
                from_below = [_gru_variances(step, np.concatenate([below_rz[t], np.zeros_like(h)], 1),
                                             np.zeros_like(h), 0.0, below_n[t])[3]]
            G = corr.step(t, partial(_gru_carry, step, W2), [D_h] if corr.needs_own(t) else None,
                          from_below)
            if Gy is not None and G is not None:
                Gy[t] = G[0]
            h, Vh = h_new, Vh_new
            ys[t], Vys[:, t] = h, _pair(Vh, sub.variance(slice(None)), grew, sub.excess)
            if steps is not None:
                steps.append(GRUTape(s, Vs, A_hn, VA_hn, nv, Vn))
        return Trajectory(ys, (h,), Vys, (Vys[:, -1],), grew,
                          None if Gy is None or G is None else (Gy, Gy[-1]))

    traj = _coherent(run, B, H, Vh0, tape)
    return _guarded(traj, x, h0, w_ih, w_hh, b_ih, b_hh)


@tol.overflow_is_infinite
def rnn(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
        b_ih: np.ndarray | None, b_hh: np.ndarray | None, nonlinearity: str, scale_: float,
        Vx: np.ndarray | None = None, Vh0: np.ndarray | None = None,
        tape: list[Any] | None = None, *, within: float = 0.0) -> Trajectory:
    """rnn.layer: a = x w_ihᵀ + h w_hhᵀ + b (n = D + H + 2), h' = φ(a) for tanh, σ, the identity
    or ReLU. ReLU's kink is not differentiable: where a > −scale_·√V_a (the computed a may lie
    above 0) its error passes whole, |ReLU(a + e) − ReLU(a)| ≤ |e|; elsewhere ReLU returns 0
    exactly. ``tape``, a list, receives every step's (a, V_a). V is the diagonal model's plus
    the coherent subspace's (checks/bounds/coherence.py), plus that of the errors correlated
    across steps (:class:`Correlated`; ``within``: as :func:`lstm`'s)."""
    if nonlinearity not in ("tanh", "sigmoid", "linear", "relu"):
        raise ValueError(f"nonlinearity must be tanh, relu, sigmoid or linear, got {nonlinearity!r}")
    T, B, D = x.shape
    H = w_hh.shape[1]
    n = D + H + 2
    inp = _inputs(x, Vx, w_ih, (b_ih, b_hh), n)
    Whh2 = (w_hh * w_hh).T
    h0 = np.asarray(h0, dtype=np.float64)

    same = repeats(x, Vx, within)
    below = _below(Vx, w_ih)

    def run(sub: Any, steps: list[Any] | None) -> Trajectory:
        h, Vh, ys, Vys, grew = _start(h0, Vh0, T)
        corr = Correlated(same, below is not None)
        Gy = np.zeros((T, B, H)) if same.any() or below is not None else None
        G: list[np.ndarray] | None = None
        for t in range(T):
            qh = sub.tangents()
            a = inp.xw[t] + h @ w_hh.T
            sq = np.concatenate([h * h, Vh]) @ Whh2
            Va_loc = n * a * a + inp.rest[t] + (n + 1) * sq[:B]
            Va = Va_loc + sq[B:]
            if nonlinearity == "tanh":
                h = np.tanh(a)
                slope, own = 1.0 - h * h, library(h)
            elif nonlinearity == "sigmoid":
                h = _sigmoid(a)
                slope, own = h * (1.0 - h), library_sigmoid(h)
            elif nonlinearity == "linear":
                h, slope, own = a, np.ones_like(a), np.zeros_like(a)
            else:
                h = np.maximum(a, 0.0)
                slope, own = (a > -scale_ * np.sqrt(Va)).astype(np.float64), np.zeros_like(a)
            Vh = slope * slope * Va + own
            D_h = slope * slope * Va_loc + own
            sub.rotate(slope[:, None] * (qh.reshape(-1, H) @ w_hh.T).reshape(B, qh.shape[1], H))
            sub.add(D_h, C.identity, C.identity)
            G = corr.step(t, partial(_rnn_carry, slope, Whh2), [D_h] if corr.needs_own(t) else None,
                          None if below is None else [slope * slope * below[t]])
            if Gy is not None and G is not None:
                Gy[t] = G[0]
            ys[t], Vys[:, t] = h, _pair(Vh, sub.variance(slice(None)), grew, sub.excess)
            if steps is not None:
                steps.append((a, Va))
        return Trajectory(ys, (h,), Vys, (Vys[:, -1],), grew,
                          None if Gy is None or G is None else (Gy, Gy[-1]))

    traj = _coherent(run, B, H, Vh0, tape)
    return _guarded(traj, x, h0, w_ih, w_hh, b_ih, b_hh)


# ---- the bound: the smaller of the worst case and the probabilistic one -------------------------

def bounds(V: Sequence[np.ndarray], dtype: np.dtype, linear: Sequence[np.ndarray],
           count: int) -> list[np.ndarray]:
    """λ·(u + u₆₄)·√V per output, λ for all their elements together, plus the :func:`underflow`
    floor of ``count`` roundings; infinite where ``linear`` (broadcast over the trailing axes)
    is False."""
    s, floor = scale(dtype, sum(v.size for v in V)), underflow(dtype, count)
    return [np.where(ok.reshape(ok.shape + (1,) * (v.ndim - ok.ndim)), s * np.sqrt(v) + floor,
                     np.inf)
            for v, ok in zip(V, linear, strict=True)]


def layer_linearisable(traj: Trajectory, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(per step and batch row, for y; per batch row, for the final states) where the first-order
    model holds: every output's bound up to that step within LINEARISATION_LIMIT."""
    ok = _linearisable(traj.Vy, scale(dtype, traj.Vy.size + sum(v.size for v in traj.Vstate)),
                       traj.y)
    return ok, ok[-1]


def dominates(prob_y: np.ndarray) -> Callable[[int, tuple[np.ndarray, ...]], bool]:
    """A stop rule for the worst-case run (checks/bounds/engine.py, ``run``): stop after step t
    once its worst-case bound on h_t is at least the probabilistic one everywhere and the
    probabilistic bound stays finite to the last step (or the worst case is already infinite).
    Its later bounds only grow from there (barring saturated gates), so the minimum of the two
    is the probabilistic bound: running on would cost time and change no verdict's validity.
    Where the probabilistic bound later leaves the first-order model's range (infinite), the
    worst case runs on: stopped, it would leave those steps with no bound at all (a linear
    ReLU layer growing to h ≈ 10³ had none after step 165 of 3000, its worst case finite)."""
    T = prob_y.shape[0]
    finite = np.isfinite(prob_y).reshape(T, -1).all(axis=1)
    to_end = np.logical_and.accumulate(finite[::-1])[::-1].tolist()

    def stop(t: int, errors: tuple[np.ndarray, ...]) -> bool:
        return bool((to_end[t] or not np.isfinite(errors[0]).any())
                    and np.all(errors[0] >= prob_y[t]))
    return stop


#: run_worst(stop) → per step run, the worst-case errors of the step's states (h first).
WorstRun = Callable[[Callable[[int, tuple[np.ndarray, ...]], bool]], list[tuple[np.ndarray, ...]]]


def layer_bounds(traj: Trajectory, dtype: np.dtype, run_worst: WorstRun, what: str,
                 names: Sequence[str], count: int) -> tuple[tol.Bound, ...]:
    """Bounds on a layer's (y, final states…): the probabilistic bound of ``traj`` (``count``
    roundings, :func:`roundings`), and the running worst-case bound where it is tighter
    (infinite after the worst-case run stops)."""
    ok_y, ok_T = layer_linearisable(traj, dtype)
    prob = bounds([traj.Vy, *traj.Vstate], dtype, [ok_y, *(ok_T for _ in traj.Vstate)], count)
    worst = run_worst(dominates(prob[0]))
    worst_y = np.full(traj.y.shape, np.inf)
    for t, errors in enumerate(worst):
        worst_y[t] = errors[0]
    finished = len(worst) == traj.y.shape[0]
    worst_state = [worst[-1][k] if finished else np.full(v.shape, np.inf)
                   for k, v in enumerate(traj.Vstate)]
    return tuple(tighter(w, p, dtype, f"{what} {name}")
                 for w, p, name in zip([worst_y, *worst_state], prob, names, strict=True))


def tighter(worst: np.ndarray | float, probabilistic: np.ndarray, dtype: np.dtype, what: str) -> tol.Bound:
    """The elementwise minimum of the running worst-case bound and the probabilistic one: both
    hold (the second with probability ≥ 1 − CALL_ALPHA), so their minimum does."""
    u = tol.unit_roundoff(dtype)
    return tol.Bound(np.minimum(worst, probabilistic),
                     f"{what}: min(running worst-case bound, first-order probabilistic bound "
                     f"λ·(u + u₆₄)·√V, false alarm ≤ {CALL_ALPHA:g} per call), "
                     f"u={u:.3g} ({np.dtype(dtype)})", u)


def where_vacuous(worst: np.ndarray | float, probabilistic: np.ndarray, dtype: np.dtype,
                  what: str) -> tol.Bound:
    """The running worst-case bound, and the probabilistic one only where the worst case is
    infinite (a gradient through a long sequence). The gradients' model (backpropagation.py) is
    not trusted where the rigorous bound still speaks: the 20-seed soak found it below the error
    of torch's gradients of 1e-40 through saturated gates (T = 1) — underflow, which
    :func:`underflow`'s floor now covers; the restriction stays until a soak shows the elementwise
    minimum green with the floor (spec/tolerances.md, "Gradients")."""
    u = tol.unit_roundoff(dtype)
    worst_a = np.broadcast_to(np.asarray(worst, dtype=np.float64), np.shape(probabilistic))
    return tol.Bound(np.where(np.isfinite(worst_a), worst_a, probabilistic),
                     f"{what}: running worst-case bound, where infinite the first-order "
                     f"probabilistic bound λ·(u + u₆₄)·√V (false alarm ≤ {CALL_ALPHA:g} per "
                     f"call), u={u:.3g} ({np.dtype(dtype)})", u)
