"""Bounds derived in spec/ sections and reused by the checks of more than one family.

The tolerance model's rules (checks/tolerance.py) are composed here into the bound one spec
section derives for a whole formula, so that a family whose formula contains another's (an RNN's
loss contains cross-entropy) states that part once, by the same derivation. Each function names
the spec section it implements; no constant is introduced here.
"""

from __future__ import annotations

import numpy as np

from nnspec.checks.bounds import rules as tol
from nnspec.reference import losses as ref_losses


def log_softmax_bound(y: np.ndarray, dtype: np.dtype) -> tol.Bound:
    """|error of log ŷ_j| for logits y (…, C): the same for every j of a row (spec/losses.md,
    "Tolerance of log-sum-exp, shared by every entry below").

    The shifts y_j − m round by u·|y_j − m| ≤ 2u·M (M = max_j |y_j|) and reach log ŷ_j through
    their own term and through log S; each exp is relatively off by 16u and S = Σ e_i by γ_C,
    which log S turns into absolute errors; log S ∈ [0, log C] rounds relatively.
    """
    C = y.shape[-1]
    M = np.max(np.abs(y), axis=-1, keepdims=True)
    b = (tol.accumulated(2.0 * M, 2, dtype)
         + tol.elementwise(np.full(M.shape, np.log(C)), dtype, scale=1.0)
         + tol.accumulated(np.ones(M.shape), C, dtype))
    return tol.Bound(np.broadcast_to(b.atol, y.shape).copy(), b.rule + " (per row)")


def reduced_bound(y: np.ndarray, k: np.ndarray, dtype: np.dtype, *, mean: bool) -> tol.Bound:
    """Σ_t ℓ_t or its mean: the positions' own errors plus γ_N of the N-term sum
    (spec/losses.md, the same section: "the mean over N positions …; the sum …")."""
    ell = np.abs(ref_losses.cross_entropy(y, k))
    per_position = log_softmax_bound(y, dtype).atol[..., 0]
    N = max(k.size, 1)
    reduce = np.mean if mean else np.sum
    own = tol.Bound(np.asarray(reduce(per_position)), "log-sum-exp error of each position "
                    + ("(mean)" if mean else "(sum)"))
    return own + tol.accumulated(reduce(ell), N, dtype)
