"""gru.cell.pytorch, gru.cell.textbook, gru.update.flipped, gru.layer — the running error bounds
(spec/gru.md, "How the tolerance is derived"): the step of each variant stated in the engine's
rules (checks/bounds/engine.py) in PyTorch's layout (gate blocks r, z, n), forward and backward,
and carried over time by the engine.

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
from nnspec.checks.bounds import propagation as P
from nnspec.checks.bounds import rules as tol
from nnspec.checks.bounds.engine import Computed, exact

#: The variants of one step: where the reset gate acts, and which way the update gate points.
VARIANTS = ("pytorch", "textbook", "flipped")

#: The names of vjp_gru_cell's and vjp_gru_layer's outputs, in order.
CELL_GRADIENTS = ("dx", "dh", "dw_ih", "dw_hh", "db_ih", "db_hh")
LAYER_GRADIENTS = ("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh")

#: The weights whose gradients follow the inputs', in the contract's order.
WEIGHTS = ("weight_ih", "weight_hh")


class GRUStep(NamedTuple):
    """One step's inputs and the intermediate values an implementation computes, with bounds.
    ``A_hn`` = h W_hnᵀ + b_hn is the term PyTorch's reset gate scales (None in the textbook
    variant); ``S`` = r ⊙ h is the state the textbook variant feeds to W_hn (None otherwise)."""

    x: Computed
    h: Computed
    r: Computed
    z: Computed
    A_hn: Computed | None
    S: Computed | None
    n: Computed
    h_new: Computed

    @property
    def state(self) -> tuple[Computed]:
        return (self.h_new,)


def _rows(a: np.ndarray, k: int, H: int) -> np.ndarray:
    """Gate block k of a weight's rows or a bias."""
    return a[k * H:(k + 1) * H]


def _bias_rows(b: np.ndarray | None, k: int, H: int) -> np.ndarray | None:
    """Gate block k of a bias, None for an absent one."""
    return None if b is None else _rows(b, k, H)


def step(x: Computed, h: Computed, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None,
         b_hh: np.ndarray | None, dtype: np.dtype, variant: str = "pytorch") -> GRUStep:
    """r, z = σ(x W_iᵀ + h W_hᵀ + b_i + b_h) of blocks 0, 1 (each one sum, in any order), then

    - pytorch:  n = tanh((x W_inᵀ + b_in) + r ⊙ (h W_hnᵀ + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h;
    - textbook: n = tanh(x W_inᵀ + (r ⊙ h) W_hnᵀ + b_in + b_hn),    h' as pytorch;
    - flipped:  n as pytorch,                                       h' = (1 − z) ⊙ h + z ⊙ n.
    """
    H = w_hh.shape[1]

    def gate(k: int) -> Computed:
        return E.sigmoid(E.affine([(x, _rows(w_ih, k, H)), (h, _rows(w_hh, k, H))],
                                  [_bias_rows(b_ih, k, H), _bias_rows(b_hh, k, H)], dtype), dtype)

    def times(*factors: Computed) -> Computed:
        return E.product(*factors, dtype=dtype)

    r, z = gate(0), gate(1)
    A_hn: Computed | None = None
    S: Computed | None = None
    if variant == "textbook":
        S = times(r, h)
        A_n = E.affine([(x, _rows(w_ih, 2, H)), (S, _rows(w_hh, 2, H))],
                       [_bias_rows(b_ih, 2, H), _bias_rows(b_hh, 2, H)], dtype)
    else:
        A_hn = E.affine([(h, _rows(w_hh, 2, H))], [_bias_rows(b_hh, 2, H)], dtype)
        A_in = E.affine([(x, _rows(w_ih, 2, H))], [_bias_rows(b_ih, 2, H)], dtype)
        A_n = E.total(A_in, times(r, A_hn), dtype=dtype)
    n = E.tanh(A_n, dtype)
    keep, take = (E.one_minus(z, dtype), z) if variant == "flipped" else (z, E.one_minus(z, dtype))
    h_new = E.total(times(take, n), times(keep, h), dtype=dtype)
    return GRUStep(x, h, r, z, A_hn, S, n, h_new)


def step_backward(g: tuple[Computed, ...], s: GRUStep, w_ih: np.ndarray, w_hh: np.ndarray,
                  dtype: np.dtype) -> tuple[Computed, tuple[Computed], E.Gradients]:
    """The VJP of a pytorch or textbook step as autograd evaluates it from the saved forward
    values (spec/gru.md): ∂A_n = g (1 − z)(1 − n²), ∂A_z = g (h − n) z (1 − z), and

    - pytorch:  ∂A_hn = ∂A_n ⊙ r, ∂A_r = ∂A_n ⊙ A_hn ⊙ r (1 − r);
      ∂h = g z + [∂A_r, ∂A_z, ∂A_hn] w_hh;
    - textbook: ∂S = ∂A_n W_hn, ∂A_r = ∂S ⊙ h ⊙ r (1 − r); ∂h = g z + ∂S ⊙ r + [∂A_r, ∂A_z] W_h(r,z);

    ∂x = [∂A_r, ∂A_z, ∂A_n] w_ih in both → (∂x, (∂h,), open weight gradients)."""

    def times(*factors: Computed) -> Computed:
        return E.product(*factors, dtype=dtype)

    (gh,) = g
    H = w_hh.shape[1]
    dA_n = times(gh, E.one_minus(s.z, dtype), E.one_minus(times(s.n, s.n), dtype))
    dA_z = times(gh, E.total(s.h, E.negate(s.n), dtype=dtype), s.z, E.one_minus(s.z, dtype))
    if s.A_hn is not None:
        dA_hn = times(dA_n, s.r)
        dA_r = times(dA_n, s.A_hn, s.r, E.one_minus(s.r, dtype))
        d_ih = E.concatenate([dA_r, dA_z, dA_n])
        d_hh = E.concatenate([dA_r, dA_z, dA_hn])
        dh = E.total(times(gh, s.z), E.matmul(d_hh, w_hh, dtype), dtype=dtype)
        grads = E.Gradients(weight_ih=E.Accumulation.of(d_ih, s.x),
                            weight_hh=E.Accumulation.of(d_hh, s.h),
                            bias_ih=E.Accumulation.of(d_ih), bias_hh=E.Accumulation.of(d_hh))
        return E.matmul(d_ih, w_ih, dtype), (dh,), grads
    assert s.S is not None, "a textbook step keeps r ⊙ h"
    dS = E.matmul(dA_n, _rows(w_hh, 2, H), dtype)
    dA_r = times(dS, s.h, s.r, E.one_minus(s.r, dtype))
    d_ih = E.concatenate([dA_r, dA_z, dA_n])
    d_rz = E.concatenate([dA_r, dA_z])
    dh = E.total(times(gh, s.z), times(dS, s.r), E.matmul(d_rz, w_hh[:2 * H], dtype), dtype=dtype)
    bias = E.Accumulation.of(d_ih)
    grads = E.Gradients(weight_ih=E.Accumulation.of(d_ih, s.x),
                        weight_hh=E.Accumulation.rows_of([E.Accumulation.of(d_rz, s.h),
                                                          E.Accumulation.of(dA_n, s.S)]),
                        bias_ih=bias, bias_hh=bias)
    return E.matmul(d_ih, w_ih, dtype), (dh,), grads


def _cell(variant: str, x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
          b_ih: np.ndarray | None, b_hh: np.ndarray | None, dtype: np.dtype | type) -> tol.Bound:
    dtype = np.dtype(dtype)
    s = step(exact(x), exact(h), w_ih, w_hh, b_ih, b_hh, dtype, variant)
    return E.as_bound(s.h_new, f"GRU cell ({variant}) h'", dtype)


def _cell_vjp(variant: str, gh: np.ndarray, x: np.ndarray, h: np.ndarray, w_ih: np.ndarray,
              w_hh: np.ndarray, b_ih: np.ndarray | None, b_hh: np.ndarray | None,
              dtype: np.dtype | type) -> tuple[tol.Bound | None, ...]:
    dtype = np.dtype(dtype)
    s = step(exact(x), exact(h), w_ih, w_hh, b_ih, b_hh, dtype, variant)
    dx, (dh,), grads = step_backward((exact(gh),), s, w_ih, w_hh, dtype)
    return E.gradient_bounds(f"GRU cell ({variant}) VJP", dtype, (("dx", dx), ("dh", dh)), grads,
                             WEIGHTS, b_ih, b_hh)


# ---- one bound function per contract function ------------------------------------------------

def gru_cell(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
             b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None, *,
             dtype: np.dtype | type) -> tol.Bound:
    """Bound on gru_cell's h' (gru.cell.pytorch)."""
    return _cell("pytorch", x, h, w_ih, w_hh, b_ih, b_hh, dtype)


def gru_cell_textbook(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                      b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None, *,
                      dtype: np.dtype | type) -> tol.Bound:
    """Bound on gru_cell_textbook's h' (gru.cell.textbook)."""
    return _cell("textbook", x, h, w_ih, w_hh, b_ih, b_hh, dtype)


def gru_cell_flipped(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                     b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None, *,
                     dtype: np.dtype | type) -> tol.Bound:
    """Bound on the flipped-update cell's h' (gru.update.flipped)."""
    return _cell("flipped", x, h, w_ih, w_hh, b_ih, b_hh, dtype)


def vjp_gru_cell(gh: np.ndarray, x: np.ndarray, h: np.ndarray, w_ih: np.ndarray,
                 w_hh: np.ndarray, b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None,
                 *, dtype: np.dtype | type) -> tuple[tol.Bound | None, ...]:
    """Bounds on vjp_gru_cell's (∂x, ∂h, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh) (gru.cell.pytorch)."""
    return _cell_vjp("pytorch", gh, x, h, w_ih, w_hh, b_ih, b_hh, dtype)


def vjp_gru_cell_textbook(gh: np.ndarray, x: np.ndarray, h: np.ndarray, w_ih: np.ndarray,
                          w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                          b_hh: np.ndarray | None = None, *,
                          dtype: np.dtype | type) -> tuple[tol.Bound | None, ...]:
    """Bounds on vjp_gru_cell_textbook's six gradients (gru.cell.textbook)."""
    return _cell_vjp("textbook", gh, x, h, w_ih, w_hh, b_ih, b_hh, dtype)


def _layer(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
           b_ih: np.ndarray | None, b_hh: np.ndarray | None, dtype: np.dtype,
           stop: E.Stop | None = None) -> list[GRUStep]:
    return E.run(lambda x_t, state: step(x_t, state[0], w_ih, w_hh, b_ih, b_hh, dtype),
                 exact(x), (exact(h0),), stop)


def gru_layer(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
              b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None, *,
              dtype: np.dtype | type) -> tuple[tol.Bound, tol.Bound]:
    """Bounds on gru_layer's (y, h_T) (gru.layer): the smaller of the running worst-case bound,
    where the error of h_{t−1} enters step t through the step's own rules, and the first-order
    probabilistic one (spec/tolerances.md, "Bounds at production scale")."""
    dtype = np.dtype(dtype)
    traj = P.gru(np.asarray(x, dtype=np.float64), np.asarray(h0, dtype=np.float64), w_ih, w_hh,
                 b_ih, b_hh)

    def worst(stop: E.Stop) -> list[tuple[np.ndarray, ...]]:
        return [(s.h_new.error,) for s in _layer(x, h0, w_ih, w_hh, b_ih, b_hh, dtype, stop)]

    b = P.layer_bounds(traj, dtype, worst, "gru_layer", ("y", "h_T"),
                       P.roundings(traj.y.shape[0] * traj.y.shape[1], w_ih, w_hh))
    return b[0], b[1]


def vjp_gru_layer(g: Sequence[np.ndarray], x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray,
                  w_hh: np.ndarray, b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None,
                  *, dtype: np.dtype | type) -> tuple[tol.Bound | None, ...]:
    """Bounds on vjp_gru_layer's (∂x, ∂h0, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh) for cotangents
    g = (gy, ghT) (gru.layer, backpropagation through time): the running worst-case
    bound, and where it is infinite or not run the first-order probabilistic one
    (propagation.where_vacuous; spec/tolerances.md, "Bounds at production scale")."""
    dtype = np.dtype(dtype)
    x, h0 = np.asarray(x, dtype=np.float64), np.asarray(h0, dtype=np.float64)
    gy, ghT = (np.asarray(a, dtype=np.float64) for a in g)
    tape: list[P.GRUTape] = []
    traj = P.gru(x, h0, w_ih, w_hh, b_ih, b_hh, tape=tape)
    adj = BP.gru(traj, tape, x, None, h0, w_ih, w_hh, gy, None, ghT, unit=tol.unit_roundoff(dtype))
    steps = _layer(x, h0, w_ih, w_hh, b_ih, b_hh, dtype, BP.worst_case_stop(traj, dtype))
    worst = None
    if len(steps) == x.shape[0]:
        dx, (dh0,), grads = E.run_backward(
            lambda g_t, s: step_backward(g_t, s, w_ih, w_hh, dtype), exact(gy), (exact(ghT),),
            steps, dtype)
        worst = E.gradient_bounds("vjp_gru_layer", dtype, (("dx", dx), ("dh0", dh0)), grads,
                                  WEIGHTS, b_ih, b_hh)
    return BP.gradient_bounds("vjp_gru_layer", dtype, LAYER_GRADIENTS, adj, WEIGHTS, b_ih, b_hh,
                              BP.rows_ok(traj, dtype, *g), worst,
                              P.roundings(x.shape[0] * x.shape[1], w_ih, w_hh))
