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

The last section holds the variants frameworks ship (Flax NNX without b_hn, PaddlePaddle's
flipped reset-before cell, Keras's hard-sigmoid gates; CoreML's is gru.bug.bias_hn_outside_reset),
each in the contract's arguments so that the oracle can name it.

Everything smooth here accepts complex arrays, so complex-step differentiation applies. The
tolerance of an implementation (a running error bound, spec/gru.md "Tolerance") is derived in
nnspec.checks.bounds.gru, not here: the reference is the math alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from nnspec.reference.activations import (
    hard_sigmoid_keras2,
    hard_sigmoid_keras3,
    sigmoid,
    sigmoid_vjp,
    tanh,
    tanh_vjp,
)
from nnspec.reference.steps import store

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
    (dA_h,) = tanh_vjp(G * (1 - Z), A_h)
    (dA_z,) = sigmoid_vjp(G * (H - H_tilde), A_z)
    dS = dA_h @ p.W_hh.T
    (dA_r,) = sigmoid_vjp(dS * H, A_r)
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
    (dA_h,) = tanh_vjp(G * (1 - Z), A_h)
    (dA_z,) = sigmoid_vjp(G * (H - H_tilde), A_z)
    dA_hh = dA_h * R
    (dA_r,) = sigmoid_vjp(dA_h * A_hh, A_r)
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


def layer_pytorch(X: Any, H0: Any, p: Params) -> tuple[Any, Any]:
    """gru.layer — :func:`layer` of :func:`cell_pytorch`, computed as nn.GRU computes it.

    The input's share of every step's pre-activations, X_t [W_xr W_xz W_xh], is one matrix
    product over all T·n rows before the loop; each step then forms only H_{t−1} [W_hr W_hz W_hh]
    and applies cell_pytorch's equations to column blocks of the two, with its sums in its order:
    [R Z] = σ(XA_rz + HA_rz + [b_r b_z]), H̃ = tanh(XA_h + b_h + R ⊙ (HA_h + b_hh)),
    H_t = Z ⊙ H_{t−1} + (1 − Z) ⊙ H̃. Only the matrix products' blocking differs from
    layer(cell_pytorch, …), so the two agree to rounding. Shapes as :func:`layer`.
    """
    T, n, d = np.shape(X)
    h = np.shape(H0)[-1]
    W_x = np.concatenate([p.W_xr, p.W_xz, p.W_xh], axis=1)
    W_h = np.concatenate([p.W_hr, p.W_hz, p.W_hh], axis=1)
    b_rz = np.concatenate([p.b_r, p.b_z])
    XA = np.reshape(np.reshape(X, (T * n, d)) @ W_x, (T, n, 3 * h))
    # The in-place sums below need HA in the result's dtype: complex where only x or a bias is
    # (a complex step in one argument), while h0 and W_h are real.
    dtype = np.result_type(XA, H0, W_h, b_rz, p.b_h, p.b_hh)
    # A_rz is laid out (2, n, h), the r block before the z block, so that R and Z are contiguous;
    # the views below read HA's and XA_t's [r z] columns in that order without copying.
    b_rz = np.reshape(b_rz, (2, 1, h))
    A_rz = np.empty((2, n, h), dtype)
    H, Y = H0, None
    for t, XA_t in enumerate(XA):
        HA = (H @ W_h).astype(dtype, copy=False)
        # The same sums and products in the same order, bit for bit (addition and
        # multiplication commute), in place where that saves a temporary.
        np.add(_rz_blocks(HA, n, h), _rz_blocks(XA_t, n, h), out=A_rz)
        A_rz += b_rz
        R, Z = sigmoid(A_rz)
        HA_h = HA[:, 2 * h:]
        HA_h += p.b_hh
        HA_h *= R
        H_tilde = XA_t[:, 2 * h:] + p.b_h
        H_tilde += HA_h
        np.tanh(H_tilde, out=H_tilde)
        H_tilde *= 1 - Z
        Y, H = store(Y, t, len(XA), Z, H)  # Y[t] = Z ⊙ H_{t−1}, written in place
        H += H_tilde
    if Y is None:
        raise ValueError("need at least one step")  # T = 0, as np.stack([]) said before
    return Y, H.copy()


def _rz_blocks(A: Any, n: int, h: int) -> Any:
    """The first two column blocks of A (n, ≥ 2h) as a (2, n, h) view: [A_r, A_z]."""
    return np.transpose(np.reshape(A[:, :2 * h], (n, 2, h)), (1, 0, 2))


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
    G_H, dX, dp = G_HT, [], None
    for t in reversed(range(len(X))):
        dX_t, G_H, dp_t = cell_vjp(G_Y[t] + G_H, X[t], states[t], p)
        dX.append(dX_t)
        # Summed as the steps come: keeping every step's ∂params for one sum at the end held
        # T copies of the weights' size (12 GB at T = 1000, H = 512).
        dp = dp_t if dp is None else Params(*(a + b for a, b in zip(dp, dp_t, strict=True)))
    dX_all = np.stack(dX[::-1])  # raises ValueError for T = 0, the one case that leaves dp None
    assert dp is not None
    return dX_all, G_H, dp


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
    return layer_pytorch(x, h0, params_from_torch(w_ih, w_hh, b_ih, b_hh))


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
    bias vector does to the candidate, and what CoreML's GRU computes (its one candidate bias
    b_n = b_in + b_hn sits outside the reset: apple/coremltools#1124)."""
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    p = params_from_torch(w_ih, w_hh, b_ih, b_hh)
    R, Z = gates(x, h, p)
    H_tilde = tanh(x @ p.W_xh + p.b_h + p.b_hh + R * (h @ p.W_hh))
    return Z * h + (1 - Z) * H_tilde


# ---- variants that frameworks ship, named so that the oracle can tell which one it meets -------

def no_bias_hn(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
               b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None) -> np.ndarray:
    """gru.bug.no_bias_hn — PyTorch's cell without b_hn: H̃ = tanh(X W_xh + b_h + R ⊙ (H W_hh)),
    R, Z and H_t as in :func:`gru_cell`.

    Flax NNX's GRUCell fuses the three recurrent projections into one bias-free matmul, so its
    candidate has no recurrent bias at all, while its docstring and flax.linen's GRUCell have
    b_hn inside the reset (google/flax#5594); PyTorch weights mapped onto it lose b_hn.
    """
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    p = params_from_torch(w_ih, w_hh, b_ih, b_hh)
    R, Z = gates(x, h, p)
    H_tilde = tanh(x @ p.W_xh + p.b_h + R * (h @ p.W_hh))
    return Z * h + (1 - Z) * H_tilde


def reset_before_update_flipped(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray,
                                w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                                b_hh: np.ndarray | None = None) -> np.ndarray:
    """gru.bug.reset_before_update_flipped — the textbook candidate with the flipped update:
    H̃ = tanh(X W_xh + (R ⊙ H) W_hh + b_h + b_hh), H_t = (1 − Z) ⊙ H + Z ⊙ H̃.

    Chung et al. 2014's GRU, which PaddlePaddle's fluid gru_unit and dynamic_gru compute by
    default (origin_mode=False). Shapes as :func:`gru_cell`.
    """
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    p = params_from_torch(w_ih, w_hh, b_ih, b_hh)
    R, Z = gates(x, h, p)
    H_tilde = tanh(x @ p.W_xh + (R * h) @ p.W_hh + p.b_h + p.b_hh)
    return (1 - Z) * h + Z * H_tilde


def hard_sigmoid_gates_keras2(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray,
                              w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                              b_hh: np.ndarray | None = None) -> np.ndarray:
    """gru.bug.hard_sigmoid_gates_keras2 — Keras ≤ 2.2's default GRU: the textbook candidate
    H̃ = tanh(X W_xh + (R ⊙ H) W_hh + b_h + b_hh) (reset_after=False, one bias) with gates
    R = hs(A_r), Z = hs(A_z), hs(a) = clip(0.2a + 0.5, 0, 1) (recurrent_activation=
    'hard_sigmoid'); H_t = Z ⊙ H + (1 − Z) ⊙ H̃. Shapes as :func:`gru_cell`.
    """
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    p = params_from_torch(w_ih, w_hh, b_ih, b_hh)
    A_r, A_z = gate_pre_activations(x, h, p)
    R, Z = hard_sigmoid_keras2(A_r), hard_sigmoid_keras2(A_z)
    H_tilde = tanh(x @ p.W_xh + (R * h) @ p.W_hh + p.b_h + p.b_hh)
    return Z * h + (1 - Z) * H_tilde


def hard_sigmoid_gates_keras3(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray,
                              w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                              b_hh: np.ndarray | None = None) -> np.ndarray:
    """gru.bug.hard_sigmoid_gates_keras3 — PyTorch's cell (Keras 3's GRU, reset_after=True) with
    recurrent_activation='hard_sigmoid' as Keras 3 computes it: R = hs(A_r), Z = hs(A_z),
    hs(a) = relu6(a + 3)/6 = clip(a/6 + 0.5, 0, 1) (tensorflow/tensorflow#65381);
    H̃ = tanh(X W_xh + b_h + R ⊙ (H W_hh + b_hh)), H_t = Z ⊙ H + (1 − Z) ⊙ H̃.
    """
    _check_args(x, h, w_ih, w_hh, b_ih, b_hh, sequence=False)
    p = params_from_torch(w_ih, w_hh, b_ih, b_hh)
    A_r, A_z = gate_pre_activations(x, h, p)
    R, Z = hard_sigmoid_keras3(A_r), hard_sigmoid_keras3(A_z)
    H_tilde = tanh(x @ p.W_xh + p.b_h + R * (h @ p.W_hh + p.b_hh))
    return Z * h + (1 - Z) * H_tilde
