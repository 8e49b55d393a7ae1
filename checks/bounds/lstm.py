"""lstm.cell, lstm.cell.projection, lstm.layer — the running error bounds (spec/lstm.md,
"Tolerance"): the cell's steps stated in the engine's rules (checks/bounds/engine.py), forward and
backward as an implementation evaluates them, and carried over time by the engine.

Every bound function takes the contract function's arguments, as the implementation saw them,
and the implementation's ``dtype``; it returns one :class:`~nnspec.checks.bounds.rules.Bound` per
output of that contract function (None for the gradient of an absent bias).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from nnspec.checks.bounds import backpropagation as BP
from nnspec.checks.bounds import engine as E
from nnspec.checks.bounds import propagation as P
from nnspec.checks.bounds import rules as tol
from nnspec.checks.bounds.engine import Computed, exact


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

    @property
    def state(self) -> tuple[Computed, Computed]:
        return self.h_new, self.c_new


def step(x: Any, h: Any, c: Any, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None,
         b_hh: np.ndarray | None, dtype: np.dtype, w_hr: np.ndarray | None = None) -> LSTMStep:
    """The cell as an implementation computes it (PyTorch's order of operations): A, the gates
    i, f, g, o of blocks 0–3, c' = f·c + i·g, m = o·tanh(c'), h' = m (or m w_hrᵀ with a
    projection). x, h, c: Computed or exact arrays."""
    x, h, c = (v if isinstance(v, Computed) else exact(v) for v in (x, h, c))
    H = w_ih.shape[0] // 4
    A = E.affine([(x, w_ih), (h, w_hh)], [b_ih, b_hh], dtype)
    i, f, o = (E.sigmoid(E.block(A, k, H), dtype) for k in (0, 1, 3))
    g = E.tanh(E.block(A, 2, H), dtype)
    c_new = E.total(E.product(f, c, dtype=dtype), E.product(i, g, dtype=dtype), dtype=dtype)
    tanh_c = E.tanh(c_new, dtype)
    m = E.product(o, tanh_c, dtype=dtype)
    h_new = m if w_hr is None else E.matmul(m, w_hr.T, dtype)
    return LSTMStep(x, h, c, A, i, f, g, o, c_new, tanh_c, m, h_new)


def step_backward(g: tuple[Computed, ...], s: LSTMStep, w_ih: np.ndarray, w_hh: np.ndarray,
                  dtype: np.dtype,
                  w_hr: np.ndarray | None = None) -> tuple[Computed, tuple[Computed, Computed],
                                                           E.Gradients]:
    """The VJP as autograd evaluates it from the saved forward values (spec/lstm.md, step 5):
    cotangents (gh, gc) of (h', c') → (∂x, (∂h, ∂c), open weight gradients)."""

    def times(*factors: Computed) -> Computed:
        return E.product(*factors, dtype=dtype)

    gh, gc = g
    grads = E.Gradients()
    if w_hr is not None:
        grads["weight_hr"] = E.Accumulation.of(gh, s.m)
        gh = E.matmul(gh, w_hr, dtype)
    dc_new = E.total(gc, times(gh, s.o, E.one_minus(times(s.tanh_c, s.tanh_c), dtype)), dtype=dtype)
    dA = E.concatenate([times(dc_new, s.g, s.i, E.one_minus(s.i, dtype)),
                        times(dc_new, s.c, s.f, E.one_minus(s.f, dtype)),
                        times(dc_new, s.i, E.one_minus(times(s.g, s.g), dtype)),
                        times(gh, s.tanh_c, s.o, E.one_minus(s.o, dtype))], axis=-1)
    bias = E.Accumulation.of(dA)
    grads.update(weight_ih=E.Accumulation.of(dA, s.x), weight_hh=E.Accumulation.of(dA, s.h),
                 bias_ih=bias, bias_hh=bias)
    return E.matmul(dA, w_ih, dtype), (E.matmul(dA, w_hh, dtype), times(dc_new, s.f)), grads


def _layer(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
           b_ih: np.ndarray | None, b_hh: np.ndarray | None, dtype: np.dtype,
           w_hr: np.ndarray | None, stop: E.Stop | None = None) -> list[LSTMStep]:
    return E.run(lambda x_t, state: step(x_t, state[0], state[1], w_ih, w_hh, b_ih, b_hh, dtype,
                                         w_hr),
                 exact(x), (exact(h0), exact(c0)), stop)


# ---- one bound function per contract function ------------------------------------------------

def lstm_cell(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
              b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None, *,
              dtype: np.dtype | type) -> tuple[tol.Bound, tol.Bound]:
    """Bounds on lstm_cell's (h', c') (lstm.cell)."""
    dtype = np.dtype(dtype)
    s = step(x, h, c, w_ih, w_hh, b_ih, b_hh, dtype)
    return E.as_bound(s.h_new, "lstm_cell h'", dtype), E.as_bound(s.c_new, "lstm_cell c'", dtype)


def vjp_lstm_cell(g: Sequence[np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray,
                  w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                  b_hh: np.ndarray | None = None, *,
                  dtype: np.dtype | type) -> tuple[tol.Bound | None, ...]:
    """Bounds on vjp_lstm_cell's (∂x, ∂h, ∂c, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh) for cotangents
    g = (gh, gc) (lstm.cell, step 5); None for an absent bias."""
    dtype = np.dtype(dtype)
    s = step(x, h, c, w_ih, w_hh, b_ih, b_hh, dtype)
    dx, (dh, dc), grads = step_backward((exact(g[0]), exact(g[1])), s, w_ih, w_hh, dtype)
    return E.gradient_bounds("vjp_lstm_cell", dtype, (("dx", dx), ("dh", dh), ("dc", dc)), grads,
                             ("weight_ih", "weight_hh"), b_ih, b_hh)


def lstm_layer(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
               b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None, *,
               dtype: np.dtype | type,
               w_hr: np.ndarray | None = None) -> tuple[tol.Bound, tol.Bound, tol.Bound]:
    """Bounds on lstm_layer's (y, h_T, c_T) (lstm.layer); with ``w_hr``, on the projected
    layer's (lstm.cell.projection run over time): the smaller of the running worst-case bound
    and the first-order probabilistic one (spec/tolerances.md, "Bounds at production scale")."""
    dtype = np.dtype(dtype)
    traj = P.lstm(np.asarray(x, dtype=np.float64), np.asarray(h0, dtype=np.float64),
                  np.asarray(c0, dtype=np.float64), w_ih, w_hh, b_ih, b_hh, w_hr)

    def worst(stop: E.Stop) -> list[tuple[np.ndarray, ...]]:
        return [(s.h_new.error, s.c_new.error)
                for s in _layer(x, h0, c0, w_ih, w_hh, b_ih, b_hh, dtype, w_hr, stop)]

    b = P.layer_bounds(traj, dtype, worst, "lstm_layer", ("y", "h_T", "c_T"),
                       P.roundings(traj.y.shape[0] * traj.y.shape[1], w_ih, w_hh, w_hr))
    return b[0], b[1], b[2]


def vjp_lstm_layer(g: Sequence[np.ndarray], x: np.ndarray, h0: np.ndarray, c0: np.ndarray,
                   w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                   b_hh: np.ndarray | None = None, *, dtype: np.dtype | type,
                   w_hr: np.ndarray | None = None) -> tuple[tol.Bound | None, ...]:
    """Bounds on vjp_lstm_layer's (∂x, ∂h0, ∂c0, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh) for cotangents
    g = (gy, ghT, gcT); with ``w_hr``, (∂x, ∂h0, ∂c0, ∂w_ih, ∂w_hh, ∂w_hr, ∂b_ih, ∂b_hh): the
    running worst-case bound, and where it is infinite or not run the first-order probabilistic
    one (propagation.where_vacuous; spec/tolerances.md, "Bounds at production scale")."""
    dtype = np.dtype(dtype)
    x, h0, c0 = (np.asarray(a, dtype=np.float64) for a in (x, h0, c0))
    gy, ghT, gcT = (np.asarray(a, dtype=np.float64) for a in g)
    tape: list[P.LSTMTape] = []
    traj = P.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, tape=tape)
    adj = BP.lstm(traj, tape, x, None, h0, w_ih, w_hh, w_hr, gy, None, ghT, gcT,
                  unit=tol.unit_roundoff(dtype))
    weights = ("weight_ih", "weight_hh", *(() if w_hr is None else ("weight_hr",)))
    steps = _layer(x, h0, c0, w_ih, w_hh, b_ih, b_hh, dtype, w_hr, BP.worst_case_stop(traj, dtype))
    worst = None
    if len(steps) == x.shape[0]:
        dx, (dh0, dc0), grads = E.run_backward(
            lambda g_t, s: step_backward(g_t, s, w_ih, w_hh, dtype, w_hr), exact(gy),
            (exact(ghT), exact(gcT)), steps, dtype)
        worst = E.gradient_bounds("vjp_lstm_layer", dtype, (("dx", dx), ("dh0", dh0), ("dc0", dc0)),
                                  grads, weights, b_ih, b_hh)
    names = ("dx", "dh0", "dc0", *("d" + w.replace("weight_", "w_") for w in weights), "db_ih",
             "db_hh")
    return BP.gradient_bounds("vjp_lstm_layer", dtype, names, adj, weights, b_ih, b_hh,
                              BP.rows_ok(traj, dtype, *g), worst,
                              P.roundings(x.shape[0] * x.shape[1], w_ih, w_hh, w_hr))


def lstm_cell_projection(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                         w_hh: np.ndarray, w_hr: np.ndarray, b_ih: np.ndarray | None = None,
                         b_hh: np.ndarray | None = None, *,
                         dtype: np.dtype | type) -> tuple[tol.Bound, tol.Bound]:
    """Bounds on lstm_cell_projection's (h', c') (lstm.cell.projection): the projected step."""
    dtype = np.dtype(dtype)
    s = step(x, h, c, w_ih, w_hh, b_ih, b_hh, dtype, w_hr)
    return (E.as_bound(s.h_new, "lstm_cell_projection h'", dtype),
            E.as_bound(s.c_new, "lstm_cell_projection c'", dtype))


def vjp_lstm_cell_projection(g: Sequence[np.ndarray], x: np.ndarray, h: np.ndarray,
                             c: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, w_hr: np.ndarray,
                             b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None, *,
                             dtype: np.dtype | type) -> tuple[tol.Bound | None, ...]:
    """Bounds on vjp_lstm_cell_projection's (∂x, ∂h, ∂c, ∂w_ih, ∂w_hh, ∂w_hr, ∂b_ih, ∂b_hh) for
    cotangents g = (gh, gc) (lstm.cell.projection)."""
    dtype = np.dtype(dtype)
    s = step(x, h, c, w_ih, w_hh, b_ih, b_hh, dtype, w_hr)
    dx, (dh, dc), grads = step_backward((exact(g[0]), exact(g[1])), s, w_ih, w_hh, dtype, w_hr)
    return E.gradient_bounds("vjp_lstm_cell_projection", dtype,
                             (("dx", dx), ("dh", dh), ("dc", dc)), grads,
                             ("weight_ih", "weight_hh", "weight_hr"), b_ih, b_hh)
