"""The running-error engine: how far an implementation's values may drift from the reference's,
carried step by step through a formula (spec/tolerances.md, "Composing bounds").

A :class:`Computed` is a quantity as an implementation computing in DTYPE obtains it: the exact
value (the reference's, float64) and an elementwise bound on the implementation's error. Each
function below is one rule of spec/tolerances.md (checks/bounds/rules.py) applied to Computed
arguments — tol.accumulated for sums and products, the mean value theorem plus tol.elementwise for
σ and tanh, absolute near 0 (tol.ABSOLUTE_SCALE) — so evaluating a formula step by step on
Computed values bounds the implementation's error on the whole of it. This is the only place
that propagation is written; the recurrent families state their steps in these rules
(checks/bounds/rnn.py, gru.py, lstm.py) and :func:`run` / :func:`run_backward` carry any of them
over time, so that layers of every mode stack (checks/bounds/sequence.py): the error of layer
l's output is the input error of layer l + 1.

Weight gradients are sums over every step and every sample; :class:`Accumulation` keeps such a
sum open until all its terms are in, so its rounding is γ_n of *all* n terms, the bound for any
summation order (per-step partial sums would assume one order).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from nnspec.checks.bounds import rules as tol
from nnspec.reference.activations import sigmoid as _sigmoid


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


@tol.overflow_is_infinite
def rounding(magnitude: np.ndarray, n: int, dtype: np.dtype) -> np.ndarray:
    """tol.accumulated's bound on an n-term sum whose terms have Σ|terms| = magnitude."""
    return tol.accumulated(magnitude, n, dtype).atol


def as_bound(c: Computed, what: str, dtype: np.dtype | type) -> tol.Bound:
    """The final bound, with a summary rule (the composed one is the whole derivation)."""
    u = tol.unit_roundoff(dtype)
    return tol.Bound(c.error, f"{what}: running error bound (tol.accumulated on every sum and "
                              f"product, mean value theorem + tol.elementwise, absolute "
                              f"near 0, on σ and tanh), "
                              f"u={u:.3g} ({np.dtype(dtype)})", u)


# ---- the rules -------------------------------------------------------------------------------

@tol.overflow_is_infinite
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


@tol.overflow_is_infinite
def total(*terms: Computed, dtype: np.dtype) -> Computed:
    """Σ v_k from terms with errors δ_k: Σ δ_k plus the n − 1 roundings of the sum."""
    value = functools.reduce(np.add, (t.value for t in terms))
    error = functools.reduce(np.add, (t.error for t in terms))
    if len(terms) > 1:
        error = error + rounding(functools.reduce(np.add, (t.magnitude for t in terms)),
                                 len(terms) - 1, dtype)
    return Computed(value, error)


def negate(a: Computed) -> Computed:
    """−a: exact."""
    return Computed(-a.value, a.error)


def one_minus(a: Computed, dtype: np.dtype) -> Computed:
    """1 − a: one rounded subtraction."""
    return total(exact(np.ones_like(a.value)), negate(a), dtype=dtype)


def _reach(a: Computed) -> np.ndarray:
    """The point of [a − δ, a + δ] closest to 0, in absolute value: where |σ'| and |tanh'|, which
    decrease in |t|, are largest on the interval the computed pre-activation lies in."""
    return np.maximum(np.abs(a.value) - a.error, 0.0)


@tol.overflow_is_infinite
def sigmoid(a: Computed, dtype: np.dtype) -> Computed:
    """σ(a): the input error times max|σ'| on the reachable interval (≤ 1/4, σ'(t) =
    e^(−t)/(1 + e^(−t))² at t ≥ 0, no overflow), plus the library's tol.elementwise, which is
    absolute near 0 for σ (tol.ABSOLUTE_SCALE: ½(1 + tanh(t/2)) is a legitimate σ)."""
    value = _sigmoid(a.value)
    e = np.exp(-_reach(a))
    return Computed(value, e / (1 + e) ** 2 * a.error
                    + tol.absolute_near_zero(value, dtype, function="sigmoid").atol)


@tol.overflow_is_infinite
def tanh(a: Computed, dtype: np.dtype) -> Computed:
    """tanh(a): the input error times max|tanh'| on the reachable interval (≤ 1,
    tanh'(t) = 4e^(−2t)/(1 + e^(−2t))²), plus the library's tol.elementwise, absolute near 0 for
    tanh (tol.ABSOLUTE_SCALE: (1 − e^(−2t))/(1 + e^(−2t)) is a legitimate tanh)."""
    value = np.tanh(a.value)
    e = np.exp(-2 * _reach(a))
    return Computed(value, 4 * e / (1 + e) ** 2 * a.error
                    + tol.absolute_near_zero(value, dtype, function="tanh").atol)


@tol.overflow_is_infinite
def relu(a: Computed) -> Computed:
    """max(a, 0), exact: the input error passes where the interval reaches above 0 (elsewhere
    the computed result is 0 too)."""
    return Computed(np.maximum(a.value, 0.0), a.error * (a.value + a.error > 0))


def relu_vjp(g: Computed, a: Computed) -> Computed:
    """g ⊙ ReLU'(a) = g ⊙ 1[a > 0], exact: g's error passes where the unit is on or may be
    (tol.near_kink), and there the derivative may also be the other one, off by the whole |g|."""
    unsure, on = tol.near_kink(a.value, a.error), a.value > 0
    return Computed(g.value * on, g.error * (on | unsure) + np.abs(g.value) * unsure)


@tol.overflow_is_infinite
def matmul(a: Computed, W: np.ndarray, dtype: np.dtype) -> Computed:
    """a W for an exact W: a's error carried by |W|, plus the n-term dot products' roundings."""
    return Computed(a.value @ W, a.error @ np.abs(W)
                    + rounding(a.magnitude @ np.abs(W), W.shape[0], dtype))


@tol.overflow_is_infinite
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
    # Terms all exactly 0 (Σ|terms| = 0) round nothing, not even below the normal range: every
    # implementation computes the 0, so its bound is 0 (the ReLU kink rule, tol.near_kink, reads
    # it). Elsewhere tol.accumulated's floor stands: its callers' magnitudes are not always the
    # terms of one sum.
    return Computed(value, carried + np.where(magnitude > 0, rounding(magnitude, n, dtype), 0.0))


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
    @tol.overflow_is_infinite
    def of(cls, L: Computed, R: Computed | None = None) -> Accumulation:
        """Lᵀ R for L (n, m), R (n, k); R None means a column of ones (a bias: Σ_rows L)."""
        if R is None:
            return cls(L.value.sum(axis=0), L.error.sum(axis=0), L.magnitude.sum(axis=0),
                       L.shape[0])
        return cls(L.value.T @ R.value, L.error.T @ R.magnitude + np.abs(L.value).T @ R.error,
                   L.magnitude.T @ R.magnitude, L.shape[0])

    @tol.overflow_is_infinite
    def __add__(self, other: Accumulation) -> Accumulation:
        return Accumulation(self.value + other.value, self.carried + other.carried,
                            self.magnitude + other.magnitude, self.rows + other.rows)

    @classmethod
    def rows_of(cls, parts: Sequence[Accumulation]) -> Accumulation:
        """Blocks of one weight's rows (gate blocks with different right factors), stacked; every
        block sums over the same samples and steps."""
        return cls(np.concatenate([p.value for p in parts]),
                   np.concatenate([p.carried for p in parts]),
                   np.concatenate([p.magnitude for p in parts]), max(p.rows for p in parts))

    @tol.overflow_is_infinite
    def close(self, dtype: np.dtype) -> Computed:
        return Computed(self.value, self.carried + rounding(self.magnitude, self.rows, dtype))


#: PyTorch's names of one direction of one layer's parameters, without the layer suffix.
PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class Gradients(dict[str, Accumulation]):
    """The open weight gradients of one direction of one layer, by PyTorch's parameter name
    without the layer suffix; they add name by name over steps and sequences."""

    def __add__(self, other: Gradients) -> Gradients:
        return Gradients({k: self[k] + other[k] for k in self})

    def close(self, dtype: np.dtype, bias: bool) -> dict[str, Computed]:
        """The closed gradients; the biases' only when the layer has biases."""
        return {k: v.close(dtype) for k, v in self.items() if bias or not k.startswith("bias")}


def gradient_bounds(what: str, dtype: np.dtype, inputs: Sequence[tuple[str, Computed]],
                    grads: Gradients, weights: Sequence[str], b_ih: np.ndarray | None,
                    b_hh: np.ndarray | None) -> tuple[tol.Bound | None, ...]:
    """A VJP's bounds in the contract's order — (∂inputs…, ∂weights…, ∂b_ih, ∂b_hh) — with the
    weight gradients closed; None for the gradient of an absent bias."""
    closed = grads.close(dtype, bias=True)

    def bound(c: Computed, name: str) -> tol.Bound:
        return as_bound(c, f"{what} {name}", dtype)

    return (*(bound(c, name) for name, c in inputs),
            *(bound(closed[n], "d" + n.replace("weight_", "w_")) for n in weights),
            None if b_ih is None else bound(closed["bias_ih"], "db_ih"),
            None if b_hh is None else bound(closed["bias_hh"], "db_hh"))


# ---- over time ------------------------------------------------------------------------------

class Step(Protocol):
    """One step of a recurrence as the engine sees it: the states it produced (h first)."""

    @property
    def state(self) -> tuple[Computed, ...]: ...


S = TypeVar("S", bound=Step)

#: step(x_t, state_{t−1}) → the step, its intermediate values and the new state, with bounds.
Forward = Callable[[Computed, tuple[Computed, ...]], S]

#: backward(cotangents of the step's states, the step) → (∂x_t, ∂state_{t−1}, open gradients).
Backward = Callable[[tuple[Computed, ...], S], tuple[Computed, tuple[Computed, ...], Gradients]]


#: stop(t, the state errors after step t) → True to end a run early (checks/bounds/propagation.py:
#: once the worst case is looser than the probabilistic bound everywhere, its later steps are moot).
Stop = Callable[[int, tuple[np.ndarray, ...]], bool]


def run(step: Forward[S], x: Computed, state0: tuple[Computed, ...],
        stop: Stop | None = None) -> list[S]:
    """The step over time: the states of step t, with their bounds, are the inputs of step t + 1;
    with ``stop``, only the steps up to the first at which it returns True."""
    steps: list[S] = []
    state = state0
    for t in range(x.shape[0]):
        steps.append(step(x[t], state))
        state = steps[-1].state
        if stop is not None and stop(t, tuple(c.error for c in state)):
            break
    return steps


def outputs(steps: Sequence[Step]) -> Computed:
    """y = (h_1 … h_T): the first state of every step."""
    return stack([s.state[0] for s in steps])


def run_backward(backward: Backward[S], gy: Computed, g_state: tuple[Computed, ...], steps: Sequence[S],
                 dtype: np.dtype) -> tuple[Computed, tuple[Computed, ...], Gradients]:
    """Backpropagation through time: the cotangent of h_t is gy_t + (∂h of step t + 1), one
    rounding, those of the other states (an LSTM's c_t) what step t + 1 returns; the weight
    gradients stay open over the steps → (∂x, ∂state0, open gradients)."""
    T = len(steps)
    g = (total(gy[T - 1], g_state[0], dtype=dtype), *g_state[1:])
    dx: list[Computed] = []
    grads: Gradients | None = None
    for t in reversed(range(T)):
        dx_t, d_prev, step_grads = backward(g, steps[t])
        dx.append(dx_t)
        grads = step_grads if grads is None else grads + step_grads
        g = (total(gy[t - 1], d_prev[0], dtype=dtype), *d_prev[1:]) if t > 0 else d_prev
    assert grads is not None, "a sequence has at least one step"
    return stack(dx[::-1]), g, grads


