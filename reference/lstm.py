"""Reference for spec/lstm.md: the LSTM cell in seed 000's notation, PyTorch's layout of it, and
the concatenated parametrisation of seeds 002 and 004.

Seed 000 (三、2) writes the cell for a minibatch in the row-vector convention, X (n, d) times
W_x· (d, h). PyTorch stacks the four gates' weights as rows of ``w_ih`` (4h, d) and ``w_hh``
(4h, h) in the block order i, f, g, o (g is seed 000's candidate cell C̃) and adds two biases
``b_ih``, ``b_hh`` (4h,). :func:`params_from_torch` and :func:`params_to_torch` convert between
the two; :func:`lstm_cell` is the contract-facing cell, which converts and calls :func:`cell`.
The last section holds the variants frameworks ship (the gate orders of ONNX, TensorFlow 1 and
OpenVINO, TF 1's forget bias added at every step, Keras's hard-sigmoid gates), each in the
contract's arguments so that the oracle can name it. Everything smooth here accepts complex
arrays, so complex-step differentiation applies.
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
    tanh_vjp,
)
from nnspec.reference.steps import store


class Params(NamedTuple):
    """Seed 000's parameters: for gate k ∈ {i, f, o} and the candidate cell c, W_xk (d, h),
    W_hk (h, h), b_k (h,)."""

    W_xi: np.ndarray
    W_hi: np.ndarray
    b_i: np.ndarray
    W_xf: np.ndarray
    W_hf: np.ndarray
    b_f: np.ndarray
    W_xo: np.ndarray
    W_ho: np.ndarray
    b_o: np.ndarray
    W_xc: np.ndarray
    W_hc: np.ndarray
    b_c: np.ndarray


class Gates(NamedTuple):
    """The three gates and the candidate cell of one step, each (n, h)."""

    I: np.ndarray
    F: np.ndarray
    O: np.ndarray
    C_tilde: np.ndarray


class PreActivations(NamedTuple):
    """The pre-activations A_k of the gates i, f, o and of the candidate cell c, each (n, h)."""

    i: np.ndarray
    f: np.ndarray
    o: np.ndarray
    c: np.ndarray


class ConcatParams(NamedTuple):
    """Seeds 002/004's parameters: one matrix per gate over the concatenation [h, x], W_k
    (h, h + d), and b_k (h,), for k ∈ {f, i, c, o}."""

    W_f: np.ndarray
    b_f: np.ndarray
    W_i: np.ndarray
    b_i: np.ndarray
    W_c: np.ndarray
    b_c: np.ndarray
    W_o: np.ndarray
    b_o: np.ndarray


# ---- seed 000's notation ---------------------------------------------------------------------

def pre_activations(X: np.ndarray, H: np.ndarray, p: Params) -> PreActivations:
    """A_k = X W_xk + H W_hk + b_k for the gates k = i, f, o and the candidate cell c."""
    return PreActivations(X @ p.W_xi + H @ p.W_hi + p.b_i, X @ p.W_xf + H @ p.W_hf + p.b_f,
                          X @ p.W_xo + H @ p.W_ho + p.b_o, X @ p.W_xc + H @ p.W_hc + p.b_c)


def gates(X: np.ndarray, H: np.ndarray, p: Params) -> Gates:
    """I, F, O = σ(X W_x· + H W_h· + b_·) and C̃ = tanh(X W_xc + H W_hc + b_c) (seed 000 三、2)."""
    A = pre_activations(X, H, p)
    return Gates(sigmoid(A.i), sigmoid(A.f), sigmoid(A.o), np.tanh(A.c))


def cell(X: np.ndarray, H: np.ndarray, C: np.ndarray, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """lstm.cell — C_t = F ⊙ C_{t−1} + I ⊙ C̃, H_t = O ⊙ tanh(C_t) (seed 000 三、2).

    The gates are those of :func:`gates`. X: (n, d), H = H_{t−1}: (n, h), C = C_{t−1}: (n, h)
    → (H_t, C_t), each (n, h).
    """
    I, F, O, C_tilde = gates(X, H, p)
    C_t = F * C + I * C_tilde
    H_t = O * np.tanh(C_t)
    return H_t, C_t


def cell_vjp(G_H: np.ndarray, G_C: np.ndarray, X: np.ndarray, H: np.ndarray, C: np.ndarray,
             p: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray, Params]:
    """lstm.cell — backward: cotangents G_H, G_C of (H_t, C_t) → (∂X, ∂H, ∂C, ∂params).

    ∂C_t = G_C + G_H ⊙ O ⊙ tanh'(C_t) is the total cotangent of C_t; then ∂O = G_H ⊙ tanh C_t,
    ∂F = ∂C_t ⊙ C, ∂I = ∂C_t ⊙ C̃, ∂C̃ = ∂C_t ⊙ I, ∂C = ∂C_t ⊙ F; each gate's pre-activation gets
    ∂A_k = ∂k ⊙ σ'(A_k) (tanh' for the candidate); ∂X = Σ_k ∂A_k W_xkᵀ, ∂H = Σ_k ∂A_k W_hkᵀ,
    ∂W_xk = Xᵀ ∂A_k, ∂W_hk = Hᵀ ∂A_k, ∂b_k = Σ_n ∂A_k.

    σ' and tanh' are those of spec/activations.md, σ(A)σ(−A) and sech² A, which keep their
    relative accuracy where the gates saturate; the forms O(1 − O) and 1 − tanh² cancel there.
    """
    A = pre_activations(X, H, p)
    I, F, O, C_tilde = sigmoid(A.i), sigmoid(A.f), sigmoid(A.o), np.tanh(A.c)
    C_t = F * C + I * C_tilde
    tanh_C_t = np.tanh(C_t)
    dC_t = G_C + tanh_vjp(G_H * O, C_t)[0]
    (dA_i,) = sigmoid_vjp(dC_t * C_tilde, A.i)
    (dA_f,) = sigmoid_vjp(dC_t * C, A.f)
    (dA_o,) = sigmoid_vjp(G_H * tanh_C_t, A.o)
    (dA_c,) = tanh_vjp(dC_t * I, A.c)
    dX = dA_i @ p.W_xi.T + dA_f @ p.W_xf.T + dA_o @ p.W_xo.T + dA_c @ p.W_xc.T
    dH = dA_i @ p.W_hi.T + dA_f @ p.W_hf.T + dA_o @ p.W_ho.T + dA_c @ p.W_hc.T
    dp = Params(X.T @ dA_i, H.T @ dA_i, dA_i.sum(axis=0),
                X.T @ dA_f, H.T @ dA_f, dA_f.sum(axis=0),
                X.T @ dA_o, H.T @ dA_o, dA_o.sum(axis=0),
                X.T @ dA_c, H.T @ dA_c, dA_c.sum(axis=0))
    return dX, dH, dC_t * F, dp


def cell_projection(X: np.ndarray, H: np.ndarray, C: np.ndarray, p: Params,
                    W_hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lstm.cell.projection — C_t as in lstm.cell, H_t = (O ⊙ tanh(C_t)) W_hrᵀ: the gated state
    projected to P units (nn.LSTM's proj_size, seed 001 §6.3's API).

    :func:`cell` computes M = O ⊙ tanh(C_t); the projection maps it. X: (n, d), H = H_{t−1}:
    (n, P), C = C_{t−1}: (n, h), W_hk: (P, h), W_hr: (P, h) → (H_t: (n, P), C_t: (n, h)).
    """
    M, C_t = cell(X, H, C, p)
    return M @ W_hr.T, C_t


def cell_projection_vjp(G_H: np.ndarray, G_C: np.ndarray, X: np.ndarray, H: np.ndarray,
                        C: np.ndarray, p: Params,
                        W_hr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Params,
                                                   np.ndarray]:
    """lstm.cell.projection — backward: ∂M = G_H W_hr and ∂W_hr = G_Hᵀ M for the projection,
    then lstm.cell's backward (:func:`cell_vjp`) with ∂M as the cotangent of M = O ⊙ tanh(C_t).

    → (∂X, ∂H, ∂C, ∂params, ∂W_hr).
    """
    M, _ = cell(X, H, C, p)
    dX, dH, dC, dp = cell_vjp(G_H @ W_hr, G_C, X, H, C, p)
    return dX, dH, dC, dp, G_H.T @ M


Step = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _run(step: Step, X: np.ndarray, H0: np.ndarray,
         C0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H_t, C_t) = step(X_t, H_{t−1}, C_{t−1}) for t = 1 … T → (Y = (H_1 … H_T), H_T, C_T)."""
    H, C, Y = H0, C0, []
    for X_t in X:
        H, C = step(X_t, H, C)
        Y.append(H)
    return np.stack(Y), H, C


def _run_vjp(step: Step, step_vjp: Callable[..., tuple], G_Y: np.ndarray, G_HT: np.ndarray,
             G_CT: np.ndarray, X: np.ndarray, H0: np.ndarray,
             C0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """Backpropagation through time for :func:`_run`: the state H_t receives G_Y[t] plus what
    step t + 1 sends back (G_HT, G_CT after the last step); the parameters' gradients, the last
    outputs of ``step_vjp`` (G_H, G_C, X_t, H, C) → (∂X_t, ∂H, ∂C, *∂θ), add up over the steps."""
    states = [(H0, C0)]
    for X_t in X:
        states.append(step(X_t, *states[-1]))
    G_H, G_C, dX, dtheta = G_HT, G_CT, [], None
    for t in reversed(range(len(X))):
        dX_t, G_H, G_C, *dtheta_t = step_vjp(G_Y[t] + G_H, G_C, X[t], *states[t])
        dX.append(dX_t)
        dtheta = dtheta_t if dtheta is None else [_add(a, b) for a, b in zip(dtheta, dtheta_t,
                                                                             strict=True)]
    dX_all = np.stack(dX[::-1])  # raises ValueError for T = 0, the one case that leaves dtheta None
    assert dtheta is not None
    return dX_all, G_H, G_C, tuple(dtheta)


def _add(a: Any, b: Any) -> Any:
    """a + b for arrays and, field by field, for :class:`Params`."""
    return Params(*(x + y for x, y in zip(a, b, strict=True))) if isinstance(a, Params) else a + b


def layer(X: np.ndarray, H0: np.ndarray, C0: np.ndarray,
          p: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lstm.layer — (H_t, C_t) = cell(X_t, H_{t−1}, C_{t−1}) for t = 1 … T with the same
    parameters at every step (weight sharing, seed 001 §6.1.1); nn.LSTM's output is Y = (H_1 …
    H_T).

    X: (T, n, d), H0, C0: (n, h) → (Y: (T, n, h), H_T, C_T: (n, h)).

    Computed as nn.LSTM computes it: the input's share of every step's pre-activations,
    X_t [W_xi W_xf W_xo W_xc], is one matrix product over all T·n rows before the loop; each step
    then forms only H_{t−1} [W_hi W_hf W_ho W_hc] and applies :func:`cell`'s equations to column
    blocks of A = XA_t + HA + [b_i b_f b_o b_c] (:func:`pre_activations`' sums in its order):
    [I F O] = σ(A_ifo), C̃ = tanh(A_c). Only the matrix products' blocking differs from the cell
    repeated, so the two agree to rounding.
    """
    T, n, d = np.shape(X)
    h = np.shape(C0)[-1]
    W_x = np.concatenate([p.W_xi, p.W_xf, p.W_xo, p.W_xc], axis=1)
    W_h = np.concatenate([p.W_hi, p.W_hf, p.W_ho, p.W_hc], axis=1)
    b = np.concatenate([p.b_i, p.b_f, p.b_o, p.b_c])
    XA = np.reshape(np.reshape(X, (T * n, d)) @ W_x, (T, n, 4 * h))
    # The in-place sums below need A in the result's dtype: complex where only x or a bias is
    # (a complex step in one argument), while h0 and W_h are real.
    dtype = np.result_type(XA, H0, W_h, b)
    H, C, Y = H0, C0, None
    for t, XA_t in enumerate(XA):
        A = (H @ W_h).astype(dtype, copy=False)
        A += XA_t  # in place, and commutative: the sums of XA_t + H W_h + b, bit for bit
        A += b
        IFO = sigmoid(A[:, :3 * h])
        I, F, O = IFO[:, :h], IFO[:, h:2 * h], IFO[:, 2 * h:]
        IC = np.tanh(A[:, 3 * h:])
        # I ⊙ C̃ over C̃ where that keeps the product's dtype (float64, complex128), then
        # C_t = F ⊙ C + I ⊙ C̃ in place over F ⊙ C, whose dtype already has I's (I, F: one σ).
        IC = np.multiply(I, IC, out=IC) if IC.dtype == I.dtype else I * IC
        C = F * C
        C += IC
        Y, H = store(Y, t, len(XA), O, np.tanh(C))
    if Y is None:
        raise ValueError("need at least one step")  # T = 0, as np.stack([]) said before
    return Y, H.copy(), C


def layer_vjp(G_Y: np.ndarray, G_HT: np.ndarray, G_CT: np.ndarray, X: np.ndarray, H0: np.ndarray,
              C0: np.ndarray, p: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray, Params]:
    """lstm.layer — backpropagation through time: the cotangent of H_t is G_Y[t] plus the ∂H
    that :func:`cell_vjp` of step t + 1 returns (G_HT after step T), that of C_t the ∂C of step
    t + 1 (G_CT after step T); the shared parameters' gradients are the sums over t of the steps'.

    → (∂X: (T, n, d), ∂H0, ∂C0: (n, h), ∂params).
    """
    dX, dH0, dC0, (dp,) = _run_vjp(lambda X_t, H, C: cell(X_t, H, C, p),
                                   lambda G_H, G_C, X_t, H, C: cell_vjp(G_H, G_C, X_t, H, C, p),
                                   G_Y, G_HT, G_CT, X, H0, C0)
    return dX, dH0, dC0, dp


def layer_projection(X: np.ndarray, H0: np.ndarray, C0: np.ndarray, p: Params,
                     W_hr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lstm.cell.projection — run over a sequence like lstm.layer: (H_t, C_t) =
    cell_projection(X_t, H_{t−1}, C_{t−1}); Y = (H_1 … H_T) has P features.

    X: (T, n, d), H0: (n, P), C0: (n, h) → (Y: (T, n, P), H_T: (n, P), C_T: (n, h)).
    """
    return _run(lambda X_t, H, C: cell_projection(X_t, H, C, p, W_hr), X, H0, C0)


def layer_projection_vjp(G_Y: np.ndarray, G_HT: np.ndarray, G_CT: np.ndarray, X: np.ndarray,
                         H0: np.ndarray, C0: np.ndarray, p: Params,
                         W_hr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Params,
                                                    np.ndarray]:
    """lstm.cell.projection — backpropagation through time of :func:`layer_projection`, as
    :func:`layer_vjp` with :func:`cell_projection_vjp` per step → (∂X, ∂H0, ∂C0, ∂params,
    ∂W_hr)."""
    dX, dH0, dC0, (dp, dW_hr) = _run_vjp(
        lambda X_t, H, C: cell_projection(X_t, H, C, p, W_hr),
        lambda G_H, G_C, X_t, H, C: cell_projection_vjp(G_H, G_C, X_t, H, C, p, W_hr),
        G_Y, G_HT, G_CT, X, H0, C0)
    return dX, dH0, dC0, dp, dW_hr


# ---- PyTorch's layout ------------------------------------------------------------------------

def _check_cell_args(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                     w_hh: np.ndarray, b_ih: np.ndarray | None, b_hh: np.ndarray | None, *,
                     w_hr: np.ndarray | None = None, sequence: bool = False) -> None:
    """Reject inconsistent shapes, naming the bad argument. Without ``w_hr`` the state h has the
    cell's width; with it (a projection, lstm.cell.projection) h has w_hr's P rows. ``sequence``
    expects x of shape (T ≥ 1, batch, input) and names the states h0, c0."""
    if w_hr is None:
        if np.ndim(w_hh) != 2 or np.shape(w_hh)[0] != 4 * np.shape(w_hh)[1]:
            raise ValueError(f"w_hh must have shape (4·hidden, hidden), got {np.shape(w_hh)}")
        hidden = out = np.shape(w_hh)[1]
    else:
        if np.ndim(w_hr) != 2:
            raise ValueError(f"w_hr must have shape (proj, hidden), got {np.shape(w_hr)}")
        out, hidden = np.shape(w_hr)
        if np.shape(w_hh) != (4 * hidden, out):
            raise ValueError(f"w_hh must have shape (4·hidden, proj) = {(4 * hidden, out)} for "
                             f"w_hr of shape {np.shape(w_hr)}, got {np.shape(w_hh)}")
    if np.ndim(w_ih) != 2 or np.shape(w_ih)[0] != 4 * hidden:
        raise ValueError(f"w_ih must have shape (4·hidden, input) = (4·{hidden}, input), "
                         f"got {np.shape(w_ih)}")
    n_input = np.shape(w_ih)[1]
    if sequence and (np.ndim(x) != 3 or np.shape(x)[0] < 1 or np.shape(x)[2] != n_input):
        raise ValueError(f"x must have shape (T ≥ 1, batch, {n_input}), got {np.shape(x)}")
    if not sequence and (np.ndim(x) != 2 or np.shape(x)[1] != n_input):
        raise ValueError(f"x must have shape (batch, {n_input}), got {np.shape(x)}")
    batch = np.shape(x)[-2]
    suffix = "0" if sequence else ""
    h_width = "hidden" if w_hr is None else "proj"
    for name, state, width, what in (("h", h, out, h_width), ("c", c, hidden, "hidden")):
        if np.shape(state) != (batch, width):
            raise ValueError(f"{name}{suffix} must have shape (batch, {what}) = {(batch, width)}, "
                             f"got {np.shape(state)}")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and np.shape(b) != (4 * hidden,):
            raise ValueError(f"{name} must be None or have shape (4·hidden,) = ({4 * hidden},), "
                             f"got {np.shape(b)}")


def params_from_torch(w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                      b_hh: np.ndarray | None = None) -> Params:
    """PyTorch's layout → seed 000's parameters.

    Row block k of w_ih (blocks i, f, g, o, each (h, d)) is W_xkᵀ, likewise w_hh's blocks are
    W_hkᵀ; g maps to the seed's c. The two biases add: b_k = b_ih[k] + b_hh[k] (None counts as
    zero). With a projection (lstm.cell.projection) w_hh is (4h, P) and the W_hk are (P, h).
    """
    hidden = np.shape(w_ih)[0] // 4
    b = np.zeros(4 * hidden)
    if b_ih is not None:
        b = b + b_ih
    if b_hh is not None:
        b = b + b_hh
    i, f, g, o = (slice(j * hidden, (j + 1) * hidden) for j in range(4))
    return Params(w_ih[i].T, w_hh[i].T, b[i], w_ih[f].T, w_hh[f].T, b[f],
                  w_ih[o].T, w_hh[o].T, b[o], w_ih[g].T, w_hh[g].T, b[g])


def params_to_torch(p: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seed 000's parameters → PyTorch's (w_ih, w_hh, b_ih, b_hh).

    The inverse of :func:`params_from_torch` up to the bias split, which the cell cannot see:
    all of b_k goes to b_ih and b_hh is zero.
    """
    w_ih = np.concatenate([p.W_xi.T, p.W_xf.T, p.W_xc.T, p.W_xo.T])
    w_hh = np.concatenate([p.W_hi.T, p.W_hf.T, p.W_hc.T, p.W_ho.T])
    b_ih = np.concatenate([p.b_i, p.b_f, p.b_c, p.b_o])
    return w_ih, w_hh, b_ih, np.zeros_like(b_ih)


def lstm_cell(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
              b_ih: np.ndarray | None = None,
              b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lstm.cell — nn.LSTMCell's layout: (h', c') = cell(x, h, c, params_from_torch(w_ih, …)).

    x: (B, D), h, c: (B, H), w_ih: (4H, D), w_hh: (4H, H), b_ih, b_hh: (4H,) or None →
    (h', c'), each (B, H).
    """
    _check_cell_args(x, h, c, w_ih, w_hh, b_ih, b_hh)
    return cell(x, h, c, params_from_torch(w_ih, w_hh, b_ih, b_hh))


#: The order of :func:`lstm_cell_vjp`'s gradients.
LSTM_CELL_GRADIENT_NAMES = ("dx", "dh", "dc", "dw_ih", "dw_hh", "db_ih", "db_hh")


def lstm_cell_vjp(g: tuple[np.ndarray, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray,
                  w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                  b_hh: np.ndarray | None = None) -> tuple[np.ndarray | None, ...]:
    """lstm.cell — backward in nn.LSTMCell's layout: g = (gh, gc) → (∂x, ∂h, ∂c, ∂w_ih, ∂w_hh,
    ∂b_ih, ∂b_hh), None for an absent bias.

    The seed-notation gradients of :func:`cell_vjp` are mapped back by the transpose of
    :func:`params_from_torch`: ∂w_ih stacks the ∂W_xkᵀ in block order i, f, g, o, and since
    b_k = b_ih[k] + b_hh[k], both biases receive the same gradient.
    """
    _check_cell_args(x, h, c, w_ih, w_hh, b_ih, b_hh)
    gh, gc = g
    dx, dh, dc, dp = cell_vjp(gh, gc, x, h, c, params_from_torch(w_ih, w_hh, b_ih, b_hh))
    dw_ih, dw_hh, db, _ = params_to_torch(dp)
    return (dx, dh, dc, dw_ih, dw_hh,
            None if b_ih is None else db, None if b_hh is None else db.copy())


def _torch_grads(dp: Params, b_ih: np.ndarray | None,
                 b_hh: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                                   np.ndarray | None]:
    """Seed-notation gradients → (∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh): the transpose of
    :func:`params_from_torch`, which stacks the blocks like :func:`params_to_torch`; both biases
    receive ∂b_k (None where absent)."""
    dw_ih, dw_hh, db, _ = params_to_torch(dp)
    return dw_ih, dw_hh, None if b_ih is None else db, None if b_hh is None else db.copy()


def lstm_layer(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray,
               w_hh: np.ndarray, b_ih: np.ndarray | None = None,
               b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lstm.layer — nn.LSTM with one layer, not batch_first: (y, h_T, c_T) = layer(x, h0, c0,
    params_from_torch(w_ih, …)), y_t = h_t.

    x: (T, B, D), h0, c0: (B, H), w_ih: (4H, D), w_hh: (4H, H), b_ih, b_hh: (4H,) or None →
    (y: (T, B, H), h_T: (B, H), c_T: (B, H)).
    """
    _check_cell_args(x, h0, c0, w_ih, w_hh, b_ih, b_hh, sequence=True)
    return layer(x, h0, c0, params_from_torch(w_ih, w_hh, b_ih, b_hh))


def lstm_layer_vjp(g: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray, h0: np.ndarray,
                   c0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                   b_ih: np.ndarray | None = None,
                   b_hh: np.ndarray | None = None) -> tuple[np.ndarray | None, ...]:
    """lstm.layer — backpropagation through time in nn.LSTM's layout: g = (gy, ghT, gcT) →
    (∂x, ∂h0, ∂c0, ∂w_ih, ∂w_hh, ∂b_ih, ∂b_hh), None for an absent bias (:func:`layer_vjp`)."""
    _check_cell_args(x, h0, c0, w_ih, w_hh, b_ih, b_hh, sequence=True)
    gy, ghT, gcT = g
    dx, dh0, dc0, dp = layer_vjp(gy, ghT, gcT, x, h0, c0, params_from_torch(w_ih, w_hh, b_ih, b_hh))
    return (dx, dh0, dc0, *_torch_grads(dp, b_ih, b_hh))


def lstm_cell_projection(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                         w_hh: np.ndarray, w_hr: np.ndarray, b_ih: np.ndarray | None = None,
                         b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lstm.cell.projection — one step of nn.LSTM(proj_size=P): c' = f ⊙ c + i ⊙ g as in
    lstm_cell, h' = w_hr (o ⊙ tanh(c')) (= cell_projection with params_from_torch).

    x: (B, D), h: (B, P), c: (B, H), w_ih: (4H, D), w_hh: (4H, P), w_hr: (P, H), b_ih, b_hh:
    (4H,) or None → (h': (B, P), c': (B, H)).
    """
    _check_cell_args(x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr)
    return cell_projection(x, h, c, params_from_torch(w_ih, w_hh, b_ih, b_hh), w_hr)


def lstm_cell_projection_vjp(g: tuple[np.ndarray, np.ndarray], x: np.ndarray, h: np.ndarray,
                             c: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, w_hr: np.ndarray,
                             b_ih: np.ndarray | None = None,
                             b_hh: np.ndarray | None = None) -> tuple[np.ndarray | None, ...]:
    """lstm.cell.projection — backward: g = (gh, gc) → (∂x, ∂h, ∂c, ∂w_ih, ∂w_hh, ∂w_hr, ∂b_ih,
    ∂b_hh), None for an absent bias (:func:`cell_projection_vjp`)."""
    _check_cell_args(x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr)
    gh, gc = g
    dx, dh, dc, dp, dw_hr = cell_projection_vjp(gh, gc, x, h, c,
                                                params_from_torch(w_ih, w_hh, b_ih, b_hh), w_hr)
    dw_ih, dw_hh, db_ih, db_hh = _torch_grads(dp, b_ih, b_hh)
    return dx, dh, dc, dw_ih, dw_hh, dw_hr, db_ih, db_hh


def lstm_layer_projection(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray,
                          w_hh: np.ndarray, w_hr: np.ndarray, b_ih: np.ndarray | None = None,
                          b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """lstm.cell.projection — nn.LSTM(proj_size=P) with one layer: lstm_cell_projection run
    over x: (T, B, D) from h0: (B, P), c0: (B, H) → (y: (T, B, P), h_T: (B, P), c_T: (B, H))."""
    _check_cell_args(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr, sequence=True)
    return layer_projection(x, h0, c0, params_from_torch(w_ih, w_hh, b_ih, b_hh), w_hr)


def lstm_layer_projection_vjp(g: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray,
                              h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                              w_hr: np.ndarray, b_ih: np.ndarray | None = None,
                              b_hh: np.ndarray | None = None) -> tuple[np.ndarray | None, ...]:
    """lstm.cell.projection — backpropagation through time of :func:`lstm_layer_projection`:
    g = (gy, ghT, gcT) → (∂x, ∂h0, ∂c0, ∂w_ih, ∂w_hh, ∂w_hr, ∂b_ih, ∂b_hh)."""
    _check_cell_args(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr, sequence=True)
    gy, ghT, gcT = g
    dx, dh0, dc0, dp, dw_hr = layer_projection_vjp(
        gy, ghT, gcT, x, h0, c0, params_from_torch(w_ih, w_hh, b_ih, b_hh), w_hr)
    dw_ih, dw_hh, db_ih, db_hh = _torch_grads(dp, b_ih, b_hh)
    return dx, dh0, dc0, dw_ih, dw_hh, dw_hr, db_ih, db_hh


def pre_activations_stacked(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                            b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None) -> np.ndarray:
    """The gate pre-activations x w_ihᵀ + h w_hhᵀ + b_ih + b_hh, (B, 4H) in PyTorch's block order
    i, f, g, o (seed 000's X W_x· + H W_h· + b_·, side by side)."""
    A = x @ w_ih.T + h @ w_hh.T
    for b in (b_ih, b_hh):
        if b is not None:
            A = A + b
    return A


def gate_magnitude(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                   b_ih: np.ndarray | None = None, b_hh: np.ndarray | None = None) -> np.ndarray:
    """Σ|terms| of the pre-activations, |x||w_ih|ᵀ + |h||w_hh|ᵀ + |b_ih| + |b_hh|: the scale of
    their tol.accumulated bound."""
    return pre_activations_stacked(np.abs(x), np.abs(h), np.abs(w_ih), np.abs(w_hh),
                                   None if b_ih is None else np.abs(b_ih),
                                   None if b_hh is None else np.abs(b_hh))


# ---- the concatenated parametrisation --------------------------------------------------------

def cell_concatenated(x: np.ndarray, h: np.ndarray, c: np.ndarray,
                      q: ConcatParams) -> tuple[np.ndarray, np.ndarray]:
    """lstm.cell.concatenated — f_t = σ(W_f[h_{t−1}, x_t] + b_f), likewise i_t, o_t, and
    c̃_t = tanh(W_c[h_{t−1}, x_t] + b_c); c_t = f_t ⊙ c_{t−1} + i_t ⊙ c̃_t, h_t = o_t ⊙ tanh(c_t)
    (seed 002 ⑫–⑰, seed 004 §4).

    Batched as rows: [h, x] is (n, h + d) and W_k[h, x] is [h, x] W_kᵀ. x: (n, d), h, c: (n, h)
    → (h_t, c_t), each (n, h).
    """
    hx = np.concatenate([h, x], axis=-1)
    f = sigmoid(hx @ q.W_f.T + q.b_f)
    i = sigmoid(hx @ q.W_i.T + q.b_i)
    c_tilde = np.tanh(hx @ q.W_c.T + q.b_c)
    o = sigmoid(hx @ q.W_o.T + q.b_o)
    c_t = f * c + i * c_tilde
    h_t = o * np.tanh(c_t)
    return h_t, c_t


def concat_params_from(p: Params) -> ConcatParams:
    """Seed 000's parameters → the concatenated ones: W_k = [W_hkᵀ, W_xkᵀ] (columns for h, then
    x), b_k unchanged."""

    def W(W_xk: np.ndarray, W_hk: np.ndarray) -> np.ndarray:
        return np.concatenate([W_hk.T, W_xk.T], axis=1)

    return ConcatParams(W(p.W_xf, p.W_hf), p.b_f, W(p.W_xi, p.W_hi), p.b_i,
                        W(p.W_xc, p.W_hc), p.b_c, W(p.W_xo, p.W_ho), p.b_o)


def params_from_concat(q: ConcatParams) -> Params:
    """The concatenated parameters → seed 000's: W_hk = W_k[:, :h]ᵀ, W_xk = W_k[:, h:]ᵀ."""
    hidden = np.shape(q.b_f)[0]

    def split(W_k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return W_k[:, hidden:].T, W_k[:, :hidden].T

    (W_xi, W_hi), (W_xf, W_hf) = split(q.W_i), split(q.W_f)
    (W_xo, W_ho), (W_xc, W_hc) = split(q.W_o), split(q.W_c)
    return Params(W_xi, W_hi, q.b_i, W_xf, W_hf, q.b_f, W_xo, W_ho, q.b_o, W_xc, W_hc, q.b_c)


# ---- known bugs ------------------------------------------------------------------------------

def no_tanh_on_cell(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                    w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                    b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lstm.bug.no_tanh_on_cell — H_t = O ⊙ C_t: the tanh on the cell is forgotten."""
    _check_cell_args(x, h, c, w_ih, w_hh, b_ih, b_hh)
    I, F, O, C_tilde = gates(x, h, params_from_torch(w_ih, w_hh, b_ih, b_hh))
    C_t = F * c + I * C_tilde
    return O * C_t, C_t


def ungated_hidden(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                   w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                   b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lstm.bug.ungated_hidden — H_t = tanh(C_t): the output gate is left out of the state
    (seed 002 ⑰ writes h_t = tanh(c_t) and gates only the output a_t = o_t ⊙ h_t)."""
    _check_cell_args(x, h, c, w_ih, w_hh, b_ih, b_hh)
    I, F, _, C_tilde = gates(x, h, params_from_torch(w_ih, w_hh, b_ih, b_hh))
    C_t = F * c + I * C_tilde
    return np.tanh(C_t), C_t


def gate_order_ifog(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                    w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                    b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lstm.bug.gate_order_ifog — PyTorch's blocks (i, f, g, o) read as (i, f, o, g): the third
    block drives the output gate and the fourth the candidate cell (Caffe's order, IFOC in
    OpenVINO's LSTMWeightsFormat)."""
    return _blocks_read_as("ifog", x, h, c, w_ih, w_hh, b_ih, b_hh)


def _blocks_read_as(order: str, x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                    w_hh: np.ndarray, b_ih: np.ndarray | None,
                    b_hh: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`lstm_cell` of a cell that reads PyTorch's blocks (i, f, g, o) in another framework's
    block ``order`` (a permutation of "ifgo"): block k drives gate order[k]. Gate q of the cell
    computed therefore takes block order.index(q) of the arguments."""
    _check_cell_args(x, h, c, w_ih, w_hh, b_ih, b_hh)
    hidden = np.shape(w_hh)[0] // 4
    rows = np.concatenate([np.arange(k * hidden, (k + 1) * hidden)
                           for k in (order.index(q) for q in "ifgo")])
    return lstm_cell(x, h, c, w_ih[rows], w_hh[rows],
                     None if b_ih is None else b_ih[rows], None if b_hh is None else b_hh[rows])


def concat_order(x: np.ndarray, h: np.ndarray, c: np.ndarray,
                 q: ConcatParams) -> tuple[np.ndarray, np.ndarray]:
    """lstm.bug.concat_order — W_k applied to [x, h] where its columns are laid out for [h, x]
    (seed 004 concatenates (input, h), seed 002 writes [h_{t−1}, x_t]); it runs silently for any
    sizes since both have h + d entries."""
    # cell_concatenated(x=h, h=x) concatenates [x, h]: the arguments swap exactly the two parts.
    return cell_concatenated(h, x, c, q)


def concat_order_torch_layout(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                              w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                              b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lstm.bug.concat_order — in nn.LSTMCell's layout: the weights laid out for [h, x]
    (:func:`concat_params_from`) applied to [x, h], the form a contract lstm_cell built on a
    concatenated cell takes, so that the diagnosis can name it."""
    _check_cell_args(x, h, c, w_ih, w_hh, b_ih, b_hh)
    return concat_order(x, h, c, concat_params_from(params_from_torch(w_ih, w_hh, b_ih, b_hh)))


# ---- variants that frameworks ship, named so that the oracle can tell which one it meets -------

def gate_order_onnx(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                    w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                    b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lstm.bug.gate_order_onnx — PyTorch's blocks (i, f, g, o) read in ONNX's order (i, o, f, c):
    the cell of :func:`lstm_cell` with I from block 0, O from block 1, F from block 2 and C̃ from
    block 3 (ONNX's LSTM operator stacks W, R and B as W[iofc])."""
    return _blocks_read_as("iofg", x, h, c, w_ih, w_hh, b_ih, b_hh)


def gate_order_tensorflow(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                          w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                          b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lstm.bug.gate_order_tensorflow — PyTorch's blocks (i, f, g, o) read in TensorFlow 1's
    order (i, c̃, f, o): C̃ from block 1 and F from block 2 (BasicLSTMCell splits its one matmul
    into i, j, f, o; LSTMBlockCell's layout is ICFO)."""
    return _blocks_read_as("igfo", x, h, c, w_ih, w_hh, b_ih, b_hh)


def gate_order_openvino(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                        w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                        b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lstm.bug.gate_order_openvino — PyTorch's blocks (i, f, g, o) read in OpenVINO's order
    (f, i, c, o): F from block 0 and I from block 1 (OpenVINO's LSTMCell and LSTMSequence take
    their weights as FICO)."""
    return _blocks_read_as("figo", x, h, c, w_ih, w_hh, b_ih, b_hh)


#: TF 1's BasicLSTMCell, LSTMCell and LSTMBlockCell default: forget_bias=1.0.
TF1_FORGET_BIAS = 1.0


def forget_bias_every_step(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                           w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                           b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lstm.bug.forget_bias_every_step — F = σ(A_f + 1): a forget bias of 1 added to the forget
    gate's pre-activation at every step, the rest as :func:`lstm_cell`:
    C_t = σ(A_f + 1) ⊙ C + I ⊙ C̃, H_t = O ⊙ tanh(C_t).

    TF 1's BasicLSTMCell, LSTMCell and LSTMBlockCell with their default forget_bias=1.0 (to be set
    to 0 "when restoring from CudnnLSTM-trained checkpoints"); Keras's unit_forget_bias adds the 1
    to the bias once, at initialisation, which the contract's weights already hold.
    """
    _check_cell_args(x, h, c, w_ih, w_hh, b_ih, b_hh)
    p = params_from_torch(w_ih, w_hh, b_ih, b_hh)
    I, _, O, C_tilde = gates(x, h, p)
    F = sigmoid(pre_activations(x, h, p).f + TF1_FORGET_BIAS)
    C_t = F * c + I * C_tilde
    return O * np.tanh(C_t), C_t


def _hard_gated_cell(hard_sigmoid: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                     h: np.ndarray, c: np.ndarray, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cell` with its three gates through ``hard_sigmoid`` instead of σ."""
    A = pre_activations(x, h, p)
    I, F, O = hard_sigmoid(A.i), hard_sigmoid(A.f), hard_sigmoid(A.o)
    C_t = F * c + I * np.tanh(A.c)
    return O * np.tanh(C_t), C_t


def hard_sigmoid_gates_keras2(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                              w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                              b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lstm.bug.hard_sigmoid_gates_keras2 — Keras ≤ 2.2's default LSTM: I, F, O = hs(A_i), hs(A_f),
    hs(A_o) with hs(a) = clip(0.2a + 0.5, 0, 1) (recurrent_activation='hard_sigmoid');
    C_t = F ⊙ C + I ⊙ tanh(A_c), H_t = O ⊙ tanh(C_t). Shapes as :func:`lstm_cell`."""
    _check_cell_args(x, h, c, w_ih, w_hh, b_ih, b_hh)
    return _hard_gated_cell(hard_sigmoid_keras2, x, h, c,
                            params_from_torch(w_ih, w_hh, b_ih, b_hh))


def hard_sigmoid_gates_keras3(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray,
                              w_hh: np.ndarray, b_ih: np.ndarray | None = None,
                              b_hh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lstm.bug.hard_sigmoid_gates_keras3 — Keras 3's LSTM with recurrent_activation=
    'hard_sigmoid': I, F, O = hs(A_i), hs(A_f), hs(A_o) with hs(a) = relu6(a + 3)/6 =
    clip(a/6 + 0.5, 0, 1) (tensorflow/tensorflow#65381); C_t = F ⊙ C + I ⊙ tanh(A_c),
    H_t = O ⊙ tanh(C_t). Shapes as :func:`lstm_cell`."""
    _check_cell_args(x, h, c, w_ih, w_hh, b_ih, b_hh)
    return _hard_gated_cell(hard_sigmoid_keras3, x, h, c,
                            params_from_torch(w_ih, w_hh, b_ih, b_hh))
