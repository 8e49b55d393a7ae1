"""The bounds spec/linear.md derives for the contract's linear and vjp_linear."""

from __future__ import annotations

import numpy as np

from nnspec.checks.bounds import rules as tol
from nnspec.reference import linear as ref


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *, dtype: np.dtype) -> tol.Bound:
    """linear.affine, y = x wᵀ + b: tol.accumulated over in + 1 terms, Σ|terms| = |x||w|ᵀ + |b|."""
    return tol.accumulated(ref.affine_magnitude(x, w, b), w.shape[1] + 1, dtype)


def vjp_linear(g: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
               dtype: np.dtype) -> tuple[tol.Bound, tol.Bound, tol.Bound | None]:
    """linear.affine, (dx, dw, db) = (g w, gᵀx, Σ g) over the leading positions: dx sums out
    terms (|g||w|), dw and db sum one term per leading position (|g|ᵀ|x| and Σ|g|); db is None
    without a bias."""
    g2, x2 = np.abs(g.reshape(-1, w.shape[0])), np.abs(x.reshape(-1, w.shape[1]))
    n_rows = g2.shape[0]
    return (tol.accumulated(np.abs(g) @ np.abs(w), w.shape[0], dtype),
            tol.accumulated(g2.T @ x2, n_rows, dtype),
            None if b is None else tol.accumulated(g2.sum(axis=0), n_rows, dtype))
