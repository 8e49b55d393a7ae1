"""Reference for spec/gru.md: the GRU cell in seed 000's notation, with its two placements of the
reset gate and two conventions for the update gate, PyTorch's layout of it, a sequence run, and
backpropagation through time.

Seed 000 (三、1) writes the cell for a minibatch in the row-vector convention, X (n, d) times
W_x· (d, h); seed 001 (§6.2) writes the same cell in column vectors, U_· x_t + W_· h_{t−1}. The
seeds' candidate state resets the state *before* the matmul, (R ⊙ H) W_hh; PyTorch resets it
*after*, R ⊙ (H W_hh + b_hh) (seed 001 §6.2.1 notes the difference). PyTorch stacks the gates'
weights as rows of ``w_ih`` (3h, d) and ``w_hh`` (3h, h) in the block order r, z, n (n is the
seeds' candidate H̃) and has two biases ``b_ih``, ``b_hh`` (3h,); :func:`params_from_torch` and
:func:`grads_to_torch` convert between the layouts. The contract-facing functions
(:func:`gru_cell`, :func:`gru_layer`, … in PyTorch's layout) convert and call the seed-notation
ones.

Everything smooth here accepts complex arrays, so complex-step differentiation applies, and also
:class:`ErrorBounded` values: evaluating the same formulas on those yields the tolerance of a
float32/float64 implementation (a running error bound, derived in spec/gru.md "Tolerance").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from nnspec.checks.bounds import rules as tol

Cell = Callable[..., Any]


class Params(NamedTuple):
    """Seed 000's parameters in its row-vector convention: W_x· (d, h), W_h· (h, h), b_· (h,) for
    the reset gate r, the update gate z and the candidate state h.

    The seeds have one candidate bias, b_h. PyTorch has two, one outside the reset (its b_in) and
    one inside (its b_hn); b_h holds the first and b_hh the second. The textbook cell only sees
    their sum, the seeds' b_h; the seeds' own parameters are those with b_hh = 0.
    """

    W_xr: Any
    W_hr: Any
    b_r: Any
    W_xz: Any
    W_hz: Any
    b_z: Any
    W_xh: Any
    W_hh: Any
    b_h: Any
    b_hh: Any


def sigmoid(a: Any) -> Any:
    """σ(a) = 1/(1 + e^(−a)), evaluated so that exp never overflows; accepts complex a.

    For Re a < 0 it uses the equal form e^a/(1 + e^a); both branches are analytic, so the complex
    step sees σ' = σ(1 − σ). An :class:`ErrorBounded` argument evaluates its own bound.
    """
    if isinstance(a, ErrorBounded):
        return a.sigmoid()
    a = np.asarray(a)
    negative = a.real < 0
    e = np.exp(np.where(negative, a, -a))
    return np.where(negative, e / (1 + e), 1 / (1 + e))


def tanh(a: Any) -> Any:
    """tanh(a); accepts complex a, and an :class:`ErrorBounded` argument evaluates its own bound."""
    if isinstance(a, ErrorBounded):
        return a.tanh()
    return np.tanh(a)


def sigmoid_slope(a: Any) -> Any:
    """σ'(a) = σ(a)(1 − σ(a)), evaluated as σ(a)σ(−a), which keeps its relative accuracy where σ
    saturates (1 − σ(a) computed from σ(a) does not); accepts complex a and ErrorBounded."""
    if isinstance(a, ErrorBounded):
        return a.slope(sigmoid_slope, SIGMOID_CURVATURE)
    return sigmoid(a) * sigmoid(-a)


def tanh_slope(a: Any) -> Any:
    """tanh'(a) = 1 − tanh²(a), evaluated as 4σ(2a)σ(−2a) for the same reason as
    :func:`sigmoid_slope`; accepts complex a and ErrorBounded."""
    if isinstance(a, ErrorBounded):
        return a.slope(tanh_slope, TANH_CURVATURE)
    return 4 * sigmoid(2 * a) * sigmoid(-2 * a)


#: max |σ''| = 1/(6√3) and max |tanh''| = 4/(3√3), reached at σ = 1/2 ± 1/(2√3), tanh = ±1/√3.
SIGMOID_CURVATURE = 1 / (6 * np.sqrt(3))
TANH_CURVATURE = 4 / (3 * np.sqrt(3))


# ---- seed 000's notation ---------------------------------------------------------------------

def gate_pre_activations(X: Any, H: Any, p: Params) -> tuple[Any, Any]:
    """A_r = X W_xr + H W_hr + b_r, A_z = X W_xz + H W_hz + b_z, each (n, h)."""
    return X @ p.W_xr + H @ p.W_hr + p.b_r, X @ p.W_xz + H @ p.W_hz + p.b_z


def gates(X: Any, H: Any, p: Params) -> tuple[Any, Any]:
    """R = σ(X W_xr + H W_hr + b_r), Z = σ(X W_xz + H W_hz + b_z) (seed 000 三、1, seed 001
    §6.2.3): the reset and update gates, each (n, h)."""
    A_r, A_z = gate_pre_activations(X, H, p)
    return sigmoid(A_r), sigmoid(A_z)


def cell_textbook(X: Any, H: Any, p: Params) -> Any:
    """gru.cell.textbook — H̃ = tanh(X W_xh + (R ⊙ H_{t−1}) W_hh + b_h),
    H_t = Z ⊙ H_{t−1} + (1 − Z) ⊙ H̃ (seed 000 三、1; seed 001 §6.2.4 in column vectors).

    R, Z are those of :func:`gates`; the candidate's bias is b_h + b_hh. X = X_t: (n, d),
    H = H_{t−1}: (n, h) → H_t: (n, h).
    """
    R, Z = gates(X, H, p)
    H_tilde = tanh(X @ p.W_xh + (R * H) @ p.W_hh + p.b_h + p.b_hh)
    return Z * H + (1 - Z) * H_tilde


def cell_textbook_vjp(G: Any, X: Any, H: Any, p: Params) -> tuple[Any, Any, Params]:
    """gru.cell.textbook — backward: cotangent G of H_t → (∂X, ∂H, ∂params).

    With A_k the pre-activation of gate k and S = R ⊙ H: ∂A_h = G ⊙ (1 − Z) ⊙ tanh'(A_h),
    ∂A_z = G ⊙ (H − H̃) ⊙ σ'(A_z), ∂S = ∂A_h W_hhᵀ, ∂A_r = ∂S ⊙ H ⊙ σ'(A_r); then
    ∂X = Σ_k ∂A_k W_xkᵀ, ∂H = G ⊙ Z + ∂S ⊙ R + ∂A_r W_hrᵀ + ∂A_z W_hzᵀ, ∂W_xk = Xᵀ ∂A_k,
    ∂W_hr = Hᵀ ∂A_r, ∂W_hz = Hᵀ ∂A_z, ∂W_hh = Sᵀ ∂A_h, ∂b_k = Σ_n ∂A_k (b_h and b_hh alike).
    """
    A_r, A_z = gate_pre_activations(X, H, p)
    R, Z = sigmoid(A_r), sigmoid(A_z)
    S = R * H
    A_h = X @ p.W_xh + S @ p.W_hh + p.b_h + p.b_hh
    H_tilde = tanh(A_h)
    dA_h = G * (1 - Z) * tanh_slope(A_h)
    dA_z = G * (H - H_tilde) * sigmoid_slope(A_z)
    dS = dA_h @ p.W_hh.T
    dA_r = dS * H * sigmoid_slope(A_r)
    dX = dA_r @ p.W_xr.T + dA_z @ p.W_xz.T + dA_h @ p.W_xh.T
    dH = G * Z + dS * R + dA_r @ p.W_hr.T + dA_z @ p.W_hz.T
    db_h = dA_h.sum(axis=0)
    dp = Params(X.T @ dA_r, H.T @ dA_r, dA_r.sum(axis=0),
                X.T @ dA_z, H.T @ dA_z, dA_z.sum(axis=0),
                X.T @ dA_h, S.T @ dA_h, db_h, db_h)
    return dX, dH, dp


def cell_pytorch(X: Any, H: Any, p: Params) -> Any:
    """gru.cell.pytorch — H̃ = tanh(X W_xh + b_h + R ⊙ (H_{t−1} W_hh + b_hh)),
    H_t = Z ⊙ H_{t−1} + (1 − Z) ⊙ H̃ (seed 001 §6.2.1, "PyTorch中实现的候选隐状态更新方式").

    The reset gate scales the state's contribution after the matmul, its bias b_hh included
    (nn.GRUCell's n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))). Shapes as :func:`cell_textbook`.
    """
    R, Z = gates(X, H, p)
    H_tilde = tanh(X @ p.W_xh + p.b_h + R * (H @ p.W_hh + p.b_hh))
    return Z * H + (1 - Z) * H_tilde


def cell_pytorch_vjp(G: Any, X: Any, H: Any, p: Params) -> tuple[Any, Any, Params]:
    """gru.cell.pytorch — backward: cotangent G of H_t → (∂X, ∂H, ∂params).

    With A_k the pre-activation of gate k and A_hh = H W_hh + b_hh: ∂A_h = G ⊙ (1 − Z) ⊙
    tanh'(A_h), ∂A_z = G ⊙ (H − H̃) ⊙ σ'(A_z), ∂A_hh = ∂A_h ⊙ R, ∂A_r = ∂A_h ⊙ A_hh ⊙ σ'(A_r);
    then ∂X = Σ_k ∂A_k W_xkᵀ, ∂H = G ⊙ Z + ∂A_r W_hrᵀ + ∂A_z W_hzᵀ + ∂A_hh W_hhᵀ,
    ∂W_xk = Xᵀ ∂A_k, ∂W_hr = Hᵀ ∂A_r, ∂W_hz = Hᵀ ∂A_z, ∂W_hh = Hᵀ ∂A_hh, ∂b_r, ∂b_z, ∂b_h = Σ_n of
    ∂A_r, ∂A_z, ∂A_h and ∂b_hh = Σ_n ∂A_hh.
    """
    A_r, A_z = gate_pre_activations(X, H, p)
    R, Z = sigmoid(A_r), sigmoid(A_z)
    A_hh = H @ p.W_hh + p.b_hh
    A_h = X @ p.W_xh + p.b_h + R * A_hh
    H_tilde = tanh(A_h)
    dA_h = G * (1 - Z) * tanh_slope(A_h)
    dA_z = G * (H - H_tilde) * sigmoid_slope(A_z)
    dA_hh = dA_h * R
    dA_r = dA_h * A_hh * sigmoid_slope(A_r)
    dX = dA_r @ p.W_xr.T + dA_z @ p.W_xz.T + dA_h @ p.W_xh.T
    dH = G * Z + dA_r @ p.W_hr.T + dA_z @ p.W_hz.T + dA_hh @ p.W_hh.T
    dp = Params(X.T @ dA_r, H.T @ dA_r, dA_r.sum(axis=0),
                X.T @ dA_z, H.T @ dA_z, dA_z.sum(axis=0),
                X.T @ dA_h, H.T @ dA_hh, dA_h.sum(axis=0), dA_hh.sum(axis=0))
    return dX, dH, dp


def cell_flipped(X: Any, H: Any, p: Params) -> Any:
    """gru.update.flipped — H_t = (1 − Z) ⊙ H_{t−1} + Z ⊙ H̃, with PyTorch's candidate
    H̃ = tanh(X W_xh + b_h + R ⊙ (H_{t−1} W_hh + b_hh)).

    The update gate's roles are swapped: Z → 1 takes the candidate, not the old state (Chung et
    al. 2014; PaddlePaddle's gru_unit with origin_mode=False). Shapes as :func:`cell_textbook`.
    """
    R, Z = gates(X, H, p)
    H_tilde = tanh(X @ p.W_xh + p.b_h + R * (H @ p.W_hh + p.b_hh))
    return (1 - Z) * H + Z * H_tilde


def layer(cell: Cell, X: Any, H0: Any, p: Params) -> tuple[Any, Any]:
    """Run ``cell`` over a sequence: H_t = cell(X_t, H_{t−1}, p) for t = 1..T.

    X: (T, n, d), H0: (n, h) → (Y, H_T) with Y = (H_1, …, H_T): (T, n, h).
    """
    H = H0
    Y = []
    for X_t in X:
        H = cell(X_t, H, p)
        Y.append(H)
    return np.stack(Y), H


def layer_vjp(cell: Cell, cell_vjp: Cell, G_Y: Any, G_HT: Any, X: Any, H0: Any,
              p: Params) -> tuple[Any, Any, Params]:
    """Backpropagation through time for :func:`layer`: cotangents G_Y of Y and G_HT of H_T →
    (∂X, ∂H0, ∂params).

    The state H_t receives the cotangent G_Y[t] of its output plus what flows back from step
    t + 1 (G_HT after the last step); each step's ∂params add up, since the parameters are
    shared over time (seed 001 §6.1.1).
    """
    states = [H0]
    for X_t in X:
        states.append(cell(X_t, states[-1], p))
    G_H = G_HT
    dX, dps = [], []
    for t in reversed(range(len(X))):
        dX_t, G_H, dp_t = cell_vjp(G_Y[t] + G_H, X[t], states[t], p)
        dX.append(dX_t)
        dps.append(dp_t)
    dp = Params(*(sum(parts) for parts in zip(*dps, strict=True)))
    return np.stack(dX[::-1]), G_H, dp


# ---- PyTorch's layout ------------------------------------------------------------------------

def _check_args(x: Any, h: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, *,
                sequence: bool) -> None:
    if np.ndim(w_hh) != 2 or np.shape(w_hh)[0] != 3 * np.shape(w_hh)[1]:
        raise ValueError(f"w_hh must have shape (3·hidden, hidden), got {np.shape(w_hh)}")
    hidden = np.shape(w_hh)[1]
    if np.ndim(w_ih) != 2 or np.shape(w_ih)[0] != 3 * hidden:
        raise ValueError(f"w_ih must have shape (3·hidden, input) = ({3 * hidden}, input), "
                         f"got {np.shape(w_ih)}")
    n_input = np.shape(w_ih)[1]
    ndim = 3 if sequence else 2
    if np.ndim(x) != ndim or np.shape(x)[-1] != n_input or (sequence and np.shape(x)[0] < 1):
        want = "(T ≥ 1, batch, " if sequence else "(batch, "
        raise ValueError(f"x must have shape {want}{n_input}), got {np.shape(x)}")
    batch = np.shape(x)[-2]
    state = "h0" if sequence else "h"
    if np.shape(h) != (batch, hidden):
        raise ValueError(f"{state} must have shape (batch, hidden) = {(batch, hidden)}, "
                         f"got {np.shape(h)}")
    for bname, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and np.shape(b) != (3 * hidden,):
            raise ValueError(f"{bname} must be None or have shape (3·hidden,) = ({3 * hidden},), "
                             f"got {np.shape(b)}")


def params_from_torch(w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None) -> Params:
    """PyTorch's layout → seed 000's parameters.

    Row block k of w_ih (blocks r, z, n, each (h, d)) is W_xkᵀ, with n ↦ the seeds' h; likewise
    w_hh's blocks are W_hkᵀ. The gates' biases add, b_r = b_ir + b_hr and b_z = b_iz + b_hz; the
    candidate's stay apart, b_h = b_in and b_hh = b_hn. None counts as zero.
    """
    hidden = w_hh.shape[1]
    r, z, n = (slice(k * hidden, (k + 1) * hidden) for k in range(3))
    zero = np.zeros(3 * hidden)
    b_i = zero if b_ih is None else b_ih
    b_h = zero if b_hh is None else b_hh
    return Params(w_ih[r].T, w_hh[r].T, b_i[r] + b_h[r],
                  w_ih[z].T, w_hh[z].T, b_i[z] + b_h[z],
                  w_ih[n].T, w_hh[n].T, b_i[n], b_h[n])


def grads_to_torch(dp: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seed-notation gradients → PyTorch's (∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh): the transpose of
    :func:`params_from_torch`. Since b_r = b_ir + b_hr, both receive ∂b_r (likewise for z)."""
    dw_ih = np.concatenate([dp.W_xr.T, dp.W_xz.T, dp.W_xh.T])
    dw_hh = np.concatenate([dp.W_hr.T, dp.W_hz.T, dp.W_hh.T])
    db_ih = np.concatenate([dp.b_r, dp.b_z, dp.b_h])
    db_hh = np.concatenate([dp.b_r, dp.b_z, dp.b_hh])
    return dw_ih, dw_hh, db_ih, db_hh


def _torch_grads(dp: Params, b_ih: Any, b_hh: Any) -> tuple[Any, ...]:
    dw_ih, dw_hh, db_ih, db_hh = grads_to_torch(dp)
    return dw_ih, dw_hh, None if b_ih is None else db_ih, None if b_hh is None else db_hh


def gru_cell(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
             b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None) -> np.ndarray:
    """gru.cell.pytorch — nn.GRUCell: h' = cell_pytorch(x, h, params_from_torch(w_ih, …)), i.e.
    r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h.

    x: (B, D), h: (B, H), w_ih: (3H, D), w_hh: (3H, H), b_ih, b_hh: (3H,) or None → h': (B, H).
    """
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    return cell_pytorch(x, h, params_from_torch(w_ih, w_hh, b_ih, b_hh))


def gru_cell_vjp(gh: np.ndarray, x: np.ndarray, h: np.ndarray, w_ih: np.ndarray,
                 w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                 b_hh: np.ndarray | None = None) -> tuple[np.ndarray | None, ...]:
    """gru.cell.pytorch — backward in nn.GRUCell's layout: gh → (∂x, ∂h, ∂w_ih, ∂w_hh, ∂b_ih,
    ∂b_hh), None for an absent bias (:func:`cell_pytorch_vjp` mapped by :func:`grads_to_torch`)."""
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    dx, dh, dp = cell_pytorch_vjp(gh, x, h, params_from_torch(w_ih, w_hh, b_ih, b_hh))
    return (dx, dh, *_torch_grads(dp, b_ih, b_hh))


def gru_cell_textbook(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                      b_ih: np.ndarray | None = None,
                      b_hh: np.ndarray | None = None) -> np.ndarray:
    """gru.cell.textbook — the seeds' cell in nn.GRUCell's layout:
    n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn), r, z and h' as in :func:`gru_cell`.

    Shapes as :func:`gru_cell`.
    """
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    return cell_textbook(x, h, params_from_torch(w_ih, w_hh, b_ih, b_hh))


def gru_cell_textbook_vjp(gh: np.ndarray, x: np.ndarray, h: np.ndarray, w_ih: np.ndarray,
                          w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                          b_hh: np.ndarray | None = None) -> tuple[np.ndarray | None, ...]:
    """gru.cell.textbook — backward in nn.GRUCell's layout, as :func:`gru_cell_vjp`."""
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    dx, dh, dp = cell_textbook_vjp(gh, x, h, params_from_torch(w_ih, w_hh, b_ih, b_hh))
    return (dx, dh, *_torch_grads(dp, b_ih, b_hh))


def gru_cell_flipped(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                     b_ih: np.ndarray | None = None,
                     b_hh: np.ndarray | None = None) -> np.ndarray:
    """gru.update.flipped — in nn.GRUCell's layout: h' = z ⊙ n + (1 − z) ⊙ h, r, z, n as in
    :func:`gru_cell`. Shapes as :func:`gru_cell`."""
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    return cell_flipped(x, h, params_from_torch(w_ih, w_hh, b_ih, b_hh))


def gru_layer(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
              b_ih: np.ndarray | None = None,
              b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """gru.layer — nn.GRU with num_layers=1, batch_first=False: h_t = gru_cell(x_t, h_{t−1}) for
    t = 1..T, y = (h_1, …, h_T).

    x: (T, B, D), h0: (B, H), w_ih: (3H, D), w_hh: (3H, H), b_ih, b_hh: (3H,) or None →
    (y: (T, B, H), h_T: (B, H)).
    """
    _check_args(x, h0, w_ih, w_hh, b_ih, b_hh, sequence=True)
    return layer(cell_pytorch, x, h0, params_from_torch(w_ih, w_hh, b_ih, b_hh))


def gru_layer_vjp(g: tuple[np.ndarray, np.ndarray], x: np.ndarray, h0: np.ndarray,
                  w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                  b_hh: np.ndarray | None = None) -> tuple[np.ndarray | None, ...]:
    """gru.layer — backpropagation through time: g = (gy, ghT) → (∂x, ∂h0, ∂w_ih, ∂w_hh, ∂b_ih,
    ∂b_hh), None for an absent bias (:func:`layer_vjp` of :func:`cell_pytorch_vjp`)."""
    _check_args(x, h0, w_ih, w_hh, b_ih, b_hh, sequence=True)
    gy, ghT = g
    dx, dh0, dp = layer_vjp(cell_pytorch, cell_pytorch_vjp, gy, ghT, x, h0,
                            params_from_torch(w_ih, w_hh, b_ih, b_hh))
    return (dx, dh0, *_torch_grads(dp, b_ih, b_hh))


# ---- known bugs ------------------------------------------------------------------------------

def gate_order_zrn(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                   b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None) -> np.ndarray:
    """gru.bug.gate_order_zrn — PyTorch's blocks (r, z, n) read as (z, r, n): the first block
    drives the update gate and the second the reset gate (ONNX's GRU stores its blocks as z, r, h,
    so ONNX weights loaded without reordering do exactly this)."""
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    hidden = np.shape(w_hh)[1]
    swap = np.r_[hidden:2 * hidden, 0:hidden, 2 * hidden:3 * hidden]
    return gru_cell(x, h, w_ih[swap], w_hh[swap],
                    None if b_ih is None else b_ih[swap], None if b_hh is None else b_hh[swap])


def reset_on_input(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                   b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None) -> np.ndarray:
    """gru.bug.reset_on_input — the reset gate scales the input's part of the candidate instead
    of the state's: H̃ = tanh(R ⊙ (X W_xh + b_h) + H W_hh + b_hh)."""
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    p = params_from_torch(w_ih, w_hh, b_ih, b_hh)
    R, Z = gates(x, h, p)
    H_tilde = tanh(R * (x @ p.W_xh + p.b_h) + h @ p.W_hh + p.b_hh)
    return Z * h + (1 - Z) * H_tilde


def bias_hn_outside_reset(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                          b_ih: np.ndarray | None = None,
                          b_hh: np.ndarray | None = None) -> np.ndarray:
    """gru.bug.bias_hn_outside_reset — PyTorch's reset placement, but b_hn added outside the
    reset, H̃ = tanh(X W_xh + b_h + b_hh + R ⊙ (H W_hh)): what merging b_ih and b_hh into one
    bias vector does to the candidate."""
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    p = params_from_torch(w_ih, w_hh, b_ih, b_hh)
    R, Z = gates(x, h, p)
    H_tilde = tanh(x @ p.W_xh + p.b_h + p.b_hh + R * (h @ p.W_hh))
    return Z * h + (1 - Z) * H_tilde


# ---- tolerances: a running error bound -------------------------------------------------------

class ErrorBounded:
    """A float64 value with a bound on how far an implementation computing in ``dtype`` may be
    from it (first-order running error analysis; spec/gru.md, "How the tolerance is derived").

    Between two activations a value is a polynomial in the block's inputs. ``e`` bounds the error
    the block inherited from its inputs (propagated through the absolute values of the partial
    derivatives), ``m`` is the block evaluated with every term replaced by its absolute value
    (Σ|terms|) and ``k`` counts its operations, so the block's own rounding in any evaluation
    order is at most (γ_k + REORDER_ULPS·u)·m (Higham, Lemma 3.1). An activation closes the
    block: its input error moves its output by at most max|φ'| over the reachable interval, and
    the library function adds ELEMENTWISE_ULPS·u·|φ|.
    """

    # Makes NumPy's binary operators return NotImplemented, so ndarray ⊕ ErrorBounded reaches
    # the reflected methods below.
    __array_ufunc__ = None

    def __init__(self, v: Any, e: Any, m: Any, k: int, dtype: np.dtype) -> None:
        self.v = np.asarray(v, dtype=np.float64)
        self.e = np.asarray(e, dtype=np.float64)
        self.m = np.asarray(m, dtype=np.float64)
        self.k = k
        self.dtype = np.dtype(dtype)

    @classmethod
    def exact(cls, a: Any, dtype: np.dtype | type) -> ErrorBounded:
        """An input the implementation holds exactly (already rounded to its dtype)."""
        a = np.asarray(a, dtype=np.float64)
        return cls(a, np.zeros_like(a), np.abs(a), 0, np.dtype(dtype))

    def _lift(self, other: Any) -> ErrorBounded:
        return other if isinstance(other, ErrorBounded) else ErrorBounded.exact(other, self.dtype)

    @property
    def _eta(self) -> float:
        # Underflow: an operation may also be off by the smallest normal number (Higham §2.1,
        # fl(x op y) = (x op y)(1 + δ) + η), which covers flushing subnormal results to zero.
        return float(np.finfo(self.dtype).tiny)

    def __add__(self, other: Any) -> ErrorBounded:
        o = self._lift(other)
        return ErrorBounded(self.v + o.v, self.e + o.e + self._eta, self.m + o.m,
                            self.k + o.k + 1, self.dtype)

    __radd__ = __add__

    def __neg__(self) -> ErrorBounded:
        return ErrorBounded(-self.v, self.e, self.m, self.k, self.dtype)

    def __sub__(self, other: Any) -> ErrorBounded:
        return self + (-self._lift(other))

    def __rsub__(self, other: Any) -> ErrorBounded:
        return self._lift(other) + (-self)

    def __mul__(self, other: Any) -> ErrorBounded:
        o = self._lift(other)
        return ErrorBounded(self.v * o.v, np.abs(self.v) * o.e + self.e * np.abs(o.v) + self._eta,
                            self.m * o.m, self.k + o.k + 1, self.dtype)

    __rmul__ = __mul__

    def __matmul__(self, other: Any) -> ErrorBounded:
        o = self._lift(other)
        n = self.v.shape[-1]
        return ErrorBounded(self.v @ o.v,
                            np.abs(self.v) @ o.e + self.e @ np.abs(o.v) + 2 * n * self._eta,
                            self.m @ o.m, self.k + o.k + n, self.dtype)

    def __rmatmul__(self, other: Any) -> ErrorBounded:
        return self._lift(other) @ self

    def __getitem__(self, index: Any) -> ErrorBounded:
        return ErrorBounded(self.v[index], self.e[index], self.m[index], self.k, self.dtype)

    def __iter__(self) -> Iterator[ErrorBounded]:
        return (self[i] for i in range(len(self.v)))

    def __len__(self) -> int:
        return len(self.v)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.v.shape

    @property
    def T(self) -> ErrorBounded:
        return ErrorBounded(self.v.T, self.e.T, self.m.T, self.k, self.dtype)

    def sum(self, axis: int) -> ErrorBounded:
        n = self.v.shape[axis]
        return ErrorBounded(self.v.sum(axis), self.e.sum(axis) + n * self._eta, self.m.sum(axis),
                            self.k + n - 1, self.dtype)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func is not np.stack:
            return NotImplemented
        parts = [self._lift(a) for a in args[0]]
        return ErrorBounded(*(np.stack([getattr(a, f) for a in parts], **kwargs)
                              for f in ("v", "e", "m")), max(a.k for a in parts), self.dtype)

    def bound(self) -> np.ndarray:
        """The bound on |implementation − value|: inherited error plus the block's rounding."""
        if self.k == 0:
            return self.e
        u = tol.unit_roundoff(self.dtype)
        return self.e + (tol.gamma(self.k, self.dtype) + tol.REORDER_ULPS * u) * self.m

    def _activation(self, phi: Callable[[np.ndarray], np.ndarray],
                    max_slope: Callable[[np.ndarray], np.ndarray]) -> ErrorBounded:
        delta = self.bound()
        y = phi(self.v)
        # |φ'| decreases with |a| for σ and tanh: its maximum over [a − δ, a + δ] is at the point
        # of that interval closest to 0.
        reach = np.maximum(np.abs(self.v) - delta, 0.0)
        e = (max_slope(reach) * delta + tol.ELEMENTWISE_ULPS * tol.unit_roundoff(self.dtype) * np.abs(y)
             + self._eta)
        return ErrorBounded(y, e, np.abs(y), 0, self.dtype)

    # The slopes are evaluated at t ≥ 0 in forms that keep their relative accuracy where they
    # are tiny (σ(1 − σ) and 1 − tanh² would round to 0 long before they underflow).
    def sigmoid(self) -> ErrorBounded:
        """σ of the value: σ'(t) = e^(−t)/(1 + e^(−t))² ≤ 1/4."""
        return self._activation(sigmoid, lambda t: np.exp(-t) / (1 + np.exp(-t)) ** 2)

    def tanh(self) -> ErrorBounded:
        """tanh of the value: tanh'(t) = 4e^(−2t)/(1 + e^(−2t))² ≤ 1."""
        return self._activation(np.tanh, lambda t: 4 * np.exp(-2 * t) / (1 + np.exp(-2 * t)) ** 2)

    def slope(self, phi_prime: Callable[[np.ndarray], np.ndarray],
              curvature: float) -> ErrorBounded:
        """φ'(value) for φ = σ or tanh, as implementations obtain it from their output f
        (f(1 − f), 1 − f²): the input error moves it by ≤ max|φ''|·δ; f's own 16u error enters
        through |∂φ'/∂f| ≤ 2 and the formula cancels terms of size 1, adding ≤ REORDER_ULPS·u."""
        delta = self.bound()
        y = phi_prime(self.v)
        u = tol.unit_roundoff(self.dtype)
        e = (curvature * delta + (2 * tol.ELEMENTWISE_ULPS + tol.REORDER_ULPS) * u * (np.abs(y) + 1)
             + self._eta)
        return ErrorBounded(y, e, np.abs(y), 0, self.dtype)


def _bounded_params(w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, dtype: Any) -> Params:
    def lift(a: Any) -> Any:
        return None if a is None else ErrorBounded.exact(a, dtype)

    return params_from_torch(lift(w_ih), lift(w_hh), lift(b_ih), lift(b_hh))


def _as_bound(value: ErrorBounded, what: str) -> tol.Bound:
    u = tol.unit_roundoff(value.dtype)
    return tol.Bound(value.bound(),
                     f"running error bound of {what} (spec/gru.md): (γ_k + {tol.REORDER_ULPS:g}u)"
                     f"·Σ|terms| per block, max|φ'|·δ + {tol.ELEMENTWISE_ULPS:g}u·|φ| per "
                     f"activation, u={u:.3g} ({value.dtype})", u)


def cell_bound(cell: Cell, x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
               b_ih: np.ndarray | None, b_hh: np.ndarray | None,
               dtype: np.dtype | type) -> tol.Bound:
    """Per-element bound on |h' − reference| for an implementation of ``cell`` (a seed-notation
    cell: cell_pytorch, cell_textbook, cell_flipped) computing in ``dtype``, in PyTorch's layout."""
    out = cell(ErrorBounded.exact(x, dtype), ErrorBounded.exact(h, dtype),
               _bounded_params(w_ih, w_hh, b_ih, b_hh, dtype))
    return _as_bound(out, cell.__name__)


def _grad_bounds(dx: ErrorBounded, dh: ErrorBounded, dp: Params, b_ih: Any, b_hh: Any,
                 what: str) -> tuple[tol.Bound | None, ...]:
    dw_ih, dw_hh, db_ih, db_hh = grads_to_torch(Params(*(d.bound() for d in dp)))
    u = tol.unit_roundoff(dx.dtype)
    rule = _as_bound(dx, what).rule
    return (_as_bound(dx, what), _as_bound(dh, what), tol.Bound(dw_ih, rule, u),
            tol.Bound(dw_hh, rule, u), None if b_ih is None else tol.Bound(db_ih, rule, u),
            None if b_hh is None else tol.Bound(db_hh, rule, u))


def cell_vjp_bounds(cell_vjp: Cell, gh: np.ndarray, x: np.ndarray, h: np.ndarray,
                    w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None,
                    b_hh: np.ndarray | None, dtype: np.dtype | type) -> tuple[tol.Bound | None, ...]:
    """Bounds on the six gradients (∂x, ∂h, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh) of an implementation of
    ``cell_vjp`` (cell_pytorch_vjp or cell_textbook_vjp) in ``dtype``; None for an absent bias."""
    dx, dh, dp = cell_vjp(*(ErrorBounded.exact(a, dtype) for a in (gh, x, h)),
                          _bounded_params(w_ih, w_hh, b_ih, b_hh, dtype))
    return _grad_bounds(dx, dh, dp, b_ih, b_hh, cell_vjp.__name__)


def layer_bounds(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                 b_ih: np.ndarray | None, b_hh: np.ndarray | None,
                 dtype: np.dtype | type) -> tuple[tol.Bound, tol.Bound]:
    """Bounds on (y, h_T) of an implementation of gru_layer in ``dtype``: the running bound over
    time, where the error of h_{t−1} enters step t through the cell's partial derivatives."""
    y, hT = layer(cell_pytorch, ErrorBounded.exact(x, dtype), ErrorBounded.exact(h0, dtype),
                  _bounded_params(w_ih, w_hh, b_ih, b_hh, dtype))
    return _as_bound(y, "gru_layer"), _as_bound(hT, "gru_layer")


def layer_vjp_bounds(g: tuple[np.ndarray, np.ndarray], x: np.ndarray, h0: np.ndarray,
                     w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None,
                     b_hh: np.ndarray | None,
                     dtype: np.dtype | type) -> tuple[tol.Bound | None, ...]:
    """Bounds on the six gradients of an implementation of gru_layer's backward in ``dtype``."""
    gy, ghT = (ErrorBounded.exact(a, dtype) for a in g)
    dx, dh0, dp = layer_vjp(cell_pytorch, cell_pytorch_vjp, gy, ghT,
                            ErrorBounded.exact(x, dtype), ErrorBounded.exact(h0, dtype),
                            _bounded_params(w_ih, w_hh, b_ih, b_hh, dtype))
    return _grad_bounds(dx, dh0, dp, b_ih, b_hh, "gru_layer_vjp")
