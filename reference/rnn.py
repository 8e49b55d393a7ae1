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

import functools
from collections.abc import Callable

import numpy as np

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


#: (∂x, ∂h_0, ∂W, ∂U, ∂b_h) in seed 001's notation, ∂b_h None without b_h.
SeedGrads = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]

#: (∂x, ∂h0, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh) in PyTorch's layout, None for an absent bias.
TorchGrads = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None,
                   np.ndarray | None]


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
             b_h: np.ndarray | None, activation: str = "tanh") -> SeedGrads:
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
    g_h: list[np.ndarray] = []  # filled from t = T − 1 down to 0, reversed on return
    g_a: list[np.ndarray] = []
    g = g_y[T - 1] + g_hT
    for t in reversed(range(T)):
        g_h.append(g)
        (g_a_t,) = sigma_vjp(g, a[t])
        g_a.append(g_a_t)
        if t > 0:
            g = g_y[t - 1] + g_a_t @ W
    return g_h[::-1], g_a[::-1]


def layer(x: np.ndarray, h_0: np.ndarray, W: np.ndarray, U: np.ndarray, b_h: np.ndarray | None,
          activation: str = "tanh") -> tuple[np.ndarray, np.ndarray]:
    """rnn.layer — h_t = σ(W h_{t−1} + U x_t + b_h) for t = 1 … T with the same W, U, b_h at
    every step (weight sharing, seed 001 §6.1.1); the output is y_t = h_t (nn.RNN, §6.1.7).

    x: (T, B, D) with T ≥ 1, h_0: (B, H) → (y, h_T): (T, B, H), (B, H).

    Computed as nn.RNN computes it: the input's share U x_t of every step is one matrix product
    over all T·B rows before the loop, and each step forms only W h_{t−1}, then σ(W h_{t−1} +
    U x_t + b_h) with :func:`pre_activation`'s sums in its order; only the matrix products'
    blocking differs from :func:`cell` repeated, so the two agree to rounding.
    """
    sigma, _ = _activation(activation)
    T, B, D = np.shape(x)
    xU = np.reshape(np.reshape(x, (T * B, D)) @ U.T, (T, B, -1))
    h_t, y = h_0, []
    for xU_t in xU:
        a_t = h_t @ W.T + xU_t
        h_t = sigma(a_t if b_h is None else a_t + b_h)
        y.append(h_t)
    return np.stack(y), h_t


def layer_vjp(g_y: np.ndarray, g_hT: np.ndarray, x: np.ndarray, h_0: np.ndarray, W: np.ndarray,
              U: np.ndarray, b_h: np.ndarray | None,
              activation: str = "tanh") -> SeedGrads:
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
                    activation: str = "tanh") -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                       np.ndarray, np.ndarray | None, np.ndarray,
                                                       np.ndarray | None, None]:
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
    return w_hh, w_ih, (functools.reduce(np.add, present) if present else None)


def _bias_grads(db: np.ndarray | None, b_ih: np.ndarray | None,
                b_hh: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """∂b_ih = ∂b_hh = ∂b_h since b_h = b_ih + b_hh (each None where that bias is absent)."""
    if db is None:  # b_h, hence ∂b_h, is None exactly when both biases are
        return None, None
    return (None if b_ih is None else db), (None if b_hh is None else db.copy())


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
                 nonlinearity: str = "tanh") -> TorchGrads:
    """rnn.cell — backward in nn.RNNCell's layout: gh → (∂x, ∂h, ∂w_ih = ∂U, ∂w_hh = ∂W,
    ∂b_ih, ∂b_hh); since b_h = b_ih + b_hh both biases receive ∂b_h (None where absent)."""
    _check_cell_args(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    dx, dh, dW, dU, db = cell_vjp(gh, x, h, *params_from_torch(w_ih, w_hh, b_ih, b_hh),
                                  nonlinearity)
    return (dx, dh, dU, dW, *_bias_grads(db, b_ih, b_hh))


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
                  nonlinearity: str = "tanh") -> TorchGrads:
    """rnn.layer — BPTT in nn.RNN's layout: g = (gy, ghT) → (∂x, ∂h0, ∂w_ih, ∂w_hh, ∂b_ih,
    ∂b_hh), None for an absent bias."""
    _check_layer_args(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    gy, ghT = g
    dx, dh0, dW, dU, db = layer_vjp(gy, ghT, x, h0, *params_from_torch(w_ih, w_hh, b_ih, b_hh),
                                    nonlinearity)
    return (dx, dh0, dU, dW, *_bias_grads(db, b_ih, b_hh))


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
