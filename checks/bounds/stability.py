"""The bounds spec/stability.md derives: deep linear products and clipping by global norm.

The tolerance rules (checks/bounds/rules.py) are composed here into the bound of the contract's
clip_grad_norm (total and clipped gradients), of a chain of the contract's linear, and of the
reference-only claims; checks/test_stability.py and the exported test vectors use these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nnspec.checks.bounds import rules as tol
from nnspec.reference import stability as ref


def clip_grad_norm_total(grads: Sequence[np.ndarray], p: float, *, dtype: np.dtype) -> tol.Bound:
    """stability.clip_grad_norm, the total norm T: exact for p = inf, otherwise the two-level
    sums' γ_N divided by p, plus the four |·|ᵖ and ·^(1/p) steps."""
    T = ref.total_norm(grads, p)
    if p == math.inf:
        return tol.exact(T)
    N = max(g.size for g in grads) + len(grads)
    return (tol.accumulated(T, N, dtype).scaled(1 / p, f"1/p (the 1/p-th root, p = {p:g})")
            + tol.elementwise(T, dtype).scaled(2 + 2 / p, "|·|ᵖ and ·^(1/p) at both levels"))


def clip_grad_norm(grads: Sequence[np.ndarray], max_norm: float, p: float, *,
                   dtype: np.dtype) -> tuple[tol.Bound, list[tol.Bound]]:
    """stability.clip_grad_norm, (total, clipped gradients): T's bound, and per gradient T's error
    carried by |g|·min(c, 1)/(T + ε) plus the product's tol.elementwise."""
    want_clipped, T = ref.clip_grad_norm(grads, max_norm, p)
    bound_T = clip_grad_norm_total(grads, p, dtype=dtype)
    c = min(max_norm / (T + ref.CLIP_EPS), 1.0)
    return bound_T, [bound_T.scaled(np.abs(g) * c / (T + ref.CLIP_EPS), "|g|·min(c, 1)/(T + ε)")
                     + tol.elementwise(want_i, dtype)
                     for g, want_i in zip(grads, want_clipped, strict=True)]


def deep_linear_chain(X: np.ndarray, W: Sequence[np.ndarray], *, dtype: np.dtype) -> tol.Bound:
    """stability.deep_linear_product, H⁽ˡ⁾ by chained linear maps: tol.accumulated over the
    Σ_i rows(W⁽ⁱ⁾) products and sums with Σ|terms| = |X||W⁽¹⁾|⋯|W⁽ˡ⁾|."""
    n = sum(W_i.shape[0] for W_i in W)
    return tol.accumulated(ref.deep_linear_product_magnitude(X, *W), n, dtype)


def scalar_power(exact: float) -> tol.Bound:
    """stability.deep_linear_product, w³⁰ by 30 scalar layers (reference, float64): fl(0.2)
    carries u and each of the 29 products one more rounding (Lemma 3.1): γ₅₉."""
    return tol.accumulated(exact, 59, np.float64)


def input_gradient_norm(G: np.ndarray, X: np.ndarray, W: Sequence[np.ndarray],
                        want: float) -> tol.Bound:
    """stability.deep_linear_product, ‖∂L/∂X‖_F = |w|ˡ‖G‖_F for W⁽ⁱ⁾ = w·(signed permutation)
    (reference, float64): the l·d products carried by |G||W⁽ˡ⁾|ᵀ⋯, the two Frobenius norms'
    sums, and one more rounding of the result."""
    n, d = X.shape
    propagated = np.linalg.norm(ref.deep_linear_product(np.abs(G),
                                                        *(np.abs(W_i).T for W_i in reversed(W))))
    return (tol.accumulated(propagated, len(W) * d, np.float64)
            + tol.accumulated(want, 2 * (n * d + 1), np.float64) + tol.elementwise(want, np.float64))
