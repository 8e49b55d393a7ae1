"""Running error bounds: how far an implementation's values may drift from the reference's, carried
step by step through a formula (spec/tolerances.md, "Composing bounds").

A :class:`Computed` is a quantity as an implementation computing in DTYPE obtains it: the exact
value (the reference's, float64) and an elementwise bound on the implementation's error. Each
function below is one rule of spec/tolerances.md applied to Computed arguments — tol.accumulated
for sums and products, the mean value theorem plus tol.elementwise for σ and tanh — so evaluating a
formula step by step on Computed values bounds the implementation's error on the whole of it:

- the LSTM cell, forward and backward (spec/lstm.md "Tolerance"), and over time (lstm.layer);
- the Elman RNN's steps with inexact inputs (spec/sequence.md), the GRU through reference/gru.py's
  :class:`ErrorBounded` (spec/gru.md), so that layers of every mode stack: the error of layer l's
  output is the input error of layer l + 1 (:func:`rnn_module`, spec/sequence.md).

Weight gradients are sums over every step and every sample; :class:`Accumulation` keeps such a
sum open until all its terms are in, so its rounding is γ_n of *all* n terms, the bound for any
summation order (per-step partial sums would assume one order).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from nnspec.checks.bounds import rules as tol
from nnspec.reference import gru as gru_ref
from nnspec.reference.activations import sigmoid as _sigmoid
from nnspec.reference.sequence import GATES, time_major

#: Bounds of long or deep runs on large values may overflow float64: they become inf (no bound),
#: never a warning or NaN.
_overflow_is_infinite = np.errstate(over="ignore", invalid="ignore")


@dataclass(frozen=True)
class Computed:
    """A value and a bound on |implementation − value|, both float64 arrays of one shape."""

    value: np.ndarray
    error: np.ndarray

    def __post_init__(self) -> None:
        # A bound that overflowed (inf · 0 = NaN) is no bound at all: infinite, not NaN, which
        # every comparison would silently pass as well but which no longer hides as a number.
        if np.isnan(self.error).any():
            object.__setattr__(self, "error", np.where(np.isnan(self.error), np.inf, self.error))

    def __getitem__(self, index: Any) -> Computed:
        return Computed(self.value[index], self.error[index])

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def magnitude(self) -> np.ndarray:
        """The largest |value| the implementation may hold: |value| + error."""
        return np.abs(self.value) + self.error


def exact(value: Any) -> Computed:
    """An input the implementation holds exactly (already rounded to its DTYPE)."""
    value = np.asarray(value, dtype=np.float64)
    return Computed(value, np.zeros_like(value))


@_overflow_is_infinite
def rounding(magnitude: np.ndarray, n: int, dtype: np.dtype) -> np.ndarray:
    """tol.accumulated's bound on an n-term sum whose terms have Σ|terms| = magnitude."""
    return tol.accumulated(magnitude, n, dtype).atol


def as_bound(c: Computed, what: str, dtype: np.dtype | type) -> tol.Bound:
    """The final bound, with a summary rule (the composed one is the whole derivation)."""
    u = tol.unit_roundoff(dtype)
    return tol.Bound(c.error, f"{what}: running error bound (tol.accumulated on every sum and "
                              f"product, mean value theorem + tol.elementwise on σ and tanh), "
                              f"u={u:.3g} ({np.dtype(dtype)})", u)


# ---- the rules -------------------------------------------------------------------------------

@_overflow_is_infinite
def product(*factors: Computed, dtype: np.dtype) -> Computed:
    """Π v_k from factors with errors δ_k: the exact telescoped error
    Σ_k δ_k·Π_{l<k}(|v_l|+δ_l)·Π_{l>k}|v_l|, plus the m − 1 roundings of the product."""
    value = functools.reduce(np.multiply, (f.value for f in factors))
    error = np.zeros_like(value)
    before = np.ones_like(value)
    for k, f in enumerate(factors):
        after = functools.reduce(np.multiply, (np.abs(g.value) for g in factors[k + 1:]), 1.0)
        error = error + f.error * before * after
        before = before * f.magnitude
    if len(factors) > 1:
        error = error + rounding(before, len(factors) - 1, dtype)
    return Computed(value, error)


@_overflow_is_infinite
def total(*terms: Computed, dtype: np.dtype) -> Computed:
    """Σ v_k from terms with errors δ_k: Σ δ_k plus the n − 1 roundings of the sum."""
    value = functools.reduce(np.add, (t.value for t in terms))
    error = functools.reduce(np.add, (t.error for t in terms))
    if len(terms) > 1:
        error = error + rounding(functools.reduce(np.add, (t.magnitude for t in terms)),
                                 len(terms) - 1, dtype)
    return Computed(value, error)


def one_minus(a: Computed, dtype: np.dtype) -> Computed:
    return total(exact(np.ones_like(a.value)), Computed(-a.value, a.error), dtype=dtype)


def _reach(a: Computed) -> np.ndarray:
    """The point of [a − δ, a + δ] closest to 0, in absolute value: where |σ'| and |tanh'|, which
    decrease in |t|, are largest on the interval the computed pre-activation lies in."""
    return np.maximum(np.abs(a.value) - a.error, 0.0)


@_overflow_is_infinite
def sigmoid(a: Computed, dtype: np.dtype) -> Computed:
    """σ(a): the input error times max|σ'| on the reachable interval (≤ 1/4, σ'(t) =
    e^(−t)/(1 + e^(−t))² at t ≥ 0, no overflow), plus the library's tol.elementwise."""
    value = _sigmoid(a.value)
    e = np.exp(-_reach(a))
    return Computed(value, e / (1 + e) ** 2 * a.error + tol.elementwise(value, dtype).atol)


@_overflow_is_infinite
def tanh(a: Computed, dtype: np.dtype) -> Computed:
    """tanh(a): the input error times max|tanh'| on the reachable interval (≤ 1,
    tanh'(t) = 4e^(−2t)/(1 + e^(−2t))²), plus the library's tol.elementwise."""
    value = np.tanh(a.value)
    e = np.exp(-2 * _reach(a))
    return Computed(value, 4 * e / (1 + e) ** 2 * a.error + tol.elementwise(value, dtype).atol)


@_overflow_is_infinite
def relu(a: Computed) -> Computed:
    """max(a, 0), exact: the input error passes where the interval reaches above 0 (elsewhere
    the computed result is 0 too)."""
    return Computed(np.maximum(a.value, 0.0), a.error * (a.value + a.error > 0))


@_overflow_is_infinite
def matmul(a: Computed, W: np.ndarray, dtype: np.dtype) -> Computed:
    """a W for an exact W: a's error carried by |W|, plus the n-term dot products' roundings."""
    return Computed(a.value @ W, a.error @ np.abs(W)
                    + rounding(a.magnitude @ np.abs(W), W.shape[0], dtype))


@_overflow_is_infinite
def affine(terms: Sequence[tuple[Computed, np.ndarray]], biases: Sequence[np.ndarray | None],
           dtype: np.dtype) -> Computed:
    """Σ_k a_k W_kᵀ + Σ b, a pre-activation x w_ihᵀ + h w_hhᵀ + b_ih + b_hh: the inputs' errors
    carried by |W_k|ᵀ, plus one (Σ_k cols(W_k) + #biases)-term sum's rounding (tol.accumulated),
    its Σ|terms| taken at the largest values the inputs may hold. An absent bias still counts as
    a term, which keeps n independent of how an implementation stores it."""
    value = sum(a.value @ W.T for a, W in terms)
    carried = sum(a.error @ np.abs(W).T for a, W in terms)
    magnitude = sum(a.magnitude @ np.abs(W).T for a, W in terms)
    for b in biases:
        if b is not None:
            value = value + b
            magnitude = magnitude + np.abs(b)
    n = sum(W.shape[1] for _, W in terms) + len(biases)
    return Computed(value, carried + rounding(magnitude, n, dtype))


def block(a: Computed, k: int, H: int) -> Computed:
    """Columns k·H … (k + 1)·H − 1: gate block k."""
    return a[..., k * H:(k + 1) * H]


def concatenate(parts: Sequence[Computed], axis: int = -1) -> Computed:
    return Computed(np.concatenate([p.value for p in parts], axis=axis),
                    np.concatenate([p.error for p in parts], axis=axis))


def stack(parts: Sequence[Computed]) -> Computed:
    return Computed(np.stack([p.value for p in parts]), np.stack([p.error for p in parts]))


def flip(a: Computed) -> Computed:
    """Time reversed (axis 0): a permutation, no arithmetic."""
    return Computed(a.value[::-1], a.error[::-1])


@dataclass(frozen=True)
class Accumulation:
    """An open sum Σ_k L_kᵀ R_k (a weight gradient Σ_t g_tᵀ x_t over steps and samples), closed
    by :meth:`close` once every term is in: the carried errors δLᵀ(|R| + δR) + |L|ᵀδR (exact
    telescoping) plus tol.accumulated over all its rows at once, which holds in any order."""

    value: np.ndarray
    carried: np.ndarray
    magnitude: np.ndarray
    rows: int

    @classmethod
    @_overflow_is_infinite
    def of(cls, L: Computed, R: Computed | None = None) -> Accumulation:
        """Lᵀ R for L (n, m), R (n, k); R None means a column of ones (a bias: Σ_rows L)."""
        if R is None:
            return cls(L.value.sum(axis=0), L.error.sum(axis=0), L.magnitude.sum(axis=0),
                       L.shape[0])
        return cls(L.value.T @ R.value, L.error.T @ R.magnitude + np.abs(L.value).T @ R.error,
                   L.magnitude.T @ R.magnitude, L.shape[0])

    @_overflow_is_infinite
    def __add__(self, other: Accumulation) -> Accumulation:
        return Accumulation(self.value + other.value, self.carried + other.carried,
                            self.magnitude + other.magnitude, self.rows + other.rows)

    @_overflow_is_infinite
    def close(self, dtype: np.dtype) -> Computed:
        return Computed(self.value, self.carried + rounding(self.magnitude, self.rows, dtype))


class Gradients(dict):
    """Open weight gradients of one direction of one layer, by PyTorch's name without layer
    suffix (``bias`` for the two biases, which receive the same gradient)."""

    def __add__(self, other: Gradients) -> Gradients:
        return Gradients({k: self[k] + other[k] for k in self})

    def close(self, dtype: np.dtype, bias: bool) -> dict[str, Computed]:
        closed = {k: v.close(dtype) for k, v in self.items()}
        b = closed.pop("bias")
        return {**closed, **({"bias_ih": b, "bias_hh": b} if bias else {})}


# ---- LSTM (spec/lstm.md) ---------------------------------------------------------------------

class LSTMStep(NamedTuple):
    """One step's inputs and every intermediate value an implementation computes, with bounds."""

    x: Computed
    h: Computed
    c: Computed
    A: Computed
    i: Computed
    f: Computed
    g: Computed
    o: Computed
    c_new: Computed
    tanh_c: Computed
    m: Computed
    h_new: Computed


def lstm_step(x: Any, h: Any, c: Any, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None,
              b_hh: np.ndarray | None, dtype: np.dtype,
              w_hr: np.ndarray | None = None) -> LSTMStep:
    """The cell as an implementation computes it (PyTorch's order of operations): A, the gates
    i, f, g, o of blocks 0–3, c' = f·c + i·g, m = o·tanh(c'), h' = m (or m w_hrᵀ with a
    projection). x, h, c: Computed or exact arrays."""
    x, h, c = (v if isinstance(v, Computed) else exact(v) for v in (x, h, c))
    H = w_ih.shape[0] // 4
    A = affine([(x, w_ih), (h, w_hh)], [b_ih, b_hh], dtype)
    i, f, o = (sigmoid(block(A, k, H), dtype) for k in (0, 1, 3))
    g = tanh(block(A, 2, H), dtype)
    c_new = total(product(f, c, dtype=dtype), product(i, g, dtype=dtype), dtype=dtype)
    tanh_c = tanh(c_new, dtype)
    m = product(o, tanh_c, dtype=dtype)
    h_new = m if w_hr is None else matmul(m, w_hr.T, dtype)
    return LSTMStep(x, h, c, A, i, f, g, o, c_new, tanh_c, m, h_new)


def lstm_step_backward(gh: Computed, gc: Computed, s: LSTMStep, w_ih: np.ndarray,
                       w_hh: np.ndarray, dtype: np.dtype,
                       w_hr: np.ndarray | None = None) -> tuple[Computed, Computed, Computed,
                                                                Gradients]:
    """The VJP as autograd evaluates it from the saved forward values (spec/lstm.md, step 5) →
    (∂x, ∂h, ∂c, open weight gradients)."""

    def times(*factors: Computed) -> Computed:
        return product(*factors, dtype=dtype)

    grads = Gradients()
    if w_hr is not None:
        grads["weight_hr"] = Accumulation.of(gh, s.m)
        gh = matmul(gh, w_hr, dtype)
    dc_new = total(gc, times(gh, s.o, one_minus(times(s.tanh_c, s.tanh_c), dtype)), dtype=dtype)
    dA = concatenate([times(dc_new, s.g, s.i, one_minus(s.i, dtype)),
                      times(dc_new, s.c, s.f, one_minus(s.f, dtype)),
                      times(dc_new, s.i, one_minus(times(s.g, s.g), dtype)),
                      times(gh, s.tanh_c, s.o, one_minus(s.o, dtype))], axis=-1)
    grads.update(weight_ih=Accumulation.of(dA, s.x), weight_hh=Accumulation.of(dA, s.h),
                 bias=Accumulation.of(dA))
    return (matmul(dA, w_ih, dtype), matmul(dA, w_hh, dtype), times(dc_new, s.f), grads)


def lstm_cell_backward(gh: np.ndarray, gc: np.ndarray, x: np.ndarray, h: np.ndarray,
                       c: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None,
                       b_hh: np.ndarray | None, dtype: np.dtype) -> tuple[Computed | None, ...]:
    """Bounds on vjp_lstm_cell's (∂x, ∂h, ∂c, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh) for exact inputs and
    cotangents (spec/lstm.md, step 5); None for an absent bias."""
    s = lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh, dtype)
    dx, dh, dc, grads = lstm_step_backward(exact(gh), exact(gc), s, w_ih, w_hh, dtype)
    closed = grads.close(dtype, bias=True)
    return (dx, dh, dc, closed["weight_ih"], closed["weight_hh"],
            None if b_ih is None else closed["bias_ih"], None if b_hh is None else closed["bias_hh"])


def lstm_layer(x: Computed, h0: Computed, c0: Computed, w_ih: np.ndarray, w_hh: np.ndarray,
               b_ih: np.ndarray | None, b_hh: np.ndarray | None, dtype: np.dtype,
               w_hr: np.ndarray | None = None) -> list[LSTMStep]:
    """lstm_step over time: h_t and c_t, with their bounds, are the inputs of step t + 1."""
    steps: list[LSTMStep] = []
    h, c = h0, c0
    for t in range(x.shape[0]):
        steps.append(lstm_step(x[t], h, c, w_ih, w_hh, b_ih, b_hh, dtype, w_hr))
        h, c = steps[-1].h_new, steps[-1].c_new
    return steps


def lstm_layer_backward(gy: Computed, ghT: Computed, gcT: Computed, steps: list[LSTMStep],
                        w_ih: np.ndarray, w_hh: np.ndarray, dtype: np.dtype,
                        w_hr: np.ndarray | None = None) -> tuple[Computed, Computed, Computed,
                                                                 Gradients]:
    """Backpropagation through time: the cotangent of h_t is gy_t + (∂h of step t + 1), one
    rounding, that of c_t the ∂c of step t + 1; the weight gradients stay open over the steps."""
    T = len(steps)
    gh, gc, dx, grads = total(gy[T - 1], ghT, dtype=dtype), gcT, [None] * T, None
    for t in reversed(range(T)):
        dx[t], dh, gc, step_grads = lstm_step_backward(gh, gc, steps[t], w_ih, w_hh, dtype, w_hr)
        grads = step_grads if grads is None else grads + step_grads
        gh = total(gy[t - 1], dh, dtype=dtype) if t > 0 else dh
    return stack(dx), gh, gc, grads



def lstm_layer_bounds(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray,
                      w_hh: np.ndarray, b_ih: np.ndarray | None, b_hh: np.ndarray | None,
                      dtype: np.dtype | type,
                      w_hr: np.ndarray | None = None) -> tuple[tol.Bound, tol.Bound, tol.Bound]:
    """Bounds on lstm_layer's (y, h_T, c_T) (with ``w_hr``, lstm_layer_projection's) for an
    implementation computing in ``dtype`` (spec/lstm.md, "lstm.layer")."""
    dtype = np.dtype(dtype)
    steps = lstm_layer(exact(x), exact(h0), exact(c0), w_ih, w_hh, b_ih, b_hh, dtype, w_hr)
    return (as_bound(stack([s.h_new for s in steps]), "lstm_layer y", dtype),
            as_bound(steps[-1].h_new, "lstm_layer h_T", dtype),
            as_bound(steps[-1].c_new, "lstm_layer c_T", dtype))


def lstm_layer_vjp_bounds(g: Sequence[np.ndarray], x: np.ndarray, h0: np.ndarray, c0: np.ndarray,
                          w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None,
                          b_hh: np.ndarray | None, dtype: np.dtype | type,
                          w_hr: np.ndarray | None = None) -> tuple[tol.Bound | None, ...]:
    """Bounds on lstm_layer_vjp's (∂x, ∂h0, ∂c0, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh) — with ``w_hr``,
    lstm_layer_projection_vjp's (∂x, ∂h0, ∂c0, ∂w_ih, ∂w_hh, ∂w_hr, ∂b_ih, ∂b_hh) — for
    cotangents g = (gy, ghT, gcT); None for an absent bias."""
    dtype = np.dtype(dtype)
    steps = lstm_layer(exact(x), exact(h0), exact(c0), w_ih, w_hh, b_ih, b_hh, dtype, w_hr)
    dx, dh0, dc0, grads = lstm_layer_backward(*(exact(a) for a in g), steps, w_ih, w_hh, dtype,
                                              w_hr)
    closed = grads.close(dtype, bias=True)
    weights = ("weight_ih", "weight_hh", *(() if w_hr is None else ("weight_hr",)))
    return (*(as_bound(c, f"vjp_lstm_layer {n}", dtype)
              for c, n in ((dx, "dx"), (dh0, "dh0"), (dc0, "dc0"))),
            *(as_bound(closed[n], f"vjp_lstm_layer d{n}", dtype) for n in weights),
            None if b_ih is None else as_bound(closed["bias_ih"], "vjp_lstm_layer db_ih", dtype),
            None if b_hh is None else as_bound(closed["bias_hh"], "vjp_lstm_layer db_hh", dtype))

# ---- Elman RNN (spec/rnn.md's rules, with inexact inputs) -------------------------------------

class RNNStep(NamedTuple):
    x: Computed
    h: Computed
    a: Computed
    h_new: Computed


def rnn_step(x: Computed, h: Computed, w_ih: np.ndarray, w_hh: np.ndarray,
             b_ih: np.ndarray | None, b_hh: np.ndarray | None, nonlinearity: str,
             dtype: np.dtype) -> RNNStep:
    a = affine([(x, w_ih), (h, w_hh)], [b_ih, b_hh], dtype)
    return RNNStep(x, h, a, tanh(a, dtype) if nonlinearity == "tanh" else relu(a))


def rnn_step_backward(gh: Computed, s: RNNStep, w_ih: np.ndarray, w_hh: np.ndarray,
                      nonlinearity: str, dtype: np.dtype) -> tuple[Computed, Computed, Gradients]:
    """g_a = g_h ⊙ φ'(a), φ' = 1 − h_t² from the computed h_t (tanh), or the 0/1 indicator of
    a > 0 (ReLU), which may flip where |a| ≤ δa: there it may be off by |g_h|."""
    if nonlinearity == "tanh":
        g_a = product(gh, one_minus(product(s.h_new, s.h_new, dtype=dtype), dtype), dtype=dtype)
    else:
        unsure = np.abs(s.a.value) <= s.a.error
        on = s.a.value > 0
        g_a = Computed(gh.value * on, gh.error * (on | unsure) + np.abs(gh.value) * unsure)
    grads = Gradients(weight_ih=Accumulation.of(g_a, s.x), weight_hh=Accumulation.of(g_a, s.h),
                      bias=Accumulation.of(g_a))
    return matmul(g_a, w_ih, dtype), matmul(g_a, w_hh, dtype), grads


def rnn_layer(x: Computed, h0: Computed, w_ih: np.ndarray, w_hh: np.ndarray,
              b_ih: np.ndarray | None, b_hh: np.ndarray | None, nonlinearity: str,
              dtype: np.dtype) -> list[RNNStep]:
    steps: list[RNNStep] = []
    h = h0
    for t in range(x.shape[0]):
        steps.append(rnn_step(x[t], h, w_ih, w_hh, b_ih, b_hh, nonlinearity, dtype))
        h = steps[-1].h_new
    return steps


def rnn_layer_backward(gy: Computed, ghT: Computed, steps: list[RNNStep], w_ih: np.ndarray,
                       w_hh: np.ndarray, nonlinearity: str,
                       dtype: np.dtype) -> tuple[Computed, Computed, Gradients]:
    T = len(steps)
    gh, dx, grads = total(gy[T - 1], ghT, dtype=dtype), [None] * T, None
    for t in reversed(range(T)):
        dx[t], dh, step_grads = rnn_step_backward(gh, steps[t], w_ih, w_hh, nonlinearity, dtype)
        grads = step_grads if grads is None else grads + step_grads
        gh = total(gy[t - 1], dh, dtype=dtype) if t > 0 else dh
    return stack(dx), gh, grads


# ---- GRU: reference/gru.py's running bound, fed Computed inputs -------------------------------

def _bounded(c: Computed, dtype: np.dtype) -> gru_ref.ErrorBounded:
    """A Computed as an input of gru.py's ErrorBounded: its error inherited, its block closed
    (k = 0), its magnitude the largest value it may hold."""
    return gru_ref.ErrorBounded(c.value, c.error, c.magnitude, 0, dtype)


def _computed(v: gru_ref.ErrorBounded) -> Computed:
    return Computed(v.v, v.bound())


@dataclass(frozen=True)
class GRUGradients:
    """gru.py's seed-notation weight gradients, ErrorBounded and still open; they add field by
    field and close through gru.grads_to_torch."""

    dp: gru_ref.Params

    def __add__(self, other: GRUGradients) -> GRUGradients:
        return GRUGradients(gru_ref.Params(*(a + b for a, b in zip(self.dp, other.dp,
                                                                   strict=True))))

    def close(self, dtype: np.dtype, bias: bool) -> dict[str, Computed]:
        values = gru_ref.grads_to_torch(gru_ref.Params(*(d.v for d in self.dp)))
        bounds = gru_ref.grads_to_torch(gru_ref.Params(*(d.bound() for d in self.dp)))
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")[:4 if bias else 2]
        return {n: Computed(v, e) for n, v, e in zip(names, values, bounds, strict=False)}


# ---- one direction of one layer, any mode ----------------------------------------------------

@dataclass(frozen=True)
class DirectionBound:
    """The bound of one direction of one layer (spec/sequence.md): ``run`` carries a Computed
    input and initial state through the layer; ``backward`` carries Computed cotangents back."""

    mode: str
    nonlinearity: str
    p: dict[str, np.ndarray]
    dtype: np.dtype

    def run(self, x: Computed, state0: tuple[Computed, ...]) -> tuple[Computed, tuple, Any]:
        """→ (y, final state, what backward needs)."""
        p, dtype = self.p, self.dtype
        weights = (p["weight_ih"], p["weight_hh"])
        biases = (p.get("bias_ih"), p.get("bias_hh"))
        if self.mode == "lstm":
            steps = lstm_layer(x, *state0, *weights, *biases, dtype, p.get("weight_hr"))
            return (stack([s.h_new for s in steps]), (steps[-1].h_new, steps[-1].c_new), steps)
        if self.mode == "rnn":
            steps = rnn_layer(x, *state0, *weights, *biases, self.nonlinearity, dtype)
            return stack([s.h_new for s in steps]), (steps[-1].h_new,), steps
        lifted = [None if w is None else gru_ref.ErrorBounded.exact(w, dtype)
                  for w in (*weights, *biases)]
        saved = (_bounded(x, dtype), _bounded(state0[0], dtype), gru_ref.params_from_torch(*lifted))
        y, h_T = gru_ref.layer(gru_ref.cell_pytorch, *saved)
        return _computed(y), (_computed(h_T),), saved

    def backward(self, gy: Computed, g_state: tuple[Computed, ...],
                 saved: Any) -> tuple[Computed, tuple, Any]:
        """→ (∂x, ∂state0, open weight gradients)."""
        p, dtype = self.p, self.dtype
        if self.mode == "lstm":
            dx, dh0, dc0, grads = lstm_layer_backward(gy, *g_state, saved, p["weight_ih"],
                                                      p["weight_hh"], dtype, p.get("weight_hr"))
            return dx, (dh0, dc0), grads
        if self.mode == "rnn":
            dx, dh0, grads = rnn_layer_backward(gy, *g_state, saved, p["weight_ih"],
                                                p["weight_hh"], self.nonlinearity, dtype)
            return dx, (dh0,), grads
        dX, dH0, dp = gru_ref.layer_vjp(gru_ref.cell_pytorch, gru_ref.cell_pytorch_vjp,
                                        _bounded(gy, dtype), _bounded(g_state[0], dtype), *saved)
        return _computed(dX), (_computed(dH0),), GRUGradients(dp)


# ---- whole modules (spec/sequence.md) --------------------------------------------------------

def _place(target: dict[str, np.ndarray], c: Computed, index: Any) -> None:
    target["value"][index] = c.value
    target["error"][index] = c.error


def _zeros(shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {"value": np.zeros(shape), "error": np.zeros(shape)}


@dataclass(frozen=True)
class ModuleBounds:
    """Bounds on rnn_module's outputs and, given cotangents, on vjp_rnn_module's gradients."""

    outputs: tuple[tol.Bound, ...]
    dx: tol.Bound | None
    dstate: tuple[tol.Bound, ...] | None
    dparams: dict[str, tol.Bound] | None


def rnn_module(mode: str, x: np.ndarray, state: Any, params: dict[str, np.ndarray], *,
               dtype: np.dtype | type, cotangents: Sequence[np.ndarray] | None = None,
               num_layers: int = 1, bidirectional: bool = False, batch_first: bool = False,
               nonlinearity: str = "tanh", proj_size: int = 0,
               lengths: Any = None) -> ModuleBounds:
    """Running bounds of reference/sequence.py's rnn_module in evaluation mode (spec/sequence.md,
    "Tolerance"): each direction of each layer runs on the Computed output of the layer below,
    sequences of one length together (bounds are per sample, so the grouping is immaterial); the
    backward carries the Computed ∂(layer input) down, and every weight gradient stays open until
    all its steps, samples and sequences are in.
    """
    dtype = np.dtype(dtype)
    xs = time_major(np.asarray(x, dtype=np.float64), batch_first)
    T, B = xs.shape[:2]
    D = 2 if bidirectional else 1
    hidden = params["weight_hh_l0"].shape[0] // GATES[mode]
    widths = (proj_size or hidden, hidden) if mode == "lstm" else (proj_size or hidden,)
    given = (tuple(state) if mode == "lstm" else (state,)) if state is not None else tuple(
        np.zeros((num_layers * D, B, w)) for w in widths)
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    groups = [(L, np.flatnonzero(lengths == L)) for L in np.unique(lengths)]
    bias = "bias_ih_l0" in params

    def direction(layer: int, d: int) -> DirectionBound:
        suffix = f"_l{layer}{'_reverse' if d else ''}"
        return DirectionBound(mode, nonlinearity, {n[:-len(suffix)]: v for n, v in params.items()
                                                   if n.endswith(suffix)}, dtype)

    inp, finals, traces = exact(xs), [_zeros((num_layers * D, B, w)) for w in widths], []
    for layer in range(num_layers):
        out = _zeros((T, B, D * widths[0]))
        for d in range(D):
            k, cols = layer * D + d, slice(d * widths[0], (d + 1) * widths[0])
            for L, idx in groups:
                seq = inp[:L, idx]
                y, final, saved = direction(layer, d).run(flip(seq) if d else seq,
                                                          tuple(exact(s[k, idx]) for s in given))
                _place(out, flip(y) if d else y, (slice(0, L), idx, cols))
                for target, f in zip(finals, final, strict=True):
                    _place(target, f, (k, idx))
                traces.append((layer, d, L, idx, saved))
        inp = Computed(out["value"], out["error"])
    outputs = (Computed(time_major(inp.value, batch_first), time_major(inp.error, batch_first)),
               *(Computed(f["value"], f["error"]) for f in finals))
    bounds = tuple(as_bound(o, f"rnn_module {name}", dtype)
                   for o, name in zip(outputs, ("y", "h_n", "c_n"), strict=False))
    if cotangents is None:
        return ModuleBounds(bounds, None, None, None)

    gy, *g_states = (np.asarray(c, dtype=np.float64) for c in cotangents)
    g = exact(time_major(gy, batch_first))
    d_states = [_zeros((num_layers * D, B, w)) for w in widths]
    d_params: dict[str, Computed] = {}
    for layer in reversed(range(num_layers)):
        width_in = xs.shape[2] if layer == 0 else D * widths[0]
        shares = [_zeros((T, B, width_in)) for _ in range(D)]
        for d in range(D):
            k, cols = layer * D + d, slice(d * widths[0], (d + 1) * widths[0])
            grads = None
            for t_layer, t_d, L, idx, saved in traces:
                if (t_layer, t_d) != (layer, d):
                    continue
                g_seq = g[:L, idx, cols]
                dx, d_state0, g_open = direction(layer, d).backward(
                    flip(g_seq) if d else g_seq, tuple(exact(gs[k, idx]) for gs in g_states),
                    saved)
                _place(shares[d], flip(dx) if d else dx, (slice(0, L), idx))
                for target, ds in zip(d_states, d_state0, strict=True):
                    _place(target, ds, (k, idx))
                grads = g_open if grads is None else grads + g_open
            suffix = f"_l{layer}{'_reverse' if d else ''}"
            d_params.update({f"{n}{suffix}": c for n, c in grads.close(dtype, bias).items()})
        g = total(*(Computed(s["value"], s["error"]) for s in shares), dtype=dtype)
    dx = Computed(time_major(g.value, batch_first), time_major(g.error, batch_first))
    return ModuleBounds(
        bounds, as_bound(dx, "vjp_rnn_module dx", dtype),
        tuple(as_bound(Computed(s["value"], s["error"]), f"vjp_rnn_module d{name}", dtype)
              for s, name in zip(d_states, ("h0", "c0"), strict=False)),
        {n: as_bound(c, f"vjp_rnn_module d{n}", dtype) for n, c in d_params.items()})

