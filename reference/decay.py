"""Reference for spec/decay.md: how ‖∂L/∂h_{T−k}‖ decays or grows with the distance k, measured
for a whole sequence in one backward sweep, in log space.

Seed 001 §6.1.6: back-propagation multiplies by the shared weight matrix at every step, so the
gradient shrinks or grows geometrically; seed 000 (二) gives the scalar example 0.2³⁰ and 5³⁰.
With L = ⟨v, h_T⟩ and A_t = ∂s_t/∂s_{t−1} the Jacobian of one step with respect to the state s
(s = h for the RNN and the GRU, s = (h, c) for the LSTM), the cotangents obey

    v_0 = ∂L/∂s_T = (v, 0),   v_k = ∂L/∂s_{T−k} = A_{T−k+1}ᵀ v_{k−1},   g(k) = ‖h-part of v_k‖.

One backward sweep applies each A_tᵀ once. After every step the cotangent is divided by 2^e,
e the binary exponent of its norm; that division is exact in floating point, and the sum E_k of
the exponents is an integer, so log g(k) = E_k·ln 2 + log‖ṽ_k‖ never underflows or overflows:
0.9¹⁰⁰⁰⁰ ≈ 10⁻⁴⁵⁸ is below float64's range, its logarithm −1053.6 is not.

Arrays carry a leading axis of S independent draws (weights, inputs, cotangent), which the
per-step NumPy calls process together. The cells are evaluated in PyTorch's layout (w_ih, w_hh,
b_ih, b_hh with gate blocks r, z, n for the GRU and i, f, g, o for the LSTM) by batched step
functions written from the cells' equations; checks/test_decay.py ties them to the cell
references rnn_cell, gru_cell and lstm_cell by complex-step derivatives of those references.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from nnspec.reference.activations import relu, relu_vjp, sigmoid, sigmoid_vjp, tanh, tanh_vjp

#: Gate blocks per cell in PyTorch's layout.
GATES = {"rnn": 1, "gru": 3, "lstm": 4}

INITS = ("pytorch", "xavier", "orthogonal")


def _identity(a: np.ndarray) -> np.ndarray:
    return a


def _identity_vjp(g: np.ndarray, a: np.ndarray) -> tuple[np.ndarray]:
    return (g * np.ones_like(a),)


class Nonlinearity(NamedTuple):
    """An RNN's φ, its backward, and γ = sup|φ'| (the factor of Pascanu et al.'s bound)."""

    phi: Callable[[np.ndarray], np.ndarray]
    phi_vjp: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray]]
    gamma: float


#: φ of the Elman RNN: nn.RNN's tanh and ReLU, seed 003's sigmoid g_h, seed 004's linear i2h.
NONLINEARITIES = {
    "tanh": Nonlinearity(tanh, tanh_vjp, 1.0),
    "relu": Nonlinearity(relu, relu_vjp, 1.0),
    "sigmoid": Nonlinearity(sigmoid, sigmoid_vjp, 0.25),
    "linear": Nonlinearity(_identity, _identity_vjp, 1.0),
}


@dataclass(frozen=True)
class Cell:
    """Which recurrent cell: ``kind`` "rnn", "gru" or "lstm"; ``nonlinearity`` (RNN only) one of
    :data:`NONLINEARITIES`."""

    kind: str
    nonlinearity: str = "tanh"

    def __post_init__(self) -> None:
        if self.kind not in GATES:
            raise ValueError(f"cell kind = {self.kind!r} must be one of {sorted(GATES)}")
        if self.nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity = {self.nonlinearity!r} must be one of "
                             f"{sorted(NONLINEARITIES)}")
        if self.kind != "rnn" and self.nonlinearity != "tanh":
            raise ValueError(f"nonlinearity = {self.nonlinearity!r} applies to the rnn cell only "
                             f"(the {self.kind} fixes its own activations)")

    @property
    def gates(self) -> int:
        return GATES[self.kind]

    def state_size(self, hidden: int) -> int:
        """n = H for the RNN and the GRU, 2H for the LSTM's (h, c)."""
        return 2 * hidden if self.kind == "lstm" else hidden

    def __str__(self) -> str:
        return f"rnn({self.nonlinearity})" if self.kind == "rnn" else self.kind


class Params(NamedTuple):
    """PyTorch-layout parameters of S draws stacked on a leading axis: w_ih (S, G·H, D),
    w_hh (S, G·H, H), b_ih and b_hh (S, G·H) (zeros stand for an absent bias)."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray

    @property
    def hidden(self) -> int:
        return self.w_hh.shape[2]

    @property
    def draws(self) -> int:
        return self.w_hh.shape[0]

    def draw(self, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Draw s's (w_ih, w_hh, b_ih, b_hh), the arguments of rnn_cell, gru_cell, lstm_cell."""
        return self.w_ih[s], self.w_hh[s], self.b_ih[s], self.b_hh[s]


def stack(draws: Sequence[tuple[np.ndarray | None, ...]]) -> Params:
    """Stack per-draw (w_ih, w_hh, b_ih, b_hh) tuples into :class:`Params` (None biases → 0)."""
    if not draws:
        raise ValueError("stack() needs at least one draw")
    w_ih = np.stack([np.asarray(d[0], dtype=np.float64) for d in draws])
    w_hh = np.stack([np.asarray(d[1], dtype=np.float64) for d in draws])
    rows = w_hh.shape[1]
    b_ih, b_hh = (np.stack([np.zeros(rows) if d[i] is None else np.asarray(d[i], dtype=np.float64)
                            for d in draws]) for i in (2, 3))
    return Params(w_ih, w_hh, b_ih, b_hh)


def _check_params(cell: Cell, p: Params) -> None:
    if p.w_hh.ndim != 3 or p.w_hh.shape[1] != cell.gates * p.w_hh.shape[2]:
        raise ValueError(f"w_hh must have shape (draws, {cell.gates}·hidden, hidden) for the "
                         f"{cell} cell, got {p.w_hh.shape}")
    S, rows, _ = p.w_hh.shape
    if p.w_ih.ndim != 3 or p.w_ih.shape[:2] != (S, rows):
        raise ValueError(f"w_ih must have shape ({S}, {rows}, input), got {p.w_ih.shape}")
    for name, b in (("b_ih", p.b_ih), ("b_hh", p.b_hh)):
        if b.shape != (S, rows):
            raise ValueError(f"{name} must have shape ({S}, {rows}), got {b.shape}")


# ---- the cells, batched over draws, and their Jacobian-transpose products -------------------
#
# Shapes: x_t (S, 1, D), state s (S, 1, n), cotangents g (S, m, n) for m cotangents per draw.
# Each step function reads like its cell's equation in PyTorch's layout; the matching
# state_vjp returns ∂L/∂s_{t−1} = A_tᵀ g from the cotangent g of s_t, recomputing the step's
# gates. Neither computes weight gradients, which the decay measurement does not need.

class _Weights(NamedTuple):
    """Params rearranged once for row-vector products: U = w_ihᵀ (S, D, G·H),
    W = w_hhᵀ (S, H, G·H), w_hh (S, G·H, H), biases (S, 1, G·H)."""

    U: np.ndarray
    W: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray


def _weights(p: Params) -> _Weights:
    return _Weights(np.ascontiguousarray(np.swapaxes(p.w_ih, 1, 2)),
                    np.ascontiguousarray(np.swapaxes(p.w_hh, 1, 2)),
                    np.ascontiguousarray(p.w_hh), p.b_ih[:, None, :], p.b_hh[:, None, :])


def _rnn_step(w: _Weights, x_t: np.ndarray, h: np.ndarray, nl: Nonlinearity) -> np.ndarray:
    """h' = φ(x w_ihᵀ + b_ih + h w_hhᵀ + b_hh)."""
    return nl.phi(x_t @ w.U + w.b_ih + h @ w.W + w.b_hh)


def _rnn_state_vjp(w: _Weights, g: np.ndarray, x_t: np.ndarray, h: np.ndarray,
                   nl: Nonlinearity) -> np.ndarray:
    """∂h = (g ⊙ φ'(a)) w_hh: A_t = diag(φ'(a_t)) w_hh."""
    (g_a,) = nl.phi_vjp(g, x_t @ w.U + w.b_ih + h @ w.W + w.b_hh)
    return g_a @ w.w_hh


def _gru_gates(w: _Weights, x_t: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, ...]:
    """nn.GRUCell's r = σ(a_r), z = σ(a_z), n = tanh(a_n) with a_n = i_n + r ⊙ h_n, and the
    pieces its backward needs."""
    H = h.shape[-1]
    i_r, i_z, i_n = np.split(x_t @ w.U + w.b_ih, 3, axis=-1)
    h_r, h_z, h_n = np.split(h @ w.W + w.b_hh, 3, axis=-1)
    a_rz = np.concatenate([i_r + h_r, i_z + h_z], axis=-1)
    rz = sigmoid(a_rz)
    r, z = rz[..., :H], rz[..., H:]
    a_n = i_n + r * h_n
    return a_rz, r, z, h_n, a_n, tanh(a_n)


def _gru_step(w: _Weights, x_t: np.ndarray, h: np.ndarray) -> np.ndarray:
    """h' = (1 − z) ⊙ n + z ⊙ h."""
    _, _, z, _, _, n = _gru_gates(w, x_t, h)
    return (1 - z) * n + z * h


def _gru_state_vjp(w: _Weights, g: np.ndarray, x_t: np.ndarray, h: np.ndarray) -> np.ndarray:
    """∂a_n = g ⊙ (1 − z) ⊙ tanh'(a_n), ∂a_z = g ⊙ (h − n) ⊙ σ'(a_z), ∂h_n = ∂a_n ⊙ r,
    ∂a_r = ∂a_n ⊙ h_n ⊙ σ'(a_r); ∂h = g ⊙ z + [∂a_r, ∂a_z, ∂h_n] w_hh."""
    a_rz, r, z, h_n, a_n, n = _gru_gates(w, x_t, h)
    (da_n,) = tanh_vjp(g * (1 - z), a_n)
    (da_rz,) = sigmoid_vjp(np.concatenate([da_n * h_n, g * (h - n)], axis=-1), a_rz)
    dh_n = da_n * r
    return g * z + np.concatenate([da_rz, dh_n], axis=-1) @ w.w_hh


def _lstm_gates(w: _Weights, x_t: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, ...]:
    """nn.LSTMCell's pre-activations A = x w_ihᵀ + h w_hhᵀ + b (blocks i, f, g, o), the gates
    i, f, o = σ(A_·), g = tanh(A_g), and c' = f ⊙ c + i ⊙ g."""
    H = s.shape[-1] // 2
    h, c = s[..., :H], s[..., H:]
    A = x_t @ w.U + w.b_ih + h @ w.W + w.b_hh
    A_ifo = np.concatenate([A[..., :2 * H], A[..., 3 * H:]], axis=-1)
    A_g = A[..., 2 * H:3 * H]
    ifo = sigmoid(A_ifo)
    i, f, o = ifo[..., :H], ifo[..., H:2 * H], ifo[..., 2 * H:]
    g = tanh(A_g)
    c_new = f * c + i * g
    return A_ifo, A_g, i, f, g, o, c, c_new


def _lstm_step(w: _Weights, x_t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(h', c') with c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c'), as one state [h', c']."""
    _, _, _, _, _, o, _, c_new = _lstm_gates(w, x_t, s)
    return np.concatenate([o * tanh(c_new), c_new], axis=-1)


def _lstm_state_vjp(w: _Weights, gs: np.ndarray, x_t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """With (g_h, g_c) the cotangent of (h', c'): ∂c' = g_c + g_h ⊙ o ⊙ tanh'(c');
    ∂A_i = ∂c' ⊙ g ⊙ σ'(A_i), ∂A_f = ∂c' ⊙ c ⊙ σ'(A_f), ∂A_g = ∂c' ⊙ i ⊙ tanh'(A_g),
    ∂A_o = g_h ⊙ tanh(c') ⊙ σ'(A_o); ∂h = [∂A_i, ∂A_f, ∂A_g, ∂A_o] w_hh, ∂c = ∂c' ⊙ f."""
    A_ifo, A_g, i, f, g, o, c, c_new = _lstm_gates(w, x_t, s)
    H = s.shape[-1] // 2
    g_h, g_c = gs[..., :H], gs[..., H:]
    (dc_new,) = tanh_vjp(g_h * o, c_new)
    dc_new = dc_new + g_c
    (dA_ifo,) = sigmoid_vjp(np.concatenate([dc_new * g, dc_new * c, g_h * tanh(c_new)], axis=-1),
                            A_ifo)
    (dA_g,) = tanh_vjp(dc_new * i, A_g)
    dA = np.concatenate([dA_ifo[..., :2 * H], dA_g, dA_ifo[..., 2 * H:]], axis=-1)
    return np.concatenate([dA @ w.w_hh, dc_new * f], axis=-1)


def _step_functions(cell: Cell) -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]:
    if cell.kind == "rnn":
        nl = NONLINEARITIES[cell.nonlinearity]
        return (lambda w, x_t, s: _rnn_step(w, x_t, s, nl),
                lambda w, g, x_t, s: _rnn_state_vjp(w, g, x_t, s, nl))
    if cell.kind == "gru":
        return _gru_step, _gru_state_vjp
    return _lstm_step, _lstm_state_vjp


# ---- the forward run -------------------------------------------------------------------------

class Trajectory(NamedTuple):
    """A forward run of S draws: inputs x (S, T, D) and states (S, T + 1, n), states[:, t] = s_t
    (s_0 the initial state; for the LSTM s_t = [h_t, c_t])."""

    cell: Cell
    params: Params
    x: np.ndarray
    states: np.ndarray

    @property
    def length(self) -> int:
        return self.x.shape[1]


def run(cell: Cell, params: Params, x: np.ndarray, state0: np.ndarray | None = None) -> Trajectory:
    """Run the cell over x (S, T, D) from state0 (S, n), zeros by default, storing every state."""
    _check_params(cell, params)
    x = np.asarray(x, dtype=np.float64)
    S, H = params.draws, params.hidden
    if x.ndim != 3 or x.shape[0] != S or x.shape[2] != params.w_ih.shape[2] or x.shape[1] < 1:
        raise ValueError(f"x must have shape ({S}, T ≥ 1, {params.w_ih.shape[2]}), got {x.shape}")
    n = cell.state_size(H)
    s = np.zeros((S, n)) if state0 is None else np.asarray(state0, dtype=np.float64)
    if s.shape != (S, n):
        raise ValueError(f"state0 must have shape ({S}, {n}), got {s.shape}")
    step, _ = _step_functions(cell)
    w = _weights(params)
    T = x.shape[1]
    states = np.empty((S, T + 1, n))
    states[:, 0] = s
    s = s[:, None, :]
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            s = step(w, x[:, t:t + 1], s)
            states[:, t + 1] = s[:, 0]
    finite = np.all(np.isfinite(states), axis=(0, 2))
    if not np.all(finite):
        t = int(np.argmin(finite))
        raise FloatingPointError(f"the {cell} cell's state left float64's range at step t = {t}: "
                                 f"the forward run overflows (a linear or ReLU RNN whose weights "
                                 f"expand); a linear RNN's Jacobians do not depend on its inputs, "
                                 f"so it can be measured with x = 0")
    return Trajectory(cell, params, x, states)


def _state_vjp(traj: Trajectory) -> Callable[[np.ndarray, int, _Weights], np.ndarray]:
    """g ↦ A_tᵀ g for step t (1 … T) of the trajectory."""
    _, vjp = _step_functions(traj.cell)

    def apply(g: np.ndarray, t: int, w: _Weights) -> np.ndarray:
        return vjp(w, g, traj.x[:, t - 1:t], traj.states[:, t - 1:t])

    return apply


def _split_exponent(norm: np.ndarray) -> np.ndarray:
    """The binary exponent e with norm = m·2^e, m ∈ [0.5, 1) (0 for a zero norm)."""
    if not np.all(np.isfinite(norm)):
        raise FloatingPointError(f"a renormalised cotangent has a non-finite norm {norm}")
    return np.frexp(norm)[1]


def log_or_minus_inf(x: np.ndarray) -> np.ndarray:
    """log with log 0 = −inf (a cotangent part that is exactly zero)."""
    with np.errstate(divide="ignore"):
        return np.log(x)


# ---- decay.gradient_norm -----------------------------------------------------------------------

class GradientNorms(NamedTuple):
    """log g(k) for k = 0 … T, per draw, and the final cotangent in exponent form.

    log_g: (S, T + 1), log‖∂L/∂h_{T−k}‖; log_g_c: (S, T + 1), log‖∂L/∂c_{T−k}‖ (LSTM; None
    otherwise); log_g_state: (S, T + 1), log of the norm of the whole state cotangent;
    mantissa (S, n) and exponent (S,): ∂L/∂s_0 = mantissa·2^exponent.
    """

    log_g: np.ndarray
    log_g_c: np.ndarray | None
    log_g_state: np.ndarray
    mantissa: np.ndarray
    exponent: np.ndarray


def _parts_log_norms(squares_h: np.ndarray, squares_c: np.ndarray | None,
                     exponents: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    scale = exponents * math.log(2.0)
    log_h = 0.5 * log_or_minus_inf(squares_h) + scale
    if squares_c is None:
        return log_h, None, log_h
    return (log_h, 0.5 * log_or_minus_inf(squares_c) + scale,
            0.5 * log_or_minus_inf(squares_h + squares_c) + scale)


def _initial_cotangent(traj: Trajectory, v: np.ndarray) -> np.ndarray:
    S, H = traj.params.draws, traj.params.hidden
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (S, H) or not np.all(np.isfinite(v)):
        raise ValueError(f"v = ∂L/∂h_T must be finite with shape ({S}, {H}), got {v.shape}")
    g = np.zeros((S, 1, traj.states.shape[2]))
    g[:, 0, :H] = v
    return g


def gradient_norms(traj: Trajectory, v: np.ndarray) -> GradientNorms:
    """decay.gradient_norm — g(k) = ‖∂L/∂h_{T−k}‖ for every k = 0 … T in one backward sweep,
    L = ⟨v, h_T⟩: v_k = A_{T−k+1}ᵀ v_{k−1}, kept as 2^{E_k}·ṽ_k with ṽ_k renormalised by an exact
    power of two after every step, so log g(k) = E_k ln 2 + log‖h-part of ṽ_k‖ exactly.

    traj: a :func:`run` of S draws over T steps; v: (S, H) → :class:`GradientNorms`.
    """
    g = _initial_cotangent(traj, v)
    S, T, H = g.shape[0], traj.length, traj.params.hidden
    lstm = traj.cell.kind == "lstm"
    squares_h = np.empty((S, T + 1))
    squares_c = np.empty((S, T + 1)) if lstm else None
    exponents = np.zeros((S, T + 1), dtype=np.int64)
    apply, w = _state_vjp(traj), _weights(traj.params)
    E = np.zeros(S, dtype=np.int64)
    for k in range(T + 1):
        if k:
            g = apply(g, T - k + 1, w)
        sq_h = np.einsum("si,si->s", g[:, 0, :H], g[:, 0, :H])
        sq_c = np.einsum("si,si->s", g[:, 0, H:], g[:, 0, H:]) if lstm else 0.0
        e = _split_exponent(np.sqrt(sq_h + sq_c))
        g = np.ldexp(g, -e[:, None, None])
        E = E + e
        exponents[:, k] = E
        # ldexp of the squares themselves: 2^(−2e) alone overflows for norms below 2^−512
        squares_h[:, k] = np.ldexp(sq_h, -2 * e)
        if squares_c is not None:
            squares_c[:, k] = np.ldexp(sq_c, -2 * e)
    log_g, log_g_c, log_state = _parts_log_norms(squares_h, squares_c, exponents)
    return GradientNorms(log_g, log_g_c, log_state, g[:, 0], E)


def log_norms(rows: np.ndarray) -> np.ndarray:
    """log‖row‖ over the last axis, without the norm's own underflow or overflow (each row is
    scaled by a power of two before squaring); −inf for a zero row, +inf for a row with inf or
    nan entries (a computation that overflowed)."""
    rows = np.asarray(rows, dtype=np.float64)
    finite = np.all(np.isfinite(rows), axis=-1)
    safe = np.where(finite[..., None], rows, 0.0)
    e = np.frexp(np.max(np.abs(safe), axis=-1))[1]
    squares = np.sum(np.ldexp(safe, -e[..., None]) ** 2, axis=-1)
    return np.where(finite, 0.5 * log_or_minus_inf(squares) + e * math.log(2.0), np.inf)


def naive_gradient_norms(traj: Trajectory, v: np.ndarray,
                         ks: Sequence[int] | np.ndarray | None = None) -> GradientNorms:
    """decay.gradient_norm — the naive baseline: for every k of ks (default 0 … T) a separate
    backward pass from h_T to h_{T−k} in plain floating point (T(T + 1)/2 steps for all k,
    against T for the sweep). Below float64's range it returns 0, or stalls on the smallest
    subnormals when a step multiplies them by more than 1/2; above it, inf.

    Same arguments and result as :func:`gradient_norms`, with one column per k of ks; its log g
    is −inf where the pass underflowed to 0 and +inf where it overflowed.
    """
    ks = _requested(ks, traj.length)
    g0 = _initial_cotangent(traj, v)
    S, T, H = g0.shape[0], traj.length, traj.params.hidden
    cotangents = np.empty((S, ks.size, g0.shape[2]))
    apply, w = _state_vjp(traj), _weights(traj.params)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for j, k in enumerate(ks):
            g = g0
            for t in range(T, T - k, -1):
                g = apply(g, t, w)
            cotangents[:, j] = g[:, 0]
    lstm = traj.cell.kind == "lstm"
    return GradientNorms(log_norms(cotangents[..., :H]),
                         log_norms(cotangents[..., H:]) if lstm else None,
                         log_norms(cotangents), cotangents[:, -1], np.zeros(S, dtype=np.int64))


# ---- decay.jacobian_norm -----------------------------------------------------------------------

def _requested(ks: Sequence[int] | np.ndarray | None, T: int) -> np.ndarray:
    ks = np.arange(T + 1) if ks is None else np.asarray(ks, dtype=np.int64)
    if ks.ndim != 1 or ks.size == 0 or np.any(ks < 0) or np.any(ks > T) or np.any(np.diff(ks) <= 0):
        raise ValueError(f"ks must be increasing integers in [0, {T}], got {ks}")
    return ks


def jacobian_norms(traj: Trajectory, ks: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """decay.jacobian_norm — log‖∂h_T/∂s_{T−k}‖₂ (spectral norm, s = h or (h, c)) at each k of
    ks (default: every k = 0 … T), from one backward sweep of the H cotangents e_1 … e_H of h_T:
    M_k = J_kᵀ = A_{T−k+1}ᵀ M_{k−1}, kept as 2^{E_k}·M̃_k with an exact power-of-two rescaling
    after every step; log‖J_k‖₂ = E_k ln 2 + log σ_max(M̃_k).

    → (S, len(ks)).
    """
    ks = _requested(ks, traj.length)
    S, H, n = traj.params.draws, traj.params.hidden, traj.states.shape[2]
    M = np.zeros((S, H, n))
    M[:, np.arange(H), np.arange(H)] = 1.0
    apply, w = _state_vjp(traj), _weights(traj.params)
    E = np.zeros(S, dtype=np.int64)
    out = np.empty((S, ks.size))
    j = 0
    for k in range(ks[-1] + 1):
        if k:
            M = apply(M, traj.length - k + 1, w)
            e = _split_exponent(np.max(np.abs(M), axis=(1, 2)))
            M = np.ldexp(M, -e[:, None, None])
            E = E + e
        if k == ks[j]:
            sigma = np.linalg.norm(M, ord=2, axis=(1, 2))
            out[:, j] = log_or_minus_inf(sigma) + E * math.log(2.0)
            j += 1
    return out


# ---- decay.lyapunov_qr ---------------------------------------------------------------------------

class Lyapunov(NamedTuple):
    """exponents: (S, p), the p largest per-step exponents over the whole run, decreasing;
    top_curve: (S, T + 1), Σ_{j ≤ k} log|R_11(j)|, the log-growth of the first QR direction."""

    exponents: np.ndarray
    top_curve: np.ndarray


def lyapunov_exponents(traj: Trajectory, count: int | None = None) -> Lyapunov:
    """decay.lyapunov_qr — the Lyapunov spectrum of the Jacobian products by QR
    re-orthonormalisation: Q_0 = the first p unit vectors of the state, and for k = 1 … T,
    A_{T−k+1}ᵀ Q_{k−1} = Q_k R_k (thin QR, |diag R| taken positive);
    λ_i = (1/T) Σ_k log|R_k,ii|, i = 1 … p (p = count, default: all n).

    Σ_i log|R_k,ii| is the log-volume growth of the p-dimensional subspace, so for p = n it is
    log|det A_{T−k+1}| exactly; λ_1 is the top exponent, the rate of g(k).
    """
    T, S = traj.length, traj.params.draws
    n = traj.states.shape[2]
    p = n if count is None else int(count)
    if not 1 <= p <= n:
        raise ValueError(f"count = {count!r} must be between 1 and the state size {n}")
    Q = np.zeros((S, p, n))
    Q[:, np.arange(p), np.arange(p)] = 1.0
    apply, w = _state_vjp(traj), _weights(traj.params)
    sums = np.zeros((S, p))
    top = np.zeros((S, T + 1))
    for k in range(1, T + 1):
        Z = apply(Q, T - k + 1, w)
        q, r = np.linalg.qr(np.swapaxes(Z, 1, 2))
        Q = np.swapaxes(q, 1, 2)
        log_r = log_or_minus_inf(np.abs(np.diagonal(r, axis1=1, axis2=2)))
        sums += log_r
        top[:, k] = top[:, k - 1] + log_r[:, 0]
    return Lyapunov(sums / T, top)


# ---- decay.rate ----------------------------------------------------------------------------------

class Rate(NamedTuple):
    """per_draw: (S,) least-squares slopes of log g(k) against k over [k_min, k_max];
    mean and its standard error std/√S over the draws (nan for S = 1)."""

    per_draw: np.ndarray
    mean: float
    standard_error: float
    k_min: int
    k_max: int


def rate(log_g: np.ndarray, *, k_min: int = 0, k_max: int | None = None) -> Rate:
    """decay.rate — the per-step rate λ̂ = slope of the least-squares line through
    (k, log g(k)), k_min ≤ k ≤ k_max, per draw; mean ± standard error over the S draws.

    For a linear RNN with W = s·Q, log g(k) = log g(0) + k ln s and λ̂ = ln s exactly; in
    general λ̂ estimates the top Lyapunov exponent of the Jacobian products.
    log_g: (S, T + 1) → :class:`Rate`.
    """
    log_g = np.asarray(log_g, dtype=np.float64)
    if log_g.ndim != 2:
        raise ValueError(f"log_g must have shape (draws, T + 1), got {log_g.shape}")
    T = log_g.shape[1] - 1
    k_max = T if k_max is None else int(k_max)
    if not 0 <= k_min < k_max <= T:
        raise ValueError(f"need 0 ≤ k_min < k_max ≤ T = {T}, got k_min = {k_min}, "
                         f"k_max = {k_max}")
    y = log_g[:, k_min:k_max + 1]
    if not np.all(np.isfinite(y)):
        raise ValueError("log g(k) is not finite over [k_min, k_max]: the gradient is exactly "
                         "zero there (e.g. ∂L/∂h of an LSTM whose h does not feed back)")
    k = np.arange(k_min, k_max + 1, dtype=np.float64)
    dk = k - k.mean()
    slopes = (y - y.mean(axis=1, keepdims=True)) @ dk / (dk @ dk)
    S = slopes.size
    se = float(np.std(slopes, ddof=1) / math.sqrt(S)) if S > 1 else math.nan
    return Rate(slopes, float(np.mean(slopes)), se, k_min, k_max)
