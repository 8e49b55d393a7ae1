"""Reference for spec/losses.md.

Logits y have the classes on the last axis, (…, C); targets k are integer class indices of the
leading shape (…). The smooth functions accept complex logits (complex-step differentiation):
the max shift m is taken over the real parts, a real constant per row, which leaves the value
unchanged and keeps every exp(y − m) from overflowing.
"""

from __future__ import annotations

import numpy as np

from nnspec.reference.activations import tanh


def _check_targets(y: np.ndarray, k: np.ndarray) -> None:
    k = np.asarray(k)
    if k.dtype.kind not in "iu":
        raise ValueError(f"targets must be integer class indices, got dtype {k.dtype}")
    if k.shape != np.shape(y)[:-1]:
        raise ValueError(f"targets have shape {k.shape}, but logits of shape {np.shape(y)} "
                         f"need {np.shape(y)[:-1]}")
    C = np.shape(y)[-1]
    if k.size and (k.min() < 0 or k.max() >= C):
        raise ValueError(f"target {int(k.min()) if k.min() < 0 else int(k.max())} is not a "
                         f"class index in [0, {C - 1}]")


def _shift(y: np.ndarray) -> np.ndarray:
    """m = max_j Re y_j per row, kept as a (…, 1) axis."""
    return np.max(np.real(y), axis=-1, keepdims=True)


def softmax(y: np.ndarray) -> np.ndarray:
    """losses.softmax — ŷ_j = exp(y_j) / Σ_i exp(y_i), over the last axis.

    Evaluated as exp(y_j − m)/Σ_i exp(y_i − m), m = max_i y_i: every exponent is ≤ 0, so
    nothing overflows, and the largest term is 1, so the sum is ≥ 1. y: (…, C) → ŷ: (…, C).
    """
    e = np.exp(y - _shift(y))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(y: np.ndarray) -> np.ndarray:
    """losses.log_softmax — log ŷ_j = y_j − logsumexp(y), logsumexp(y) = m + log Σ_i exp(y_i − m).

    Never −inf for finite logits, unlike log(softmax(y)). y: (…, C) → (…, C).
    """
    d = y - _shift(y)
    return d - np.log(np.exp(d).sum(axis=-1, keepdims=True))


def one_hot(k: np.ndarray, C: int) -> np.ndarray:
    """losses.one_hot — o = e_k ∈ {0, 1}^C: 1 at index k (0-based, k ∈ [0, |V| − 1]), 0 elsewhere.

    k: integer array (…) → o: (…, C) float64.
    """
    k = np.asarray(k)
    if not (isinstance(C, int | np.integer) and C >= 1):
        raise ValueError(f"one_hot: the number of classes C = {C!r} is not a positive integer")
    _check_targets(np.empty((*k.shape, C)), k)
    return (k[..., None] == np.arange(C)).astype(np.float64)


def embedding(W: np.ndarray, k: np.ndarray) -> np.ndarray:
    """losses.embedding — x = W o, o = one_hot(k): the k-th column of W (seed 001's layout).

    W: (d, |V|), one column per word; k: integer array (…) → (…, d).
    """
    return one_hot(k, np.shape(W)[1]) @ np.asarray(W).T


def embedding_rows(E: np.ndarray, k: np.ndarray) -> np.ndarray:
    """losses.embedding.rows — x = E[k], the k-th row of E (torch.nn.Embedding's layout).

    E: (|V|, d), one row per word, E = Wᵀ; k: integer array (…) → (…, d).
    """
    _check_targets(np.empty((*np.shape(k), np.shape(E)[0])), np.asarray(k))
    return np.asarray(E)[k]


def cross_entropy(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """losses.cross_entropy — ℓ = −Σ_j o_j log ŷ_j = −log ŷ_k = log Σ_j exp(y_j − y_k), o = one_hot(k).

    One loss per position: y: (…, C), k: (…) → ℓ: (…). The sum is shifted by r = m − y_k,
    ℓ = r + log Σ_j exp(y_j − (y_k + r)), so no exponent is positive. Shifting by y_k itself
    (rather than by m alone) keeps the derivative Σ_j ŷ_j (∂y_j − ∂y_k) free of the cancellation
    between −∂y_k and ŷ_k ∂y_k, which the complex-step check of the gradient needs.
    """
    _check_targets(y, k)
    y_k = np.take_along_axis(y, np.asarray(k)[..., None], axis=-1)
    r = _shift(y) - np.real(y_k)
    return (r + np.log(np.exp(y - (y_k + r)).sum(axis=-1, keepdims=True)))[..., 0]


def cross_entropy_onehot(o: np.ndarray, y: np.ndarray) -> np.ndarray:
    """losses.cross_entropy — ℓ(o, ŷ) = −Σ_j o_j log ŷ_j, ŷ = softmax(y), as seed 001 writes it.

    o: (…, C) one-hot (or any distribution), y: (…, C) logits → ℓ: (…).
    """
    if np.shape(o) != np.shape(y):
        raise ValueError(f"o has shape {np.shape(o)}, but y has shape {np.shape(y)}")
    return -(o * log_softmax(y)).sum(axis=-1)


def sequence_mean(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """losses.sequence_mean — L = (1/T) Σ_t ℓ(o_t, ŷ_t), the mean over all N leading positions.

    The contract's cross_entropy(logits, target). y: (…, C), k: (…) → L: () with N = k.size;
    for a (T, B, C) batch, N = T·B and L is the batch mean of each sequence's (1/T) Σ_t ℓ_t.
    """
    return cross_entropy(y, k).mean()


def _softmax_minus_one_hot(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """ŷ − o. Where ŷ_k ≥ 1/2, ŷ_k − 1 is formed as −Σ_{j≠k} ŷ_j: the same number, without the
    cancellation that costs ŷ_k − 1 its relative accuracy as ŷ_k → 1 (below 1/2 the direct
    form is the accurate one)."""
    _check_targets(y, k)
    y_hat, o = softmax(y), one_hot(k, np.shape(y)[-1])
    others = (y_hat * (1.0 - o)).sum(axis=-1, keepdims=True)
    at_target = np.where(y_hat >= 0.5, -others, y_hat - 1.0)
    return np.where(o == 1.0, at_target, y_hat)


def sequence_mean_vjp(g: float | np.ndarray, y: np.ndarray, k: np.ndarray) -> tuple[np.ndarray]:
    """losses.sequence_mean — backward: ∂y = g · (ŷ − o) / N, ŷ = softmax(y), o = one_hot(k)."""
    N = max(np.asarray(k).size, 1)
    return (g * _softmax_minus_one_hot(y, k) / N,)


def sequence_sum(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """losses.sequence_sum — L_total = Σ_t L_t, the sum over all leading positions (seed 002 ⑦).

    The contract's cross_entropy_sum(logits, target). y: (…, C), k: (…) → L: ().
    """
    return cross_entropy(y, k).sum()


def sequence_sum_vjp(g: float | np.ndarray, y: np.ndarray, k: np.ndarray) -> tuple[np.ndarray]:
    """losses.sequence_sum — backward: ∂y = g · (ŷ − o)."""
    return (g * _softmax_minus_one_hot(y, k),)


def softmax_no_shift(y: np.ndarray) -> np.ndarray:
    """losses.bug.softmax_no_shift — ŷ_j = exp(y_j)/Σ_i exp(y_i) evaluated literally.

    exp overflows for y > 709 (float64; 88 in float32), giving inf/inf = NaN.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # the NaN is the bug being modelled
        e = np.exp(y)
        return e / e.sum(axis=-1, keepdims=True)


def sum_instead_of_mean(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """losses.bug.sum_instead_of_mean — cross_entropy(logits, target) returning Σ_t ℓ_t.

    Seed 002's total loss where the contract (seed 001) asks for the mean: N times too large.
    """
    return sequence_sum(y, k)


def log_of_softmax(y: np.ndarray) -> np.ndarray:
    """losses.bug.log_of_softmax — log ŷ_j computed as log(softmax(y)_j).

    softmax(y)_j underflows to 0 once y_max − y_j > 745 (float64; 104 in float32), and log 0 is
    −inf where log_softmax is finite.
    """
    with np.errstate(divide="ignore"):  # the −inf is the bug being modelled
        return np.log(softmax(y))


def softmax_hidden_activation(x_t: np.ndarray, a_prev: np.ndarray, W_ax: np.ndarray,
                              W_aa: np.ndarray, b_a: np.ndarray, W_h: np.ndarray,
                              b_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """losses.bug.softmax_hidden_activation — a_t = softmax(W_ax x_t + W_aa a_{t−1} + b_a).

    Seed 002 ④'s step, then h_t = tanh(W_h a_t + b_h). The recurrent state a_t is a softmax, so
    it always lies on the probability simplex (a_t > 0, Σ a_t = 1): it can be neither the seed's
    own a_0 = 0 nor any state with a negative component, which the Elman state
    tanh(W_ax x_t + W_aa a_{t−1} + b_a) of seed 001 6.1 takes.
    x_t: (D,), a_prev: (H,), W_ax: (H, D), W_aa: (H, H), b_a: (H,), W_h: (O, H), b_h: (O,)
    → (a_t, h_t): (H,), (O,).
    """
    a_t = softmax(W_ax @ x_t + W_aa @ a_prev + b_a)
    return a_t, tanh(W_h @ a_t + b_h)
