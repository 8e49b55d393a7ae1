"""The bounds spec/losses.md derives: log-sum-exp and everything built on it.

The tolerance rules (checks/bounds/rules.py) are composed here into the bound of each contract
function of the losses (softmax, log_softmax, cross_entropy, cross_entropy_sum,
vjp_cross_entropy) and of the identities the spec states. A family whose formula contains a loss
(an RNN's loss contains cross-entropy) reuses these, so that part is stated once, by the same
derivation. Each function names the spec section it implements; no constant is introduced here.
"""

from __future__ import annotations

import numpy as np

from nnspec.checks.bounds import rules as tol
from nnspec.reference import losses as ref_losses


def log_softmax(y: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """losses.log_softmax, |error of log ŷ_j| for logits y (…, C): the same for every j of a row
    (spec/losses.md, "Tolerance of log-sum-exp, shared by every entry below").

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
    per_position = log_softmax(y, dtype=dtype).atol[..., 0]
    N = max(k.size, 1)
    reduce = np.mean if mean else np.sum
    own = tol.Bound(np.asarray(reduce(per_position)), "log-sum-exp error of each position "
                    + ("(mean)" if mean else "(sum)"))
    return own + tol.accumulated(reduce(ell), N, dtype)


def softmax_bound(y: np.ndarray, y_hat: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """losses.softmax around the value ŷ = exp(log ŷ): log ŷ's error (:func:`log_softmax`) plus one
    more exp or division, relative to ŷ, and the underflow of ŷ (spec/losses.md, "+ λ")."""
    relative = log_softmax(y, dtype=dtype) + tol.elementwise(np.ones(y.shape), dtype)
    # Scaling by ŷ scales the rules' own tiny terms away; the exp (or division) that yields ŷ
    # is one more rounding, which below tiny loses up to tiny absolutely (spec/losses.md, "+ λ").
    underflow = tol.Bound(np.full(y.shape, tol.underflow(dtype)), "underflow of ŷ: tiny")
    return relative.scaled(y_hat, "ŷ") + underflow


def softmax(y: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """losses.softmax: softmax_bound at ŷ = softmax(y)."""
    return softmax_bound(y, ref_losses.softmax(y), dtype=dtype)


def cross_entropy(y: np.ndarray, k: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """losses.sequence_mean (and losses.cross_entropy, one position): reduced_bound of the mean."""
    return reduced_bound(y, k, dtype, mean=True)


def cross_entropy_sum(y: np.ndarray, k: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """losses.sequence_sum: reduced_bound of the sum."""
    return reduced_bound(y, k, dtype, mean=False)


def vjp_cross_entropy(g: float | np.ndarray, y: np.ndarray, k: np.ndarray, *,
                      dtype: np.dtype) -> tol.Bound:
    """losses.sequence_mean, dlogits = g·(ŷ − o)/N: ŷ's error scaled by |g|/N, then the
    subtraction (2 terms) and the scaling by g/N."""
    y_hat, o = ref_losses.softmax(y), ref_losses.one_hot(k, y.shape[-1])
    per = np.abs(g) / max(k.size, 1)
    return (softmax(y, dtype=dtype).scaled(per, "|g|/N")
            + tol.accumulated((y_hat + o) * per, 2, dtype))


# ---- identities the spec states ----------------------------------------------------------------

def softmax_row_sum(y: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """losses.softmax, Σ_j ŷ_j = 1: the sum of the row's element bounds, plus the float64 C-term
    sum the check forms."""
    per_element = softmax(y, dtype=dtype)
    return (tol.Bound(per_element.atol.sum(axis=-1), f"Σ_j ({per_element.rule})")
            + tol.accumulated(np.ones(y.shape[:-1]), y.shape[-1], np.float64))


def sum_against_n_times_mean(y: np.ndarray, k: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """losses.sequence_sum = N·losses.sequence_mean: the sum's bound plus N times the mean's."""
    N = k.size
    return (cross_entropy_sum(y, k, dtype=dtype)
            + cross_entropy(y, k, dtype=dtype).scaled(N, f"N = {N}"))


def sum_and_mean(y: np.ndarray, k: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """losses.sequence_mean against losses.sequence_sum: the two bounds together, within which a
    conforming mean and sum of N > 1 positions cannot coincide unless the sum itself is that small."""
    return cross_entropy_sum(y, k, dtype=dtype) + cross_entropy(y, k, dtype=dtype)


def seed_form_against_index_form(y: np.ndarray) -> tol.Bound:
    """losses.cross_entropy, −Σ_j o_j log ŷ_j against −log ŷ_k (reference, float64): two
    evaluations of the same log-sum-exp, each within its bound, per position."""
    bound = log_softmax(y, dtype=np.dtype(np.float64)).scaled(2.0, "two evaluations")
    return tol.Bound(bound.atol[..., 0], bound.rule)


def softmax_state_sum(H: int) -> tol.Bound:
    """losses.bug.softmax_hidden_activation, Σ a_t = 1 for a softmax state of H units (reference,
    float64): the H-term sum and one more rounding of the library function."""
    return tol.accumulated(1.0, H, np.float64) + tol.elementwise(1.0, np.float64)
