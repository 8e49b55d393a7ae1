"""The bound spec/initialisation.md allows on the limits of the uniform initialisers."""

from __future__ import annotations

import numpy as np

from nnspec.checks.bounds import rules as tol


def limit_rounding(limit: float, *, dtype: np.dtype) -> tol.Bound:
    """initialisation.xavier_uniform, initialisation.torch_default_linear and
    initialisation.torch_default_rnn: every |w| ≤ limit up to the rounding of the limit in
    DTYPE (a square root and a few products, tol.elementwise)."""
    return tol.elementwise(limit, dtype)
