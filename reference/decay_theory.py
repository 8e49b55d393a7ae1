"""Reference for spec/decay.md's predictions: the closed forms and bounds that the measured decay
of ‖∂L/∂h_(T−k)‖ (reference/decay.py) is compared with — the linear orthogonal RNN, Pascanu et
al.'s norm bound and the eigenvalue bound, the mean-field rate of a random tanh RNN, and a gate
saturated at σ(b).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from nnspec.reference.activations import sigmoid, tanh_vjp
from nnspec.reference.decay import NONLINEARITIES, Params, log_or_minus_inf, stack


def orthogonal_log_norm(s: float, k: np.ndarray | int) -> np.ndarray:
    """decay.linear_orthogonal — for the linear RNN h_t = W h_{t−1} + U x_t + b with W = s·Q, Q
    orthogonal, s > 0: ∂h_T/∂h_{T−k} = (sQ)^k, so log‖∂h_T/∂h_{T−k}‖₂ = log g(k) − log g(0)
    = k·ln s for every cotangent v. k: int or array → same shape."""
    if not s > 0:
        raise ValueError(f"s = {s!r} must be positive")
    return np.asarray(k, dtype=np.float64) * math.log(s)


def _log_power(w_hh: np.ndarray, nonlinearity: str, k: np.ndarray | int,
               norm: Callable[[np.ndarray], float]) -> np.ndarray:
    """k·ln(γ·norm(W)), with 0 at k = 0 and −inf for k ≥ 1 when the factor is 0."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity = {nonlinearity!r} must be one of {sorted(NONLINEARITIES)}")
    w_hh = np.asarray(w_hh, dtype=np.float64)
    if w_hh.ndim != 2 or w_hh.shape[0] != w_hh.shape[1]:
        raise ValueError(f"w_hh must be a square (H, H) matrix, got shape {w_hh.shape}")
    k = np.asarray(k, dtype=np.float64)
    if np.any(k < 0):
        raise ValueError(f"k = {k} must be non-negative")
    log_factor = float(log_or_minus_inf(np.asarray(NONLINEARITIES[nonlinearity].gamma * norm(w_hh))))
    return np.multiply(k, log_factor, out=np.zeros_like(k), where=k > 0)


def pascanu_log_bound(w_hh: np.ndarray, nonlinearity: str, k: np.ndarray | int) -> np.ndarray:
    """decay.pascanu_bound — ‖∂h_t/∂h_{t−k}‖₂ ≤ (γ·σ_max(W))^k for h_t = φ(W h_{t−1} + U x_t + b)
    (Pascanu, Mikolov, Bengio 2013, eq. 7), γ = sup|φ'|: 1 for tanh, ReLU and linear, 1/4 for the
    sigmoid; σ_max the largest singular value. Returns k·ln(γ σ_max(W)), k: int or array."""
    return _log_power(w_hh, nonlinearity, k, lambda W: float(np.linalg.norm(W, 2)))


def eigenvalue_log_bound(w_hh: np.ndarray, nonlinearity: str, k: np.ndarray | int) -> np.ndarray:
    """decay.bug.eigenvalue_bound — k·ln(γ·ρ(W)) with ρ the spectral radius (largest |eigenvalue|),
    seed 001 §6.1.6's "特征值小于1则梯度逐渐减小" read as a bound: it is the asymptotic rate of a
    linear RNN (Gelfand's formula), but a non-normal W with ρ(W) < 1 < σ_max(W) exceeds it."""
    return _log_power(w_hh, nonlinearity, k, lambda W: float(np.max(np.abs(np.linalg.eigvals(W)))))


def _hermite_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return nodes, weights / math.sqrt(2.0 * math.pi)


#: Gauss–Hermite rules for E[f(z)], z ~ N(0, 1), exact for polynomials of degree < 2n. numpy's
#: construction overflows beyond n ≈ 400; 201 points give tanh'² to about 1e-8 relative (its poles
#: at ±iπ/(2√q) slow the convergence), far below the statistical errors it is compared with.
GAUSS_HERMITE = {n: _hermite_rule(n) for n in (101, 201)}


def gaussian_mean(f: Callable[[np.ndarray], np.ndarray], variance: float, nodes: int = 201) -> float:
    """E[f(√variance·z)], z ~ N(0, 1), by ``nodes``-point Gauss–Hermite quadrature (101 or 201;
    the difference of the two estimates the error of the coarser one)."""
    if nodes not in GAUSS_HERMITE:
        raise ValueError(f"nodes = {nodes!r} must be one of {sorted(GAUSS_HERMITE)}")
    z, w = GAUSS_HERMITE[nodes]
    return float(w @ f(math.sqrt(variance) * z))


class MeanField(NamedTuple):
    """q* (the fixed-point pre-activation variance), χ = σ_w²·E[tanh'(√q* z)²], the infinite-H
    rate ½ ln χ, and the leading finite-size term (−c/H) of the rate at hidden size H."""

    q_star: float
    chi: float
    rate: float
    finite_size: float


def mean_field_tanh(sigma_w: float, sigma_x: float, sigma_b: float = 0.0,
                    hidden: int | None = None) -> MeanField:
    """decay.mean_field_tanh — the rate of a tanh RNN h_t = tanh(W h_{t−1} + u_t + b) with
    W_ij ~ (0, σ_w²/H) i.i.d., input drive u_t,i ~ N(0, σ_x²) and b_i ~ N(0, σ_b²) (mean field,
    H → ∞): q* = σ_w²·E[tanh(√q* z)²] + σ_x² + σ_b² (fixed-point iteration), χ = σ_w²·E[tanh'(√q* z)²]
    (Gauss–Hermite), rate = ½ ln χ. With ``hidden`` = H, ``finite_size`` is the leading 1/H term of
    E log: −(3·E[tanh'⁴]/E[tanh'²]² − 1)/(4H), from E ln(mean of H terms) ≈ ln(mean) − var/(2 mean²).
    """
    for name, value in (("sigma_w", sigma_w), ("sigma_x", sigma_x), ("sigma_b", sigma_b)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} = {value!r} must be a finite non-negative number")
    if sigma_w == 0:
        raise ValueError("sigma_w = 0: the gradient vanishes in one step, the rate is −inf")
    if hidden is not None and hidden < 1:
        raise ValueError(f"hidden = {hidden!r} must be a positive integer")
    drive = sigma_x ** 2 + sigma_b ** 2
    q = drive + sigma_w ** 2
    for _ in range(10_000):
        q_next = sigma_w ** 2 * gaussian_mean(lambda a: np.tanh(a) ** 2, q) + drive
        if abs(q_next - q) <= 1e-15 * max(q, 1e-300):
            q = q_next
            break
        q = q_next
    slope2 = gaussian_mean(lambda a: tanh_vjp(np.ones_like(a), a)[0] ** 2, q)
    slope4 = gaussian_mean(lambda a: tanh_vjp(np.ones_like(a), a)[0] ** 4, q)
    chi = sigma_w ** 2 * slope2
    finite = 0.0 if hidden is None else -(3.0 * slope4 / slope2 ** 2 - 1.0) / (4.0 * hidden)
    return MeanField(q, chi, 0.5 * math.log(chi), finite)


def gaussian_tanh_params(hidden: int, sigma_w: float, draws: int,
                         rng: np.random.Generator) -> Params:
    """The mean-field setting of :func:`mean_field_tanh` for a tanh RNN: w_hh ~ N(0, σ_w²/H)
    i.i.d., w_ih = I_H (so the input drive is u_t = x_t itself), no bias; ``draws`` draws."""
    if hidden < 1 or draws < 1 or not sigma_w > 0:
        raise ValueError(f"need hidden ≥ 1, draws ≥ 1 and sigma_w > 0, got {hidden}, {draws}, "
                         f"{sigma_w}")
    return stack([(np.eye(hidden), sigma_w / math.sqrt(hidden) * rng.standard_normal((hidden, hidden)),
                   None, None) for _ in range(draws)])


def carried_log_norm(bias: float, k: np.ndarray | int) -> np.ndarray:
    """decay.saturated_gates — a gate held at σ(b) carries the cotangent with the factor σ(b) per
    step: the GRU's ∂h_{t−1} = z ⊙ ∂h_t and the LSTM's ∂c_{t−1} = f ⊙ ∂c_t once h no longer feeds
    the gates (w_hh = 0) and the gate's input weights are 0. Returns k·ln σ(b) (→ 0, no decay, as
    b → ∞: σ(b) rounds to 1 for b ≥ 37)."""
    return np.asarray(k, dtype=np.float64) * float(np.log(sigmoid(np.asarray(float(bias)))))
