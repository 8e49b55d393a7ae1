"""Reference for spec/linear.md."""

from __future__ import annotations

import numpy as np


def affine(x: np.ndarray, W: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """linear.affine — y = x Wᵀ + b.

    x: (…, in), W: (out, in), b: (out,) or None → y: (…, out).
    """
    y = x @ W.T
    return y if b is None else y + b


def affine_vjp(g: np.ndarray, x: np.ndarray, W: np.ndarray,
               b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """linear.affine — backward: ∂x = g W, ∂W = Σ gᵀ x, ∂b = Σ g over the leading axes."""
    g2 = g.reshape(-1, W.shape[0])
    x2 = x.reshape(-1, W.shape[1])
    dx = g @ W
    dW = g2.T @ x2
    db = None if b is None else g2.sum(axis=0)
    return dx, dW, db


def affine_magnitude(x: np.ndarray, W: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Σ|terms| of linear.affine: |x||W|ᵀ + |b|, the scale of its tol.accumulated bound."""
    return affine(np.abs(x), np.abs(W), None if b is None else np.abs(b))


def no_bias(x: np.ndarray, W: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """linear.bug.no_bias — y = x Wᵀ, the bias silently dropped."""
    return x @ W.T
