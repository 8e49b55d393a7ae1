"""The tolerance model (spec/tolerances.md): how far an implementation may be from the reference.

The reference is evaluated in float64 on exactly the values the implementation saw (its inputs
rounded to its DTYPE), so input rounding never counts against it; only the rounding inside the
implementation's own arithmetic does. Every bound is a per-element array built from the standard
a-priori forward-error results (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3):

- an elementwise library function (exp, tanh, log1p, …) is correct to a few units in the last
  place: ``|err| ≤ ELEMENTWISE_ULPS · u · (|want| + scale)``, where ``scale`` names the magnitude of
  terms that cancel inside the formula (``1 − f²`` cancels terms of size 1); σ and tanh carry
  ``scale = 1`` always (:data:`ABSOLUTE_SCALE`), because the formulas libraries legitimately use
  for them cancel terms of size 1 and err *absolutely* near 0;
- a sum or dot product of ``n`` terms in any order, blocked or not, with or without FMA:
  ``|err| ≤ γ_n · Σ|terms|`` with ``γ_n = n·u / (1 − n·u)``;
- errors that flow through a later differentiable step are multiplied by its derivative bound;
- underflow: an operation whose result falls below the smallest normal number ``tiny`` may lose
  up to ``tiny`` absolutely (flush-to-zero hardware flushes it entirely), so every rule adds
  ``tiny`` per rounding it counts. Negligible unless results are themselves near ``tiny``.

``u`` is the unit roundoff of the implementation's DTYPE (2⁻²⁴ for float32, 2⁻⁵³ for float64).
The constants are stated once here; no check may pass its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

#: Error of one elementwise library function, in units of u. Vectorised math libraries (SLEEF,
#: MKL VML, CUDA's libdevice) document ≤ 4 ulp = 8 u for exp/log/tanh in float32; the final
#: rounding of the stored result and one more operation add 2 u. Rounded up to a power of two.
ELEMENTWISE_ULPS = 16.0

#: Allowed slack on top of the rigorous γ_n bound: none is needed for correctness, but libraries
#: may evaluate a formula in a different yet equivalent order (x/(1−p) versus x·(1/(1−p))), which
#: adds at most two roundings per element.
REORDER_ULPS = 4.0


#: The elementwise functions whose legitimate formulas err by ``u·(|f| + scale)`` rather than
#: ``u·|f|``, and their scale (spec/tolerances.md, "Functions that are accurate only absolutely").
#: σ's formulas ½(1 + tanh(x/2)) and 1 − σ(−x) add 1 to, or subtract from 1, a term of size 1
#: and lose everything below u·1 where σ is small; tanh's (1 − e^(−2x))/(1 + e^(−2x)) and
#: 2σ(2x) − 1 cancel terms of size 1 where tanh is near 0. Every other function of the spec (exp,
#: log1p, softplus, softmax…) keeps the relative rule: its standard formula is relatively accurate,
#: and the spec names the formula that is not a bug (activations.bug.softplus_naive).
ABSOLUTE_SCALE = {"sigmoid": 1.0, "tanh": 1.0}


#: The unit roundoff a float32 implementation declares behind DTYPE (its PRECISION: TF32 or
#: bfloat16 matrix-product operands) while its checks run; None: float32's own.
_DECLARED_UNIT: ContextVar[float | None] = ContextVar("declared_float32_unit", default=None)


@contextmanager
def declared_precision(unit: float | None) -> Iterator[None]:
    """Within: every bound computed for float32 is computed at unit roundoff ``unit`` (None:
    float32's own, also inside an outer declaration). The bounds
    are not first order in u — σ' and tanh' are taken at the point of the computed argument's
    reachable interval nearest 0 (engine._reach), which a wider interval moves — so a bound
    scaled from float32's u after the fact can miss a gate that a lower precision flips."""
    token = _DECLARED_UNIT.set(unit)
    try:
        yield
    finally:
        _DECLARED_UNIT.reset(token)


def own_unit(dtype: np.dtype | type) -> float:
    """u = eps/2 of a floating dtype, whatever precision is declared."""
    return float(np.finfo(dtype).eps) / 2.0


def unit_roundoff(dtype: np.dtype | type) -> float:
    """The unit roundoff bounds are computed at: :func:`own_unit`, but for float32 the declared
    precision's while :func:`declared_precision` is in force."""
    declared = _DECLARED_UNIT.get()
    if declared is not None and np.dtype(dtype) == np.float32:
        return declared
    return own_unit(dtype)


#: Bounds of long or deep runs on large values may overflow float64: they become inf (no bound),
#: never a warning or NaN. A decorator for the functions that compute them (one shared np.errstate
#: cannot be entered twice as a context manager; as a decorator it nests).
overflow_is_infinite = np.errstate(over="ignore", invalid="ignore")


def underflow(dtype: np.dtype | type) -> float:
    """The absolute error one rounding may add below the normal range: the smallest normal."""
    return float(np.finfo(dtype).tiny)


def near_kink(a: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Where a ReLU's computed pre-activation may lie on the other side of 0, so that an
    implementation may take the other derivative: |a| ≤ its bound ``error``, unless that bound is
    0 — an a computed exactly (zero input, state and bias, as on padding) is the same 0 in every
    implementation, and ReLU'(0) = 0 is the spec's (spec/activations.md). The one rule of the
    worst-case and the probabilistic gradient bounds (spec/tolerances.md, "Kinks")."""
    return (np.abs(a) <= error) & (error > 0)


def gamma(n: int, dtype: np.dtype | type) -> float:
    """γ_n = n·u/(1 − n·u): the relative error bound of an n-term sum in any order."""
    nu = n * unit_roundoff(dtype)
    if nu >= 0.5:
        raise ValueError(f"gamma({n}, {np.dtype(dtype)}): n·u = {nu:.3g} ≥ 1/2, no useful bound")
    return nu / (1.0 - nu)


@dataclass(frozen=True)
class Bound:
    """A per-element bound on ``|got − want|`` and the rule that produced it.

    ``unit`` is the unit roundoff the bound was built for. Every rule is proportional to u (to first
    order), so :meth:`at_unit` restates the same bound for another precision: the oracle uses it
    to tell "float32 rounding behind a float64 claim" from a wrong formula.
    """

    atol: np.ndarray
    rule: str
    unit: float = 0.0

    def __add__(self, other: Bound) -> Bound:
        return Bound(self.atol + other.atol, f"{self.rule} + {other.rule}",
                     max(self.unit, other.unit))

    def scaled(self, factor: ArrayLike, why: str) -> Bound:
        """Propagate the bound through a step whose derivative is bounded by ``factor``."""
        return Bound(np.abs(np.asarray(factor, dtype=np.float64)) * self.atol,
                     f"({self.rule})·{why}", self.unit)

    def at_unit(self, unit: float) -> np.ndarray:
        """The same bound for a precision with unit roundoff ``unit``."""
        if self.unit <= 0:
            raise ValueError(f"bound {self.rule!r} records no unit roundoff to rescale from")
        return self.atol * (unit / self.unit)


def exact(want: ArrayLike) -> Bound:
    """tol.exact: bit-for-bit (for operations that only copy, select or compare values)."""
    return Bound(np.zeros(np.shape(want)), "tol.exact: bit-for-bit", 0.0)


def elementwise(want: ArrayLike, dtype: np.dtype | type, *, scale: ArrayLike = 0.0,
                ulps: float = ELEMENTWISE_ULPS) -> Bound:
    """tol.elementwise: ``ulps · (u · (|want| + scale) + tiny)`` for one library function."""
    u = unit_roundoff(dtype)
    w = np.abs(np.asarray(want, dtype=np.float64))
    atol = ulps * (u * (w + np.abs(np.asarray(scale, dtype=np.float64))) + underflow(dtype))
    return Bound(np.broadcast_to(atol, w.shape).copy(),
                 f"tol.elementwise: {ulps:g}·u·(|want|+scale), u={u:.3g} ({np.dtype(dtype)})", u)


def absolute_near_zero(want: ArrayLike, dtype: np.dtype | type, *, function: str) -> Bound:
    """tol.elementwise for a function of :data:`ABSOLUTE_SCALE` (σ, tanh): ``scale`` = its absolute
    scale, so the bound is ``ELEMENTWISE_ULPS · (u · (|want| + 1) + tiny)``."""
    scale = ABSOLUTE_SCALE[function]
    bound = elementwise(want, dtype, scale=scale)
    return Bound(bound.atol, f"tol.elementwise: {ELEMENTWISE_ULPS:g}·u·(|want|+{scale:g}), "
                             f"{function}'s formulas err absolutely near 0, "
                             f"u={bound.unit:.3g} ({np.dtype(dtype)})", bound.unit)


def accumulated(magnitude: ArrayLike, n: int, dtype: np.dtype | type) -> Bound:
    """tol.accumulated: ``(γ_n + REORDER_ULPS·u) · magnitude`` for an n-term sum or dot product.

    ``magnitude`` is the formula evaluated with every term replaced by its absolute value
    (``|x|·|w|ᵀ + |b|`` for a linear map), i.e. Σ|terms|.
    """
    u = unit_roundoff(dtype)
    m = np.abs(np.asarray(magnitude, dtype=np.float64))
    return Bound((gamma(n, dtype) + REORDER_ULPS * u) * m + (n + REORDER_ULPS) * underflow(dtype),
                 f"tol.accumulated: (γ_{n}+{REORDER_ULPS:g}u)·Σ|terms|, u={u:.3g} ({np.dtype(dtype)})",
                 u)


RULES = {
    "tol.exact": exact,
    "tol.elementwise": elementwise,
    "tol.accumulated": accumulated,
    # Random operations are not compared value by value: see nnspec.checks.harness.stats.
    "tol.statistical": None,
    # Finite-difference comparisons: see nnspec.checks.gradients.
    "tol.fd": None,
}
