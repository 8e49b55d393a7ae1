"""rnn.cell, rnn.layer — the running error bounds (spec/rnn.md, "How the bound grows with T" and
"The gradients' bound"): the Elman step stated in the engine's rules (checks/bounds/engine.py),
forward and backward, carried over time by the engine.

Every bound function takes the contract function's arguments, as the implementation saw them,
and the implementation's ``dtype``; it returns one :class:`~nnspec.checks.bounds.rules.Bound` per
output (None for the gradient of an absent bias).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from nnspec.checks.bounds import backpropagation as BP
from nnspec.checks.bounds import engine as E
from nnspec.checks.bounds import losses
from nnspec.checks.bounds import propagation as P
from nnspec.checks.bounds import rules as tol
from nnspec.checks.bounds.engine import Computed, exact
from nnspec.reference import rnn as ref

#: The names of vjp_rnn_cell's and vjp_rnn_layer's outputs, in order.
CELL_GRADIENTS = ("dx", "dh", "dw_ih", "dw_hh", "db_ih", "db_hh")
LAYER_GRADIENTS = ("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh")

#: The weights whose gradients follow the inputs', in the contract's order.
WEIGHTS = ("weight_ih", "weight_hh")


class RNNStep(NamedTuple):
    """One step: its inputs, the pre-activation a and h' = φ(a), with bounds."""

    x: Computed
    h: Computed
    a: Computed
    h_new: Computed

    @property
    def state(self) -> tuple[Computed]:
        return (self.h_new,)


def step(x: Computed, h: Computed, w_ih: np.ndarray, w_hh: np.ndarray,
         b_ih: np.ndarray | None, b_hh: np.ndarray | None, nonlinearity: str,
         dtype: np.dtype) -> RNNStep:
    """a = x w_ihᵀ + h w_hhᵀ + b_ih + b_hh in any order (one (D + H + 2)-term sum), h' = φ(a):
    tanh and ReLU (rnn.cell), and the sigmoid and identity of seeds 003 and 004 (decay.md)."""
    a = E.affine([(x, w_ih), (h, w_hh)], [b_ih, b_hh], dtype)
    activations = {"tanh": lambda: E.tanh(a, dtype), "relu": lambda: E.relu(a),
                   "sigmoid": lambda: E.sigmoid(a, dtype), "linear": lambda: a}
    if nonlinearity not in activations:
        raise ValueError(f"nonlinearity must be one of {sorted(activations)}, got {nonlinearity!r}")
    return RNNStep(x, h, a, activations[nonlinearity]())


def step_backward(g: tuple[Computed, ...], s: RNNStep, w_ih: np.ndarray, w_hh: np.ndarray,
                  nonlinearity: str,
                  dtype: np.dtype) -> tuple[Computed, tuple[Computed], E.Gradients]:
    """g_a = g_h ⊙ φ'(a), φ' = 1 − h_t² from the computed h_t (tanh), h_t(1 − h_t) (sigmoid),
    1 (identity), or the 0/1 indicator of a > 0 (ReLU), which may flip where |a| ≤ δa: there it
    may be off by |g_h|."""
    (gh,) = g
    if nonlinearity == "tanh":
        g_a = E.product(gh, E.one_minus(E.product(s.h_new, s.h_new, dtype=dtype), dtype),
                        dtype=dtype)
    elif nonlinearity == "sigmoid":
        g_a = E.product(gh, s.h_new, E.one_minus(s.h_new, dtype), dtype=dtype)
    elif nonlinearity == "linear":
        g_a = gh
    else:
        g_a = E.relu_vjp(gh, s.a)
    bias = E.Accumulation.of(g_a)
    grads = E.Gradients(weight_ih=E.Accumulation.of(g_a, s.x),
                        weight_hh=E.Accumulation.of(g_a, s.h), bias_ih=bias, bias_hh=bias)
    return E.matmul(g_a, w_ih, dtype), (E.matmul(g_a, w_hh, dtype),), grads


def _layer(x: Computed, h0: Computed, w_ih: np.ndarray, w_hh: np.ndarray,
           b_ih: np.ndarray | None, b_hh: np.ndarray | None, nonlinearity: str,
           dtype: np.dtype, stop: E.Stop | None = None) -> list[RNNStep]:
    return E.run(lambda x_t, state: step(x_t, state[0], w_ih, w_hh, b_ih, b_hh, nonlinearity,
                                         dtype), x, (h0,), stop)


def pre_activation_magnitude(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                             b_ih: np.ndarray | None = None,
                             b_hh: np.ndarray | None = None) -> np.ndarray:
    """Σ|terms| of the pre-activation in PyTorch's layout, |x||w_ih|ᵀ + |h||w_hh|ᵀ + |b_ih| +
    |b_hh|: the scale of its tol.accumulated bound (n = D + H + 2 terms)."""
    m = np.abs(x) @ np.abs(w_ih).T + np.abs(h) @ np.abs(w_hh).T
    for b in (b_ih, b_hh):
        if b is not None:
            m = m + np.abs(b)
    return m


# ---- one bound function per contract function ------------------------------------------------

def rnn_cell(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
             b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None,
             nonlinearity: str = "tanh", *, dtype: np.dtype | type) -> tol.Bound:
    """Bound on rnn_cell's h' (rnn.cell)."""
    dtype = np.dtype(dtype)
    s = step(exact(x), exact(h), w_ih, w_hh, b_ih, b_hh, nonlinearity, dtype)
    return E.as_bound(s.h_new, "rnn_cell h'", dtype)


def vjp_rnn_cell(gh: np.ndarray, x: np.ndarray, h: np.ndarray, w_ih: np.ndarray,
                 w_hh: np.ndarray, b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None,
                 nonlinearity: str = "tanh", *,
                 dtype: np.dtype | type) -> tuple[tol.Bound | None, ...]:
    """Bounds on vjp_rnn_cell's (∂x, ∂h, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh) (rnn.cell)."""
    dtype = np.dtype(dtype)
    s = step(exact(x), exact(h), w_ih, w_hh, b_ih, b_hh, nonlinearity, dtype)
    dx, (dh,), grads = step_backward((exact(gh),), s, w_ih, w_hh, nonlinearity, dtype)
    return E.gradient_bounds("vjp_rnn_cell", dtype, (("dx", dx), ("dh", dh)), grads, WEIGHTS,
                             b_ih, b_hh)


def rnn_layer(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
              b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None,
              nonlinearity: str = "tanh", *,
              dtype: np.dtype | type) -> tuple[tol.Bound, tol.Bound]:
    """Bounds on rnn_layer's (y, h_T) (rnn.layer): the smaller of the running worst-case bound,
    where the error of h_{t−1} enters step t through |w_hh| and φ' on the reachable interval,
    and the first-order probabilistic one (spec/tolerances.md, "Bounds at production scale")."""
    dtype = np.dtype(dtype)
    x, h0 = np.asarray(x, dtype=np.float64), np.asarray(h0, dtype=np.float64)
    traj = P.rnn(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity,
                 P.scale(dtype, x.shape[0] * h0.size + h0.size))

    def worst(stop: E.Stop) -> list[tuple[np.ndarray, ...]]:
        return [(s.h_new.error,) for s in _layer(exact(x), exact(h0), w_ih, w_hh, b_ih, b_hh,
                                                 nonlinearity, dtype, stop)]

    b = P.layer_bounds(traj, dtype, worst, "rnn_layer", ("y", "h_T"),
                       P.roundings(x.shape[0] * x.shape[1], w_ih, w_hh))
    return b[0], b[1]


def vjp_rnn_layer(g: Sequence[np.ndarray], x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray,
                  w_hh: np.ndarray, b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None,
                  nonlinearity: str = "tanh", *,
                  dtype: np.dtype | type) -> tuple[tol.Bound | None, ...]:
    """Bounds on vjp_rnn_layer's (∂x, ∂h0, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh) for cotangents
    g = (gy, ghT) (rnn.layer, backpropagation through time): the running worst-case
    bound, and where it is infinite or not run the first-order probabilistic one
    (propagation.where_vacuous; spec/tolerances.md, "Bounds at production scale")."""
    dtype = np.dtype(dtype)
    x, h0 = np.asarray(x, dtype=np.float64), np.asarray(h0, dtype=np.float64)
    gy, ghT = (np.asarray(a, dtype=np.float64) for a in g)
    scale = P.scale(dtype, x.shape[0] * h0.size + h0.size)
    tape: list[tuple[np.ndarray, np.ndarray]] = []
    traj = P.rnn(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, scale, tape=tape)
    adj = BP.rnn(traj, tape, x, None, h0, w_ih, w_hh, nonlinearity, gy, None, ghT,
                 unit=tol.unit_roundoff(dtype), kinks=scale)
    ok = BP.rows_ok(traj, dtype, *g)
    steps = _layer(exact(x), exact(h0), w_ih, w_hh, b_ih, b_hh, nonlinearity, dtype,
                   BP.worst_case_stop(traj, dtype))
    worst = None
    if len(steps) == x.shape[0]:
        dx, (dh0,), grads = E.run_backward(
            lambda g_t, s: step_backward(g_t, s, w_ih, w_hh, nonlinearity, dtype), exact(gy),
            (exact(ghT),), steps, dtype)
        worst = E.gradient_bounds("vjp_rnn_layer", dtype, (("dx", dx), ("dh0", dh0)), grads,
                                  WEIGHTS, b_ih, b_hh)
    return BP.gradient_bounds("vjp_rnn_layer", dtype, LAYER_GRADIENTS, adj, WEIGHTS, b_ih, b_hh,
                              ok, worst, P.roundings(x.shape[0] * x.shape[1], w_ih, w_hh))


# ---- the seed's output layer and loss on the states (rnn.output, rnn.output_loss) ---------------

def output(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
           b_ih: np.ndarray | None, b_hh: np.ndarray | None, nonlinearity: str, V: np.ndarray,
           b_y: np.ndarray | None, *, dtype: np.dtype | type) -> tol.Bound:
    """rnn.output, y_t = V h_t + b_y on the layer's states: the states' error δ carried through
    |V|, plus the output layer's own (H + 1)-term sums at the largest states allowed."""
    delta, _ = rnn_layer(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, dtype=dtype)
    h, _ = ref.rnn_layer(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    carried = tol.Bound(delta.atol @ np.abs(V).T, f"({delta.rule})·|V|", delta.unit)
    magnitude = ref.output(np.abs(h) + delta.atol, np.abs(V), None if b_y is None else np.abs(b_y))
    return carried + tol.accumulated(magnitude, V.shape[1] + 1, dtype)


def output_loss(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                b_ih: np.ndarray | None, b_hh: np.ndarray | None, nonlinearity: str,
                V: np.ndarray, b_y: np.ndarray | None, logits: np.ndarray, k: np.ndarray, *,
                dtype: np.dtype | type) -> tol.Bound:
    """rnn.output_loss, the mean cross-entropy of the outputs: the logits' error δy
    (:func:`output`) reaches each ℓ_t at most doubled, since ∂ℓ/∂y = ŷ − o has |·|₁ ≤ 2, plus
    cross_entropy's own rounding on the ``logits`` it was given (spec/losses.md)."""
    delta_y = output(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, V, b_y, dtype=dtype)
    carried = tol.Bound(np.asarray(2 * delta_y.atol.max(axis=-1).mean()),
                        "2·mean over positions of max_j δy (spec/rnn.md)", delta_y.unit)
    return carried + losses.cross_entropy(logits, k, dtype=np.dtype(dtype))
