"""The bounds spec/activations.md derives, one per contract function and per identity it states.

Each function turns the tolerance rules (checks/bounds/rules.py) into the bound of one formula,
evaluated on the values the implementation saw (``impl.cast`` inputs); the checks
(checks/test_activations.py) and the exported test vectors use these and write none of their own.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnspec.checks.bounds import rules as tol
from nnspec.reference import activations as ref


def product(value: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """One rounded product (a·x, α·x): a 1-term tol.accumulated, (γ₁ + 4u)·|a·x|
    (spec/activations.md, the additions to the tolerance model)."""
    return tol.accumulated(np.abs(value), 1, dtype)


def sigmoid(x: np.ndarray, alpha: float, *, dtype: np.dtype) -> tol.Bound:
    """activations.sigmoid, φ(x) = σ(αx): tol.elementwise(φ) with σ's absolute scale 1, plus for
    α ≠ 1 the rounding of α·x carried by σ'(αx) = φ·σ(−αx)."""
    want = ref.sigmoid(x, alpha)
    bound = _sigmoid_value(want, dtype)
    if alpha != 1.0:
        slope = want * ref.sigmoid(-x, alpha)
        bound = bound + product(alpha * x, dtype=dtype).scaled(slope, "σ'(αx)")
    return bound


def _sigmoid_value(value: np.ndarray, dtype: np.dtype) -> tol.Bound:
    """σ's own error: absolute near 0 (tol.ABSOLUTE_SCALE, spec/activations.md)."""
    return tol.absolute_near_zero(value, dtype, function="sigmoid")


def _tanh_value(value: np.ndarray, dtype: np.dtype) -> tol.Bound:
    """tanh's own error: absolute near 0 (tol.ABSOLUTE_SCALE, spec/activations.md)."""
    return tol.absolute_near_zero(value, dtype, function="tanh")


def vjp_sigmoid(g: np.ndarray, x: np.ndarray, alpha: float, *, dtype: np.dtype) -> tol.Bound:
    """activations.sigmoid, dx = g·α·φ(1 − φ): tol.elementwise(dx), plus φ's own (absolute near 0)
    error moved by |gα|·|1 − 2φ|, plus for α ≠ 1 the rounding of α·x carried by |gα|·|σ''(αx)|."""
    (want,) = ref.sigmoid_vjp(g, x, alpha)
    s = ref.sigmoid(x, alpha)
    ga = np.abs(g * alpha)
    # φ' = α φ(1 − φ): an error δ in φ moves it by |1 − 2φ|·δ (spec/activations.md).
    bound = (tol.elementwise(want, dtype)
             + _sigmoid_value(s, dtype).scaled(ga * np.abs(1.0 - 2.0 * s), "|gα|·|1 − 2φ|"))
    if alpha != 1.0:
        curvature = ga * s * ref.sigmoid(-x, alpha) * np.abs(1.0 - 2.0 * s)
        bound = bound + product(alpha * x, dtype=dtype).scaled(curvature, "|gα|·|σ''(αx)|")
    return bound


def tanh(x: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """activations.tanh: tol.elementwise(tanh x) with tanh's absolute scale 1."""
    return _tanh_value(ref.tanh(x), dtype)


def vjp_tanh(g: np.ndarray, x: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """activations.tanh, dx = g·(1 − f²): the subtraction cancels terms of size |g| (scale), and
    f's own (absolute near 0) error moves 1 − f² by 2|f|·δ."""
    (want,) = ref.tanh_vjp(g, x)
    f = ref.tanh(x)
    return (tol.elementwise(want, dtype, scale=np.abs(g))
            + _tanh_value(f, dtype).scaled(2.0 * np.abs(g * f), "|g|·|∂(1 − f²)/∂f| = 2|g f|"))


def softplus(x: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """activations.softplus: tol.elementwise(log(1 + eˣ))."""
    return tol.elementwise(ref.softplus(x), dtype)


def softplus_torch_threshold(x: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """activations.softplus.torch_threshold: tol.elementwise of the thresholded softplus."""
    return tol.elementwise(ref.softplus_torch_threshold(x), dtype)


def vjp_softplus(g: np.ndarray, x: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """activations.softplus, dx = g·σ(x): tol.elementwise(dx) with σ's absolute scale carried by
    |g| (scale = |g|·1)."""
    return tol.elementwise(ref.softplus_vjp(g, x)[0], dtype,
                           scale=np.abs(g) * tol.ABSOLUTE_SCALE["sigmoid"])


def vjp_softplus_torch_threshold(g: np.ndarray, x: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """activations.softplus.torch_threshold, the thresholded variant's dx: tol.elementwise(dx),
    σ's absolute scale carried by |g| as for :func:`vjp_softplus`."""
    return tol.elementwise(ref.softplus_torch_threshold_vjp(g, x)[0], dtype,
                           scale=np.abs(g) * tol.ABSOLUTE_SCALE["sigmoid"])


def prelu(x: np.ndarray, a: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """activations.prelu: one rounded product a·x, (γ₁ + 4u)·|φ(x)|."""
    return product(ref.prelu(x, a), dtype=dtype)


def vjp_prelu(g: np.ndarray, x: np.ndarray, a: np.ndarray, *,
              dtype: np.dtype) -> tuple[tol.Bound, tol.Bound]:
    """activations.prelu, (dx, da): dx is one product; ∂a sums n = x.size / (number of slopes)
    products g·x, each of which may underflow, tol.accumulated with Σ|terms| = ∂a of |g| at
    min(x, 0) (all terms of one sign)."""
    want_dx, _ = ref.prelu_vjp(g, x, a)
    n = x.size // np.size(a) if np.ndim(a) == 1 and np.size(a) > 1 else x.size
    _, magnitude = ref.prelu_vjp(np.abs(g), np.minimum(x, 0.0), a)
    return product(want_dx, dtype=dtype), tol.accumulated(magnitude, n, dtype)


def vjp_maxout_split(g: np.ndarray, k: int, *, dtype: np.dtype) -> tol.Bound:
    """activations.maxout: Σ_j dz_ij against g_i where pieces tie, a k-term sum of shares g_i/n
    that may each underflow (g_i near λ): tol.accumulated counts tiny per term."""
    return tol.accumulated(np.abs(g), k, dtype)


# ---- identities the spec states (both sides from the implementation) --------------------------

def sigmoid_reflection(x: np.ndarray, alpha: float, *, dtype: np.dtype) -> tol.Bound:
    """activations.sigmoid, φ(x) + φ(−x) = 1: each term within its own bound; the float64 sum of
    the two adds one rounding of size 1; for α ≠ 1 the rounding of α·x enters both, 2σ'(αx)."""
    bound = (_sigmoid_value(ref.sigmoid(x, alpha), dtype)
             + _sigmoid_value(ref.sigmoid(-x, alpha), dtype)
             + tol.accumulated(np.ones(x.shape), 2, np.float64))
    if alpha != 1.0:
        slope = ref.sigmoid(x, alpha) * ref.sigmoid(-x, alpha)
        bound = bound + product(alpha * x, dtype=dtype).scaled(2.0 * slope, "2σ'(αx)")
    return bound


def tanh_oddness(x: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """activations.tanh, tanh(x) + tanh(−x) = 0: two evaluations of tanh's bound."""
    return _tanh_value(ref.tanh(x), dtype).scaled(2.0, "two evaluations")


def tanh_from_sigmoid(x: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """activations.tanh, 2σ(2x) − tanh(x) = 1: 2x is exact in DTYPE; σ's error doubled, tanh's,
    and the roundings of size 1 the float64 arithmetic of the check adds."""
    return (_sigmoid_value(ref.sigmoid(2.0 * x), dtype).scaled(2.0, "d(2σ − 1)/dσ")
            + _tanh_value(ref.tanh(x), dtype)
            + tol.accumulated(np.full(x.shape, 3.0), 2, np.float64))


def tanh_derivative_identity(x: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """activations.tanh, vjp_tanh(1, x) = 1 − tanh(x)²: both sides within their bounds of the
    reference; 1 − f² in float64 cancels terms of size 1."""
    ones = np.ones(x.shape)
    (want,) = ref.tanh_vjp(ones, x)
    return (vjp_tanh(ones, x, dtype=dtype)
            + _tanh_value(ref.tanh(x), dtype).scaled(2.0 * np.abs(ref.tanh(x)), "2|f|")
            + tol.elementwise(want, np.float64, scale=1.0))


def _softplus_reflection(variant: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                         dtype: np.dtype) -> tol.Bound:
    # each evaluation within tol.elementwise, and their float64 difference one 2-term sum
    return (tol.elementwise(variant(x), dtype) + tol.elementwise(variant(-x), dtype)
            + tol.accumulated(variant(x) + variant(-x), 2, np.float64))


def softplus_reflection(x: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """activations.softplus, softplus(x) − softplus(−x) = x: both evaluations' bounds and the
    float64 subtraction."""
    return _softplus_reflection(ref.softplus, x, dtype)


def softplus_torch_threshold_reflection(x: np.ndarray, *, dtype: np.dtype) -> tol.Bound:
    """activations.softplus.torch_threshold, the same difference for the thresholded variant
    (which the identity misses by log1p(e^−|x|) < 2.1e-9 where |x| > 20)."""
    return _softplus_reflection(ref.softplus_torch_threshold, x, dtype)
