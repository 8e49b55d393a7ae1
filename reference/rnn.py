"""Reference for spec/rnn.md: the Elman RNN of seed 001 §6.1 in its own notation, PyTorch's
layout of it, seed 004's linear char-RNN step, the error bound of a run over time, and the
known bugs.

Seed 001 writes one step for a column vector, h_t = σ(W h_{t−1} + U x_t + b_h). Here samples are
rows (x_t: (B, D), h_t: (B, H)), so W h_{t−1} reads ``h_prev @ W.T``. PyTorch's nn.RNNCell and
nn.RNN store U as ``weight_ih`` (H, D), W as ``weight_hh`` (H, H) and split b_h into two biases
``b_ih + b_hh``; :func:`params_from_torch` maps one to the other and the contract-facing functions
(:func:`rnn_cell`, :func:`rnn_layer` and their VJPs) convert and call the seed-notation ones.
Everything smooth here accepts complex arrays, so complex-step differentiation applies; ReLU
(``where(Re a > 0, a, 0)``) does too, since an imaginary step never moves Re a across the kink.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnspec.checks.bounds import rules as tol
from nnspec.reference.activations import relu, relu_vjp, tanh, tanh_vjp
from nnspec.reference.linear import affine, affine_vjp
from nnspec.reference.losses import sequence_mean, sequence_mean_vjp, softmax

#: σ of seed 001 and nn.RNN's ``nonlinearity``: the activation and its backward.
ACTIVATIONS: dict[str, tuple[Callable[..., np.ndarray], Callable[..., tuple[np.ndarray]]]] = {
    "tanh": (tanh, tanh_vjp),
    "relu": (relu, relu_vjp),
}


def _activation(name: str) -> tuple[Callable[..., np.ndarray], Callable[..., tuple[np.ndarray]]]:
    if name not in ACTIVATIONS:
        raise ValueError(f"nonlinearity = {name!r} is not one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


# ---- seed 001's notation ---------------------------------------------------------------------

def pre_activation(x_t: np.ndarray, h_prev: np.ndarray, W: np.ndarray, U: np.ndarray,
                   b_h: np.ndarray | None) -> np.ndarray:
    """a_t = W h_{t−1} + U x_t + b_h, one row per sample: (B, H)."""
    a_t = h_prev @ W.T + x_t @ U.T
    return a_t if b_h is None else a_t + b_h


def cell(x_t: np.ndarray, h_prev: np.ndarray, W: np.ndarray, U: np.ndarray,
         b_h: np.ndarray | None, activation: str = "tanh") -> np.ndarray:
    """rnn.cell — h_t = σ(W h_{t−1} + U x_t + b_h), σ = tanh or ReLU (seed 001 §6.1, §6.1.7).

    x_t: (B, D), h_{t−1}: (B, H), W: (H, H), U: (H, D), b_h: (H,) or None → h_t: (B, H).
    """
    sigma, _ = _activation(activation)
    return sigma(pre_activation(x_t, h_prev, W, U, b_h))


def cell_vjp(g_t: np.ndarray, x_t: np.ndarray, h_prev: np.ndarray, W: np.ndarray, U: np.ndarray,
             b_h: np.ndarray | None, activation: str = "tanh") -> tuple[np.ndarray | None, ...]:
    """rnn.cell — backward: g_a = g_t ⊙ σ'(a_t); ∂x_t = g_a U, ∂h_{t−1} = g_a W,
    ∂W = g_aᵀ h_{t−1}, ∂U = g_aᵀ x_t, ∂b_h = Σ_batch g_a (None without b_h)."""
    _, sigma_vjp = _activation(activation)
    (g_a,) = sigma_vjp(g_t, pre_activation(x_t, h_prev, W, U, b_h))
    return (g_a @ U, g_a @ W, g_a.T @ h_prev, g_a.T @ x_t,
            None if b_h is None else g_a.sum(axis=0))


def _trajectory(x: np.ndarray, h_0: np.ndarray, W: np.ndarray, U: np.ndarray,
                b_h: np.ndarray | None, activation: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pre-activations [a_1 … a_T] and states [h_0 … h_T] of a run (h[t] precedes a[t])."""
    sigma, _ = _activation(activation)
    a, h = [], [h_0]
    for x_t in x:
        a.append(pre_activation(x_t, h[-1], W, U, b_h))
        h.append(sigma(a[-1]))
    return a, h


def _cotangents(g_y: np.ndarray, g_hT: np.ndarray, a: list[np.ndarray], W: np.ndarray,
                activation: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Backpropagation through time: the total cotangents g_h[t] of h_{t+1} and g_a[t] of
    a_{t+1}: g_h_T = g_y_T + g_hT, g_a_t = g_h_t ⊙ σ'(a_t), g_h_{t−1} = g_y_{t−1} + g_a_t W."""
    _, sigma_vjp = _activation(activation)
    T = len(a)
    g_h, g_a = [None] * T, [None] * T
    g = g_y[T - 1] + g_hT
    for t in reversed(range(T)):
        g_h[t] = g
        (g_a[t],) = sigma_vjp(g, a[t])
        if t > 0:
            g = g_y[t - 1] + g_a[t] @ W
    return g_h, g_a


def layer(x: np.ndarray, h_0: np.ndarray, W: np.ndarray, U: np.ndarray, b_h: np.ndarray | None,
          activation: str = "tanh") -> tuple[np.ndarray, np.ndarray]:
    """rnn.layer — h_t = σ(W h_{t−1} + U x_t + b_h) for t = 1 … T with the same W, U, b_h at
    every step (weight sharing, seed 001 §6.1.1); the output is y_t = h_t (nn.RNN, §6.1.7).

    x: (T, B, D) with T ≥ 1, h_0: (B, H) → (y, h_T): (T, B, H), (B, H).
    """
    h_t, y = h_0, []
    for x_t in x:
        h_t = cell(x_t, h_t, W, U, b_h, activation)
        y.append(h_t)
    return np.stack(y), h_t


def layer_vjp(g_y: np.ndarray, g_hT: np.ndarray, x: np.ndarray, h_0: np.ndarray, W: np.ndarray,
              U: np.ndarray, b_h: np.ndarray | None,
              activation: str = "tanh") -> tuple[np.ndarray | None, ...]:
    """rnn.layer — backward, backpropagation through time (seed 003 RNN 的顺序工作):
    with g_a_t of :func:`_cotangents`, ∂x_t = g_a_t U, ∂h_0 = g_a_1 W, and the shared
    parameters collect one term per step: ∂W = Σ_t g_a_tᵀ h_{t−1}, ∂U = Σ_t g_a_tᵀ x_t,
    ∂b_h = Σ_t Σ_batch g_a_t.

    g_y: (T, B, H), g_hT: (B, H) → (∂x, ∂h_0, ∂W, ∂U, ∂b_h), ∂b_h None without b_h.
    """
    a, h = _trajectory(x, h_0, W, U, b_h, activation)
    _, g_a = _cotangents(g_y, g_hT, a, W, activation)
    steps = range(len(a))
    dW = sum(g_a[t].T @ h[t] for t in steps)
    dU = sum(g_a[t].T @ x[t] for t in steps)
    db = None if b_h is None else sum(g_a[t].sum(axis=0) for t in steps)
    return np.stack(g_a) @ U, g_a[0] @ W, dW, dU, db


def output(h: np.ndarray, V: np.ndarray, b_y: np.ndarray | None) -> np.ndarray:
    """rnn.output — y_t = V h_t + b_y at every step, with the same V, b_y (seed 001 §6.1.1).

    A linear.affine per step: h: (T, B, H), V: (O, H), b_y: (O,) or None → y: (T, B, O).
    """
    return affine(h, V, b_y)


def output_loss(x: np.ndarray, h_0: np.ndarray, W: np.ndarray, U: np.ndarray,
                b_h: np.ndarray | None, V: np.ndarray, b_y: np.ndarray | None, k: np.ndarray,
                activation: str = "tanh") -> np.ndarray:
    """rnn.output_loss — L = (1/T) Σ_t ℓ(o_t, softmax(y_t)), y_t = V h_t + b_y, h_t of
    rnn.layer, o_t = one_hot(k_t) (seed 001 §6.1.3; losses.sequence_mean).

    x: (T, B, D), h_0: (B, H), k: (T, B) integer targets → L: (), the mean over T·B positions.
    """
    h, _ = layer(x, h_0, W, U, b_h, activation)
    return sequence_mean(output(h, V, b_y), k)


def output_loss_vjp(g: np.ndarray, x: np.ndarray, h_0: np.ndarray, W: np.ndarray, U: np.ndarray,
                    b_h: np.ndarray | None, V: np.ndarray, b_y: np.ndarray | None, k: np.ndarray,
                    activation: str = "tanh") -> tuple[np.ndarray | None, ...]:
    """rnn.output_loss — backward: ∂y from losses.sequence_mean, then ∂h_t, ∂V, ∂b_y of the
    output layer, then BPTT (rnn.layer) with g_y = ∂h and g_hT = 0.

    → (∂x, ∂h_0, ∂W, ∂U, ∂b_h, ∂V, ∂b_y, None for k).
    """
    h, h_T = layer(x, h_0, W, U, b_h, activation)
    (g_y,) = sequence_mean_vjp(g, output(h, V, b_y), k)
    g_h, dV, db_y = affine_vjp(g_y, h, V, b_y)
    dx, dh_0, dW, dU, db_h = layer_vjp(g_h, np.zeros_like(h_T), x, h_0, W, U, b_h, activation)
    return dx, dh_0, dW, dU, db_h, dV, db_y, None


# ---- PyTorch's layout ------------------------------------------------------------------------

def _check_params(w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None,
                  b_hh: np.ndarray | None, nonlinearity: str) -> None:
    _activation(nonlinearity)
    if np.ndim(w_hh) != 2 or np.shape(w_hh)[0] != np.shape(w_hh)[1]:
        raise ValueError(f"w_hh must have shape (hidden, hidden), got {np.shape(w_hh)}")
    hidden = np.shape(w_hh)[0]
    if np.ndim(w_ih) != 2 or np.shape(w_ih)[0] != hidden:
        raise ValueError(f"w_ih must have shape (hidden, input) = ({hidden}, input), "
                         f"got {np.shape(w_ih)}")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and np.shape(b) != (hidden,):
            raise ValueError(f"{name} must be None or have shape (hidden,) = ({hidden},), "
                             f"got {np.shape(b)}")


def _check_state(name: str, h: np.ndarray, batch: int, hidden: int) -> None:
    if np.shape(h) != (batch, hidden):
        raise ValueError(f"{name} must have shape (batch, hidden) = {(batch, hidden)}, "
                         f"got {np.shape(h)}")


def _check_cell_args(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                     b_ih: np.ndarray | None, b_hh: np.ndarray | None, nonlinearity: str) -> None:
    _check_params(w_ih, w_hh, b_ih, b_hh, nonlinearity)
    if np.ndim(x) != 2 or np.shape(x)[1] != np.shape(w_ih)[1]:
        raise ValueError(f"x must have shape (batch, {np.shape(w_ih)[1]}), got {np.shape(x)}")
    _check_state("h", h, np.shape(x)[0], np.shape(w_hh)[0])


def _check_layer_args(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                      b_ih: np.ndarray | None, b_hh: np.ndarray | None, nonlinearity: str) -> None:
    _check_params(w_ih, w_hh, b_ih, b_hh, nonlinearity)
    if np.ndim(x) != 3 or np.shape(x)[0] < 1 or np.shape(x)[2] != np.shape(w_ih)[1]:
        raise ValueError(f"x must have shape (steps ≥ 1, batch, {np.shape(w_ih)[1]}), "
                         f"got {np.shape(x)}")
    _check_state("h0", h0, np.shape(x)[1], np.shape(w_hh)[0])


def params_from_torch(w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                      b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray | None]:
    """PyTorch's layout → seed 001's (W, U, b_h): W = w_hh, U = w_ih, b_h = b_ih + b_hh (an
    absent bias counts as zero; b_h is None when both are)."""
    present = [b for b in (b_ih, b_hh) if b is not None]
    return w_hh, w_ih, (sum(present) if present else None)


def rnn_cell(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
             b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None,
             nonlinearity: str = "tanh") -> np.ndarray:
    """rnn.cell — nn.RNNCell's layout: h' = φ(x w_ihᵀ + b_ih + h w_hhᵀ + b_hh), φ = tanh or
    ReLU, = cell(x, h, W = w_hh, U = w_ih, b_h = b_ih + b_hh).

    x: (B, D), h: (B, H), w_ih: (H, D), w_hh: (H, H), b_ih, b_hh: (H,) or None → h': (B, H).
    """
    _check_cell_args(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    return cell(x, h, *params_from_torch(w_ih, w_hh, b_ih, b_hh), nonlinearity)


def rnn_cell_vjp(gh: np.ndarray, x: np.ndarray, h: np.ndarray, w_ih: np.ndarray,
                 w_hh: np.ndarray, b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None,
                 nonlinearity: str = "tanh") -> tuple[np.ndarray | None, ...]:
    """rnn.cell — backward in nn.RNNCell's layout: gh → (∂x, ∂h, ∂w_ih = ∂U, ∂w_hh = ∂W,
    ∂b_ih, ∂b_hh); since b_h = b_ih + b_hh both biases receive ∂b_h (None where absent)."""
    _check_cell_args(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    dx, dh, dW, dU, db = cell_vjp(gh, x, h, *params_from_torch(w_ih, w_hh, b_ih, b_hh),
                                  nonlinearity)
    return (dx, dh, dU, dW, None if b_ih is None else db, None if b_hh is None else db.copy())


def rnn_layer(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
              b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None,
              nonlinearity: str = "tanh") -> tuple[np.ndarray, np.ndarray]:
    """rnn.layer — nn.RNN's layout (one layer, not batch_first): (y, h_T) = layer(x, h0,
    W = w_hh, U = w_ih, b_h = b_ih + b_hh).

    x: (T, B, D), h0: (B, H) → y: (T, B, H) with y_t = h_t, h_T: (B, H).
    """
    _check_layer_args(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    return layer(x, h0, *params_from_torch(w_ih, w_hh, b_ih, b_hh), nonlinearity)


def rnn_layer_vjp(g: tuple[np.ndarray, np.ndarray], x: np.ndarray, h0: np.ndarray,
                  w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                  b_hh: np.ndarray | None = None,
                  nonlinearity: str = "tanh") -> tuple[np.ndarray | None, ...]:
    """rnn.layer — BPTT in nn.RNN's layout: g = (gy, ghT) → (∂x, ∂h0, ∂w_ih, ∂w_hh, ∂b_ih,
    ∂b_hh), None for an absent bias."""
    _check_layer_args(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    gy, ghT = g
    dx, dh0, dW, dU, db = layer_vjp(gy, ghT, x, h0, *params_from_torch(w_ih, w_hh, b_ih, b_hh),
                                    nonlinearity)
    return (dx, dh0, dU, dW, None if b_ih is None else db, None if b_hh is None else db.copy())


# ---- seed 004's char-RNN ---------------------------------------------------------------------

def cell_linear(x_t: np.ndarray, h_prev: np.ndarray, W_i2h: np.ndarray,
                b_i2h: np.ndarray | None) -> np.ndarray:
    """rnn.cell.linear — h_t = i2h([x_t, h_{t−1}]) = W_i2h [x_t; h_{t−1}] + b_i2h, no activation
    (seed 004 §1: i2h = Linear(57 + 128 → 128) on torch.cat((input, hidden))).

    x_t: (B, D), h_{t−1}: (B, H), W_i2h: (H, D + H), columns for x first, b_i2h: (H,) or None
    → h_t: (B, H).
    """
    return affine(np.concatenate([x_t, h_prev], axis=-1), W_i2h, b_i2h)


def i2h_from_torch(w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                   b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """PyTorch's RNN layout → seed 004's i2h: W_i2h = [w_ih, w_hh] (H, D + H), b_i2h =
    b_ih + b_hh."""
    _, _, b_h = params_from_torch(w_ih, w_hh, b_ih, b_hh)
    return np.concatenate([w_ih, w_hh], axis=1), b_h


def i2h_to_torch(W_i2h: np.ndarray, b_i2h: np.ndarray | None = None) -> tuple[
        np.ndarray, np.ndarray, np.ndarray | None, None]:
    """Seed 004's i2h → PyTorch's RNN layout: w_ih = W_i2h[:, :D], w_hh = W_i2h[:, D:] with
    D = columns − H, b_ih = b_i2h, b_hh = None (only the sum of the two biases is observable)."""
    H = np.shape(W_i2h)[0]
    if np.ndim(W_i2h) != 2 or np.shape(W_i2h)[1] <= H:
        raise ValueError(f"W_i2h must have shape (hidden, input + hidden) with input ≥ 1, "
                         f"got {np.shape(W_i2h)}")
    D = np.shape(W_i2h)[1] - H
    return W_i2h[:, :D], W_i2h[:, D:], b_i2h, None


# ---- how far an implementation may be from the reference (spec/rnn.md) ---------------------

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


def _slope_bound(a: np.ndarray, da: np.ndarray, nonlinearity: str) -> np.ndarray:
    """sup |φ'(ξ)| over |ξ − a| ≤ da: tanh' = 1 − tanh² decreases in |ξ|; ReLU' is 1 where the
    interval reaches above 0."""
    if nonlinearity == "tanh":
        return 1.0 - np.tanh(np.maximum(np.abs(a) - da, 0.0)) ** 2
    return (a + da > 0).astype(np.float64)


def _rounding(magnitude: np.ndarray, n: int, dtype: np.dtype) -> np.ndarray:
    """tol.accumulated's bound on an n-term sum of terms with Σ|terms| = magnitude."""
    return tol.accumulated(magnitude, n, dtype).atol


def _forward_errors(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                    b_ih: np.ndarray | None, b_hh: np.ndarray | None, nonlinearity: str,
                    dtype: np.dtype) -> tuple[list[np.ndarray], list[np.ndarray],
                                              list[np.ndarray], list[np.ndarray]]:
    """The reference's a_t, h_t and the running bounds δa_t on |â_t − a_t|, δ_t on |ĥ_t − h_t|
    (δ_0 = 0: h0 is an input) of spec/rnn.md's recurrence."""
    _check_layer_args(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    a, h = _trajectory(x, h0, *params_from_torch(w_ih, w_hh, b_ih, b_hh), nonlinearity)
    n = np.shape(x)[2] + np.shape(w_hh)[0] + 2
    da, d = [], [np.zeros_like(h0, dtype=np.float64)]
    for t, x_t in enumerate(x):
        M_t = pre_activation_magnitude(x_t, np.abs(h[t]) + d[t], w_ih, w_hh, b_ih, b_hh)
        da.append(_rounding(M_t, n, dtype) + d[t] @ np.abs(w_hh).T)
        L_t = _slope_bound(a[t], da[t], nonlinearity)
        d_t = L_t * da[t]
        if nonlinearity == "tanh":
            d_t = d_t + tol.elementwise(np.abs(h[t + 1]) + d_t, dtype).atol
        d.append(d_t)
    return a, h, da, d


def forward_error_bound(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                        b_ih: np.ndarray | None, b_hh: np.ndarray | None, nonlinearity: str,
                        dtype: np.dtype | type) -> tuple[tol.Bound, tol.Bound]:
    """Bounds on |ŷ − y| and |ĥ_T − h_T| for an implementation of rnn_layer computing in
    ``dtype`` (spec/rnn.md, "How the bound grows with T"): δ_0 = 0 and

        δa_t = (γ_n + 4u)·M_t + |w_hh| δ_{t−1},  M_t = |x_t||w_ih|ᵀ + (|h_{t−1}| + δ_{t−1})|w_hh|ᵀ
               + |b_ih| + |b_hh|,  n = D + H + 2,
        δ_t  = L_t·δa_t + 16u·(|h_t| + L_t·δa_t)  (the last term for tanh only),

    with L_t = sup |φ'| over [a_t − δa_t, a_t + δa_t]. A cell is the case T = 1.
    """
    u = tol.unit_roundoff(dtype)
    _, _, _, d = _forward_errors(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, np.dtype(dtype))
    rule = (f"spec/rnn.md forward recurrence, T = {len(d) - 1}: δ_t = L_t·((γ_n+"
            f"{tol.REORDER_ULPS:g}u)·M_t + |w_hh|δ_(t−1))"
            f"{' + 16u·|h_t|' if nonlinearity == 'tanh' else ''}, u={u:.3g} ({np.dtype(dtype)})")
    return tol.Bound(np.stack(d[1:]), rule, u), tol.Bound(d[-1], rule, u)


def bptt_error_bound(g: tuple[np.ndarray, np.ndarray], x: np.ndarray, h0: np.ndarray,
                     w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None,
                     b_hh: np.ndarray | None, nonlinearity: str,
                     dtype: np.dtype | type) -> tuple[tol.Bound | None, ...]:
    """Bounds on the errors of rnn_layer_vjp's (∂x, ∂h0, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh) for an
    implementation computing in ``dtype`` (spec/rnn.md, "The gradients' bound"): the forward
    bounds δ_t of :func:`forward_error_bound`, then backwards from ε_T = (γ_2 + 4u)(|gy_T| + |ghT|):

        ρ_t = |φ̂'_t − φ'(a_t)| ≤ δ_t(2|h_t| + δ_t) + 16u(|φ'| + 1)   (tanh: φ' = 1 − h_t²)
            or 1 where |a_t| ≤ δa_t, else 0                           (ReLU: the sign may flip)
        η_t = ε_t(|φ'| + ρ_t) + |g_h_t| ρ_t + (γ_1 + 4u)(|g_h_t| + ε_t)(|φ'| + ρ_t)
        ε_{t−1} = (γ_{H+1} + 4u)(|gy_{t−1}| + (|g_a_t| + η_t)|w_hh|) + η_t |w_hh|

    and each gradient is an n-term sum of (|g_a_t| + η_t)·|factor| (n = H for ∂x and ∂h0, T·B for
    the parameters) plus η_t·|factor|; ∂w_hh adds |g_a_t|ᵀ δ_{t−1} for the computed h_{t−1}.
    """
    dtype = np.dtype(dtype)
    u = tol.unit_roundoff(dtype)
    gy, ghT = g
    a, h, da, d = _forward_errors(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, dtype)
    _, sigma_vjp = _activation(nonlinearity)
    g_h, g_a = _cotangents(gy, ghT, a, w_hh, nonlinearity)
    T, B, H = len(a), np.shape(x)[1], np.shape(w_hh)[0]
    abs_ih, abs_hh = np.abs(w_ih), np.abs(w_hh)
    eps = _rounding(np.abs(gy[T - 1]) + np.abs(ghT), 2, dtype)
    dx = [None] * T
    dw_ih_mag = dw_hh_mag = db_mag = 0.0
    dw_ih_carried = dw_hh_carried = db_carried = 0.0
    for t in reversed(range(T)):
        (slope,) = sigma_vjp(np.ones_like(a[t]), a[t])
        if nonlinearity == "tanh":
            rho = d[t + 1] * (2 * np.abs(h[t + 1]) + d[t + 1]) + tol.elementwise(
                slope, dtype, scale=1.0).atol
        else:
            rho = (np.abs(a[t]) <= da[t]).astype(np.float64)
        P = np.abs(slope) + rho
        eta = eps * P + np.abs(g_h[t]) * rho + _rounding((np.abs(g_h[t]) + eps) * P, 1, dtype)
        ga_mag = np.abs(g_a[t]) + eta
        dx[t] = _rounding(ga_mag @ abs_ih, H, dtype) + eta @ abs_ih
        h_prev_mag = np.abs(h[t]) + d[t]
        dw_ih_mag = dw_ih_mag + ga_mag.T @ np.abs(x[t])
        dw_ih_carried = dw_ih_carried + eta.T @ np.abs(x[t])
        dw_hh_mag = dw_hh_mag + ga_mag.T @ h_prev_mag
        dw_hh_carried = dw_hh_carried + eta.T @ h_prev_mag + np.abs(g_a[t]).T @ d[t]
        db_mag = db_mag + ga_mag.sum(axis=0)
        db_carried = db_carried + eta.sum(axis=0)
        if t > 0:
            eps = _rounding(np.abs(gy[t - 1]) + ga_mag @ abs_hh, H + 1, dtype) + eta @ abs_hh
        else:
            dh0 = _rounding(ga_mag @ abs_hh, H, dtype) + eta @ abs_hh
    rule = (f"spec/rnn.md BPTT recurrence, T = {T} (forward δ_t, backward ε_t, η_t), "
            f"u={u:.3g} ({dtype})")

    def bound(atol: np.ndarray) -> tol.Bound:
        return tol.Bound(np.asarray(atol, dtype=np.float64), rule, u)

    db = bound(_rounding(db_mag, T * B, dtype) + db_carried)
    return (bound(np.stack(dx)), bound(dh0),
            bound(_rounding(dw_ih_mag, T * B, dtype) + dw_ih_carried),
            bound(_rounding(dw_hh_mag, T * B, dtype) + dw_hh_carried),
            None if b_ih is None else db, None if b_hh is None else db)


# ---- known bugs ------------------------------------------------------------------------------

def softmax_hidden(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                   b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None,
                   nonlinearity: str = "tanh") -> np.ndarray:
    """rnn.bug.softmax_hidden — h' = softmax(W h + U x + b_h) over the hidden units: seed 002 ④'s
    a_t = softmax(W_ax x_t + W_aa a_{t−1} + b_a) in rnn_cell's layout (``nonlinearity`` is
    ignored). Its state is always on the probability simplex (> 0, summing to 1)."""
    _check_cell_args(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    return softmax(pre_activation(x, h, *params_from_torch(w_ih, w_hh, b_ih, b_hh)))


def missing_nonlinearity(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                         b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None,
                         nonlinearity: str = "tanh") -> np.ndarray:
    """rnn.bug.missing_nonlinearity — h' = W h + U x + b_h: seed 004's linear char-RNN step
    (rnn.cell.linear) where rnn_cell's tanh (or ReLU) was meant."""
    _check_cell_args(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    return cell_linear(x, h, *i2h_from_torch(w_ih, w_hh, b_ih, b_hh))


def time_reversed(x: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                  b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None,
                  nonlinearity: str = "tanh") -> tuple[np.ndarray, np.ndarray]:
    """rnn.bug.time_reversed — the sequence consumed from x_T down to x_1, y_t the state after
    x_t (the backward direction of seed 001 §6.1.5's bidirectional RNN, used where the forward
    one was meant); h_T is the state after x_1."""
    y, h_last = rnn_layer(x[::-1], h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    return y[::-1], h_last
