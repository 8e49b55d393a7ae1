"""The bound spec/dropout.md derives for the values of inverted dropout and its gradient.

Which units are dropped is random and checked statistically (checks/harness/stats.py); given the
mask an implementation drew, the kept values are compared with the reference under this bound.
"""

from __future__ import annotations

import numpy as np

from nnspec.checks.bounds import rules as tol
from nnspec.reference import dropout as ref


def _scale(want: np.ndarray, dtype: np.dtype) -> tol.Bound:
    # x/(1 − p) versus x·fl(1/fl(1 − p)) in DTYPE: < 4u relative
    return tol.elementwise(want, dtype, ulps=tol.REORDER_ULPS)


def dropout(x: np.ndarray, kept: np.ndarray, p: float, *, dtype: np.dtype) -> tol.Bound:
    """dropout.inverted, h' = ξ·x/(1 − p) for the mask ξ = ``kept``: x/(1 − p) versus
    x·fl(1/fl(1 − p)) in DTYPE, tol.elementwise with REORDER_ULPS (< 4u relative)."""
    return _scale(ref.inverted(x, kept, p), dtype)


def vjp_dropout(g: np.ndarray, x: np.ndarray, kept: np.ndarray, p: float, *,
                dtype: np.dtype) -> tol.Bound:
    """dropout.inverted, dx = ξ·g/(1 − p) for the forward's mask ξ = ``kept``: the same
    reordering bound as the forward."""
    return _scale(ref.inverted_vjp(g, x, kept, p)[0], dtype)
