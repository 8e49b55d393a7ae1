"""Reference for spec/model_selection.md: polynomial fitting and K-fold cross-validation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg

#: fit(x_train, y_train) → a predictor ŷ = predict(x).
Fit = Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]
#: loss(ŷ, y) → the mean loss over the samples.
Loss = Callable[[np.ndarray, np.ndarray], float]


def design_matrix(x: np.ndarray, K: int) -> np.ndarray:
    """The Vandermonde design matrix A = [1, x, x², …, x^K] of model_selection.polynomial.

    x: (n,) → A: (n, K + 1), so that ŷ = A·[b, w₁, …, w_K].
    """
    _check_degree(K)
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"x must be a vector (n,); got shape {x.shape}")
    return x[:, None] ** np.arange(K + 1)


def polynomial(x: np.ndarray, b: float, w: np.ndarray) -> np.ndarray:
    """model_selection.polynomial — ŷ = b + Σ_{k=1..K} x^k w_k.

    x: (n,), b: scalar, w: (K,) → ŷ: (n,).
    """
    w = np.asarray(w)
    if w.ndim != 1:
        raise ValueError(f"w must be a vector (K,); got shape {w.shape}")
    return b + design_matrix(x, w.size)[:, 1:] @ w


def squared_loss(y_hat: np.ndarray, y: np.ndarray) -> float:
    """model_selection.polynomial — the loss (1/n) Σᵢ ½(ŷᵢ − yᵢ)².

    y_hat, y: (n,) with n ≥ 1 → a float.
    """
    y_hat, y = np.asarray(y_hat), np.asarray(y)
    if y_hat.shape != y.shape or y.ndim != 1 or y.size == 0:
        raise ValueError(f"ŷ and y must be non-empty vectors of one shape; got {y_hat.shape} "
                         f"and {y.shape}")
    return float(np.mean(0.5 * (y_hat - y) ** 2))


def polynomial_fit(x: np.ndarray, y: np.ndarray, K: int) -> tuple[float, np.ndarray]:
    """model_selection.polynomial — the least-squares fit (b, w) = argmin (1/n) Σᵢ ½(ŷᵢ − yᵢ)²,
    by Householder QR of the design matrix A (the minimum-norm fit when K + 1 > n).

    x, y: (n,) with at least min(n, K + 1) distinct x → (b, w (K,)).
    """
    A = design_matrix(x, K)
    y = np.asarray(y, dtype=np.float64)
    n = A.shape[0]
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) like x; got {y.shape}")
    if np.unique(x).size < min(n, K + 1):
        raise ValueError(f"a degree-{K} fit to {n} points needs at least {min(n, K + 1)} distinct "
                         f"x (otherwise A has dependent columns); got {np.unique(x).size}")
    if n >= K + 1:
        # A = QR with orthonormal Q: minimise ‖Rθ − Qᵀy‖, never forming AᵀA (κ(A)², not κ(A)).
        Q, R = np.linalg.qr(A)
        θ = scipy.linalg.solve_triangular(R, Q.T @ y)
    else:
        # Fewer points than coefficients: every interpolant fits; take the one of least ‖θ‖,
        # θ = Q R⁻ᵀ y from Aᵀ = QR (the minimum-norm solution np.linalg.lstsq returns too).
        Q, R = np.linalg.qr(A.T)
        θ = Q @ scipy.linalg.solve_triangular(R, y, trans="T")
    return float(θ[0]), θ[1:]


def kfold(n: int, K: int, seed: int) -> list[np.ndarray]:
    """model_selection.kfold — K disjoint folds of the indices 0…n−1 that cover each exactly
    once, of sizes ⌈n/K⌉ (the first n mod K folds) and ⌊n/K⌋, cut from a permutation drawn
    with numpy.random.default_rng(seed).

    → K index arrays; the same seed gives the same folds.
    """
    if not 2 <= K <= n:
        raise ValueError(f"K = {K} folds of n = {n} samples: need 2 ≤ K ≤ n")
    return np.array_split(np.random.default_rng(seed).permutation(n), K)


def kfold_error(x: np.ndarray, y: np.ndarray, K: int, *, fit: Fit, loss: Loss,
                seed: int) -> tuple[float, float]:
    """model_selection.kfold_error — train on K − 1 folds, validate on the k-th, and average:
    (1/K) Σ_k loss(f_k(x_{−k}), y_{−k}) and (1/K) Σ_k loss(f_k(x_k), y_k), f_k = fit(x_{−k}, y_{−k}).

    x, y: (n,) (or any arrays indexed by sample along axis 0) → (training error, validation error).
    """
    training, validation = _fold_errors(x, y, kfold(len(y), K, seed), fit, loss, leak=False)
    return float(np.mean(training)), float(np.mean(validation))


def _fold_errors(x: np.ndarray, y: np.ndarray, folds: list[np.ndarray], fit: Fit, loss: Loss,
                 *, leak: bool) -> tuple[list[float], list[float]]:
    if len(x) != len(y):
        raise ValueError(f"x and y must hold the same number of samples; got {len(x)} and {len(y)}")
    training, validation = [], []
    for k, held_out in enumerate(folds):
        rest = np.concatenate([fold for j, fold in enumerate(folds) if j != k])
        trained_on = np.arange(len(y)) if leak else rest
        predict = fit(x[trained_on], y[trained_on])
        training.append(loss(predict(x[rest]), y[rest]))
        validation.append(loss(predict(x[held_out]), y[held_out]))
    return training, validation


def kfold_drops_remainder(n: int, K: int, seed: int) -> list[np.ndarray]:
    """model_selection.bug.kfold_drops_remainder — K folds of ⌊n/K⌋ shuffled indices each; the
    last n mod K indices of the permutation are in no fold (d2l's get_k_fold_data)."""
    if not 2 <= K <= n:
        raise ValueError(f"K = {K} folds of n = {n} samples: need 2 ≤ K ≤ n")
    size = n // K
    order = np.random.default_rng(seed).permutation(n)
    return [order[k * size:(k + 1) * size] for k in range(K)]


def validation_leak(x: np.ndarray, y: np.ndarray, K: int, *, fit: Fit, loss: Loss,
                    seed: int) -> tuple[float, float]:
    """model_selection.bug.validation_leak — each model is fitted on all n samples, the
    validation fold included, so the validation error is optimistic."""
    training, validation = _fold_errors(x, y, kfold(len(y), K, seed), fit, loss, leak=True)
    return float(np.mean(training)), float(np.mean(validation))


def _check_degree(K: int) -> None:
    if not (isinstance(K, int | np.integer) and K >= 0):
        raise ValueError(f"degree K = {K!r} must be an integer ≥ 0")
