"""Reference for spec/stability.md: vanishing and exploding products, and gradient clipping."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: ε of torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (total + ε).
CLIP_EPS = 1e-6


def deep_linear_product(X: np.ndarray, *W: np.ndarray) -> np.ndarray:
    """stability.deep_linear_product — H⁽ˡ⁾ = X W⁽¹⁾ W⁽²⁾ … W⁽ˡ⁾ (identity activations, no bias).

    X: (n, d₀), W⁽ⁱ⁾: (d_{i−1}, d_i) → H⁽ˡ⁾: (n, d_l); with no W, H⁽⁰⁾ = X.
    """
    _check_chain(X, W)
    H = X
    for W_i in W:
        H = H @ W_i
    return H


def deep_linear_product_vjp(G: np.ndarray, X: np.ndarray, *W: np.ndarray) -> tuple[np.ndarray, ...]:
    """stability.deep_linear_product — backward: ∂X = G (W⁽¹⁾…W⁽ˡ⁾)ᵀ and
    ∂W⁽ⁱ⁾ = (X W⁽¹⁾…W⁽ⁱ⁻¹⁾)ᵀ G (W⁽ⁱ⁺¹⁾…W⁽ˡ⁾)ᵀ.

    G: (n, d_l) → (∂X, ∂W⁽¹⁾, …, ∂W⁽ˡ⁾), shaped like (X, W⁽¹⁾, …, W⁽ˡ⁾).
    """
    _check_chain(X, W)
    H = [X]
    for W_i in W:
        H.append(H[-1] @ W_i)
    if np.shape(G) != np.shape(H[-1]):
        raise ValueError(f"cotangent G has shape {np.shape(G)}; H⁽ˡ⁾ has shape {np.shape(H[-1])}")
    # G_i = ∂L/∂H⁽ⁱ⁾ runs backwards: G_{i−1} = G_i W⁽ⁱ⁾ᵀ, and ∂W⁽ⁱ⁾ = H⁽ⁱ⁻¹⁾ᵀ G_i.
    dW: list[np.ndarray] = [np.empty(0)] * len(W)
    G_i = G
    for i in reversed(range(len(W))):
        dW[i] = H[i].T @ G_i
        G_i = G_i @ W[i].T
    return (G_i, *dW)


def deep_linear_product_magnitude(X: np.ndarray, *W: np.ndarray) -> np.ndarray:
    """Σ|terms| of stability.deep_linear_product: |X||W⁽¹⁾|…|W⁽ˡ⁾|, the scale of its error bound."""
    return deep_linear_product(np.abs(X), *(np.abs(W_i) for W_i in W))


def _check_chain(X: np.ndarray, W: Sequence[np.ndarray]) -> None:
    if np.ndim(X) != 2:
        raise ValueError(f"X must be a matrix (n, d₀); got shape {np.shape(X)}")
    d = np.shape(X)[1]
    for i, W_i in enumerate(W, start=1):
        if np.ndim(W_i) != 2 or np.shape(W_i)[0] != d:
            raise ValueError(f"W⁽{i}⁾ has shape {np.shape(W_i)}; the chain needs ({d}, d_{i})")
        d = np.shape(W_i)[1]


def _check_norm_type(norm_type: float) -> float:
    p = float(norm_type)
    if not p >= 1.0:
        raise ValueError(f"norm_type = {norm_type!r}: the spec covers p-norms with p ≥ 1 or inf")
    return p


def _check_threshold(name: str, value: float) -> None:
    if not 0.0 <= value < math.inf:
        raise ValueError(f"{name} = {value!r} must be a finite number ≥ 0")


def vector_norm(v: np.ndarray, p: float) -> np.floating:
    """‖v‖_p of all elements of v: (Σ|v|ᵖ)^(1/p), or max|v| for p = inf; NaN propagates, 0 if empty."""
    a = np.abs(np.asarray(v, dtype=np.float64)).ravel()
    if p == math.inf:
        return np.max(a, initial=0.0)
    return np.sum(a**p) ** (1.0 / p)


def total_norm(grads: Sequence[np.ndarray], norm_type: float = 2.0) -> float:
    """stability.clip_grad_norm — total = ‖(‖g₁‖_p, …, ‖g_k‖_p)‖_p, the p-norm of all gradients
    viewed as one concatenated vector (p = inf: the largest |element|).

    grads: k arrays of any shapes → a float (inf or nan if an element is).
    """
    p = _check_norm_type(norm_type)
    return float(vector_norm(np.array([vector_norm(g, p) for g in grads]), p))


def clip_grad_norm(grads: Sequence[np.ndarray], max_norm: float,
                   norm_type: float = 2.0) -> tuple[list[np.ndarray], float]:
    """stability.clip_grad_norm — g_i ← g_i · min(max_norm/(total + ε), 1), ε = 1e-6.

    grads: k arrays of any shapes → (the k clipped arrays, total). An infinite element makes
    total = inf and the coefficient 0 (finite elements become 0, infinite ones NaN); a NaN makes
    total and every clipped element NaN.
    """
    _check_threshold("max_norm", max_norm)
    total = total_norm(grads, norm_type)
    clip_coef = np.minimum(max_norm / (total + CLIP_EPS), 1.0)
    # ∞·0 = NaN is the specified result for an infinite gradient element, not an accident.
    with np.errstate(invalid="ignore"):
        return [np.asarray(g, dtype=np.float64) * clip_coef for g in grads], total


def clip_grad_value(grads: Sequence[np.ndarray], clip_value: float) -> list[np.ndarray]:
    """stability.clip_grad_value — g ← min(max(g, −c), c) elementwise, c = clip_value.

    grads: k arrays of any shapes → the k clipped arrays (±inf → ±c, NaN stays NaN).
    """
    _check_threshold("clip_value", clip_value)
    return [np.clip(np.asarray(g, dtype=np.float64), -clip_value, clip_value) for g in grads]


def clip_per_tensor(grads: Sequence[np.ndarray], max_norm: float,
                    norm_type: float = 2.0) -> tuple[list[np.ndarray], float]:
    """stability.bug.clip_per_tensor — g_i ← g_i · min(max_norm/(‖g_i‖_p + ε), 1): each tensor
    clipped by its own norm instead of the global one (total returned unchanged).

    What tf.keras optimisers' clipnorm does (tf.clip_by_norm per weight; global_clipnorm is the
    global form: keras-team/keras#13575, tensorflow/tensorflow#36001)."""
    _check_threshold("max_norm", max_norm)
    p = _check_norm_type(norm_type)
    clipped = [np.asarray(g, dtype=np.float64) * min(max_norm / (float(vector_norm(g, p)) + CLIP_EPS), 1.0)
               for g in grads]
    return clipped, total_norm(grads, p)


def clip_no_eps(grads: Sequence[np.ndarray], max_norm: float,
                norm_type: float = 2.0) -> tuple[list[np.ndarray], float]:
    """stability.bug.clip_no_eps — g_i ← g_i · min(max_norm/total, 1): ε left out, so the
    coefficient is off by the factor 1 + ε/total (visible for small totals)."""
    _check_threshold("max_norm", max_norm)
    total = total_norm(grads, norm_type)
    # As in the code it models, a zero total divides by zero (coefficient inf, clamped to 1).
    with np.errstate(divide="ignore", invalid="ignore"):
        clip_coef = np.minimum(np.float64(max_norm) / np.float64(total), 1.0)
        return [np.asarray(g, dtype=np.float64) * clip_coef for g in grads], total


def clip_always_scales(grads: Sequence[np.ndarray], max_norm: float,
                       norm_type: float = 2.0) -> tuple[list[np.ndarray], float]:
    """stability.bug.clip_always_scales — g_i ← g_i · max_norm/(total + ε) without min(·, 1):
    gradients below the threshold are scaled up to norm max_norm."""
    _check_threshold("max_norm", max_norm)
    total = total_norm(grads, norm_type)
    return [np.asarray(g, dtype=np.float64) * (max_norm / (total + CLIP_EPS)) for g in grads], total
