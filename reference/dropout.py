"""Reference for spec/dropout.md."""

from __future__ import annotations

import numpy as np


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} = {value!r} is not a probability in [0, 1]")


def _check_mask(h: np.ndarray, mask: np.ndarray) -> None:
    if np.shape(mask) != np.shape(h):
        raise ValueError(f"mask has shape {np.shape(mask)}, but h has shape {np.shape(h)}")
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError("mask must hold only 0 and 1 (the Bernoulli variables ξ)")


def _bernoulli(shape: tuple[int, ...], keep: float, rng: np.random.Generator) -> np.ndarray:
    """ξ ~ Bernoulli(keep), elementwise: P(ξ = 1) = P(U < keep) = keep for U ~ U[0, 1)."""
    return rng.random(shape) < keep


def inverted(h: np.ndarray, mask: np.ndarray, p: float) -> np.ndarray:
    """dropout.inverted — h'_i = ξ_i/(1 − p) · h_i for a given mask ξ (training mode).

    h: any shape; mask ξ: same shape, 0/1 (ξ_i ~ Bernoulli(1 − p)); p: drop probability in
    [0, 1]. p = 1 drops every unit, so h' = 0 (there is no 1/(1 − p) to form).
    """
    _check_probability("p", p)
    _check_mask(h, mask)
    if p == 1.0:
        return np.zeros_like(h)
    ξ = np.asarray(mask, dtype=h.dtype)
    return ξ * h / (1.0 - p)


def inverted_vjp(g: np.ndarray, h: np.ndarray, mask: np.ndarray,
                 p: float) -> tuple[np.ndarray, None, None]:
    """dropout.inverted — backward: ∂h_i = ξ_i/(1 − p) · g_i (0 for dropped units)."""
    return inverted(g, mask, p), None, None


def dropout(x: np.ndarray, p: float, training: bool, rng: np.random.Generator) -> np.ndarray:
    """dropout.inverted — the contract's dropout(x, p, training, rng).

    Training: ξ ~ Bernoulli(1 − p) drawn from ``rng``, then h' = ξ/(1 − p) · x; evaluation:
    h' = x. x: any shape → same shape.
    """
    _check_probability("p", p)
    if not training:
        return x.copy()
    return inverted(x, _bernoulli(x.shape, 1.0 - p, rng), p)


def dropout_vjp(g: np.ndarray, x: np.ndarray, p: float, training: bool,
                rng: np.random.Generator) -> tuple[np.ndarray]:
    """dropout.inverted — backward of dropout(x, p, training, rng) with the same rng state.

    It draws the mask ξ exactly as :func:`dropout` does, so equal generator states give the
    forward's mask: ∂x = ξ/(1 − p) · g in training, g in evaluation.
    """
    _check_probability("p", p)
    if not training:
        return (g.copy(),)
    dx, _, _ = inverted_vjp(g, x, _bernoulli(x.shape, 1.0 - p, rng), p)
    return (dx,)


def inverted_keep_prob(h: np.ndarray, mask: np.ndarray, q: float) -> np.ndarray:
    """dropout.inverted_keep_prob — h'_i = ξ_i/q · h_i, ξ_i ~ Bernoulli(q) (TF1's keep_prob).

    h: any shape; mask ξ: same shape, 0/1; q = 1 − p: keep probability in [0, 1]; q = 0 keeps
    nothing, so h' = 0.
    """
    _check_probability("q", q)
    _check_mask(h, mask)
    if q == 0.0:
        return np.zeros_like(h)
    ξ = np.asarray(mask, dtype=h.dtype)
    return ξ * h / q


def no_rescale(x: np.ndarray, p: float, training: bool, rng: np.random.Generator) -> np.ndarray:
    """dropout.bug.no_rescale — h' = ξ · h: kept units are not divided by 1 − p, so E[h'] = (1 − p)·h."""
    _check_probability("p", p)
    if not training:
        return x.copy()
    return _bernoulli(x.shape, 1.0 - p, rng) * x


def active_in_eval(x: np.ndarray, p: float, training: bool,
                   rng: np.random.Generator) -> np.ndarray:
    """dropout.bug.active_in_eval — units are dropped in evaluation mode too (training ignored)."""
    _check_probability("p", p)
    return inverted(x, _bernoulli(x.shape, 1.0 - p, rng), p)


def keep_prob_as_drop_prob(x: np.ndarray, p: float, training: bool,
                           rng: np.random.Generator) -> np.ndarray:
    """dropout.bug.keep_prob_as_drop_prob — p taken as the keep probability.

    h' = ξ/p · h with ξ ~ Bernoulli(p): TF1's keep_prob passed where PyTorch expects p.
    """
    _check_probability("p", p)
    if not training:
        return x.copy()
    return inverted_keep_prob(x, _bernoulli(x.shape, p, rng), p)


def scale_by_p(x: np.ndarray, p: float, training: bool, rng: np.random.Generator) -> np.ndarray:
    """dropout.bug.scale_by_p — the right mask, the wrong scale: h' = ξ/p · h, ξ ~ Bernoulli(1 − p)."""
    _check_probability("p", p)
    if not training:
        return x.copy()
    ξ = _bernoulli(x.shape, 1.0 - p, rng)
    # At p = 0 the bug divides by zero, as the code it models does.
    with np.errstate(divide="ignore", invalid="ignore"):
        return ξ * x / p
