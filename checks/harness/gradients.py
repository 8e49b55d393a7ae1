"""Finite-difference gradient checks along random directions (spec/tolerances.md, tol.fd).

A gradient is checked through the identity ⟨u, J·d⟩ = ⟨Jᵀu, d⟩: for a random cotangent ``u`` on
the outputs and a random direction ``d`` over all differentiable inputs, the analytic side is
``Σ_i ⟨vjp(u)_i, d_i⟩`` and the numeric side is φ'(0) for the scalar function
φ(t) = ⟨u, f(x + t·d)⟩. The cost is a fixed number of evaluations of ``f`` whatever the number of
parameters (like ``gradcheck(fast_mode=True)``), yet the comparison is tight, so an error in a
single gradient entry is caught (power measured in checks/meta/test_gradients.py).

Two ways to get φ'(0):

- ``"complex"``: complex-step differentiation, φ'(0) ≈ Im φ(i·h)/h with h = 1e-20. There is no
  subtractive cancellation, so the result is exact to rounding (≈ u·Σ|terms|). It needs ``f``
  to be analytic and written with operations that accept complex arrays; the reference is
  written so that its smooth functions are.
- ``"extended"``: the complex step in NumPy's long double (x86: u = 2⁻⁶⁴, 2¹¹ times float64's), for
  a chain of many steps whose forward formulas cancel (h' = (1 − z)n + z h where h ≈ n): its own
  rounding is then a 2⁻¹¹ share of what the float64 complex step would have. ``f`` must compute in
  the dtype it is given.
- ``"richardson"``: ``scipy.differentiate.derivative``, central differences of order 8 with
  Richardson extrapolation, which returns an error estimate. Works for any ``f``; accuracy is
  ~1e-10 relative, limited by cancellation.

Error model. The analytic side is a float64 dot product of n terms, so its own rounding is below
γ_n·S with S = Σ_i |vjp(u)_i|·|d_i|. The bound used is
``FD_RTOL[method]·S + FD_ESTIMATE_FACTOR·(estimated error of φ'(0)) + FD_ATOL·(1 + Σ|u|)``.
S does not see rounding *inside* a chain of steps (a recurrence): terms that cancel within a step
(the 1 − tanh² of a saturated unit errs absolutely, by ~u) are amplified by the later steps, and
both sides carry that error. A check of such a chain passes ``vjp_error``, the running-error
engine's elementwise bound on the float64 VJP's own error for the cotangent u; the analytic side
errs at most ⟨vjp_error(u), |d|⟩ and the numeric side, which pushes d forward through the same
factors, at most as much again (the transposed sum of the same products, spec/tolerances.md,
tol.fd), so ``2·⟨vjp_error(u), |d|⟩`` is added to the bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.differentiate import derivative

from nnspec.checks.harness.failure import fail
from nnspec.checks.harness.implementation import describe_args

#: Relative (to S = Σ|g||d|) part of the bound per method. For "complex", γ_n(float64) for
#: n ≤ 10⁵ terms is ≤ 1.2e-11 and chained reference arithmetic adds ~1e-15 per step; 1e-12
#: holds for the sizes checked. For "richardson", the error estimate dominates.
FD_RTOL = {"complex": 1e-12, "extended": 1e-12, "richardson": 1e-10}

#: Whether NumPy's long double carries more precision than float64 (x86's 80-bit format: u = 2⁻⁶⁴;
#: IEEE quad on some platforms), which method "extended" needs.
EXTENDED_PRECISION = bool(np.finfo(np.longdouble).eps < np.finfo(np.float64).eps)

#: scipy's error estimate is the difference of the last two extrapolations: a factor of 10
#: covers its usual under-estimate by one order.
FD_ESTIMATE_FACTOR = 10.0

COMPLEX_STEP = 1e-20

#: vjp_error(cotangent) → per positional argument, an elementwise bound on the VJP's rounding.
VJPError = Callable[[Any], Sequence[Any]]

#: Absolute floor of the bound. Complex step truncates at h²·|φ⁽³⁾|/6 ≤ 1e-40·|φ⁽³⁾|, and where
#: a function saturates (tanh at |a| ≳ 350) its derivative is subnormal, so Im φ(ih) underflows
#: to 0 while the analytic side keeps ~1e-312: both far below any gradient worth comparing.
#: 1e-30·(1 + Σ|u|) covers |φ⁽³⁾| up to 1e10 per unit of cotangent and every underflow case.
FD_ATOL = 1e-30


@dataclass(frozen=True)
class DirectionalResult:
    """One directional comparison: analytic vs numeric derivative and the bound applied."""

    analytic: float
    numeric: float
    estimate: float
    scale: float
    bound: float
    method: str
    chain: float = 0.0

    @property
    def ok(self) -> bool:
        return abs(self.analytic - self.numeric) <= self.bound


def directional_derivative(phi: Callable[[Any], float], *, method: str,
                           initial_step: float = 0.5) -> tuple[float, float]:
    """φ'(0) and an estimate of its error, by complex step or Richardson extrapolation."""
    if method == "complex":
        value = float(np.imag(phi(1j * COMPLEX_STEP))) / COMPLEX_STEP
        return value, 0.0
    if method == "extended":
        if not EXTENDED_PRECISION:
            raise ValueError("method 'extended' needs a long double with more precision than "
                             "float64, which this platform's NumPy lacks")
        return float(np.imag(phi(np.clongdouble(1j) * COMPLEX_STEP)) / COMPLEX_STEP), 0.0
    if method == "richardson":
        def vectorised(t: np.ndarray) -> np.ndarray:
            return np.array([float(np.real(phi(float(ti)))) for ti in t.ravel()]).reshape(t.shape)

        res = derivative(vectorised, 0.0, initial_step=initial_step,
                         tolerances={"rtol": 1e-13, "atol": 0.0})
        # scipy's estimate (last two extrapolations) misses the rounding noise of the difference
        # quotients, ≈ u·|φ|/h at the smallest step h used; it dominates when |φ| ≫ |φ'|.
        smallest_step = initial_step / 2.0 ** max(int(res.nit), 1)
        noise = float(np.finfo(np.float64).eps) * abs(float(np.real(phi(0.0)))) / smallest_step
        return float(res.df), float(res.error) + noise
    raise ValueError(f"method must be 'complex', 'extended' or 'richardson', got {method!r}")


def _as_tuple(x: Any) -> tuple[Any, ...]:
    return tuple(x) if isinstance(x, tuple | list) else (x,)


def directional_checks(forward: Callable[..., Any], vjp: Callable[..., Any],
                       args: Sequence[Any], *, wrt: Sequence[int], rng: np.random.Generator,
                       method: str = "complex", n_directions: int = 2,
                       initial_step: float = 0.5,
                       vjp_error: VJPError | None = None) -> list[DirectionalResult]:
    """Compare ``vjp`` with directional derivatives of ``forward`` along random directions.

    ``vjp(cotangent, *args)`` returns one gradient per positional argument of ``forward`` (None
    where not differentiable); ``cotangent`` is an array, or a tuple for a tuple-valued forward.
    ``wrt`` lists the positions of the arguments that are perturbed. ``vjp_error(cotangent)``,
    for a chain of steps, bounds the float64 rounding of ``vjp``'s result per argument (module
    docstring).
    """
    outs = _as_tuple(forward(*args))
    results = []
    for _ in range(n_directions):
        us = tuple(rng.standard_normal(np.shape(o)) for o in outs)
        grads = _as_tuple(vjp(us if len(us) > 1 else us[0], *args))
        ds = {i: rng.standard_normal(np.shape(args[i])) for i in wrt}
        analytic = float(sum(np.sum(np.asarray(grads[i]) * ds[i]) for i in wrt))
        scale = float(sum(np.sum(np.abs(grads[i]) * np.abs(ds[i])) for i in wrt))

        def phi(t: Any, us: tuple[np.ndarray, ...] = us,
                ds: dict[int, np.ndarray] = ds) -> Any:
            moved = [a + t * ds[i] if i in ds else a for i, a in enumerate(args)]
            return sum(np.sum(u * o) for u, o in zip(us, _as_tuple(forward(*moved)), strict=True))

        numeric, estimate = directional_derivative(phi, method=method, initial_step=initial_step)
        cotangent_size = float(sum(np.sum(np.abs(u)) for u in us))
        chain = 0.0
        if vjp_error is not None:
            errors = vjp_error(us if len(us) > 1 else us[0])
            chain = 2.0 * float(sum(np.sum(np.asarray(errors[i]) * np.abs(ds[i])) for i in wrt))
        bound = (FD_RTOL[method] * scale + FD_ESTIMATE_FACTOR * estimate
                 + FD_ATOL * (1.0 + cotangent_size) + chain)
        results.append(DirectionalResult(analytic, numeric, estimate, scale, bound, method, chain))
    return results


def check_gradient(forward: Callable[..., Any], vjp: Callable[..., Any], args: Sequence[Any], *,
                   rng: np.random.Generator, spec_id: str, name: str = "reference",
                   call: str | None = None, wrt: Sequence[int] | None = None,
                   method: str = "complex", n_directions: int = 2,
                   initial_step: float = 0.5, vjp_error: VJPError | None = None) -> None:
    """Fail, explaining the evidence, when ``vjp`` (of the implementation ``name``, called as
    ``call``: by default the vjp's name and the arguments) disagrees with finite differences along
    random directions in the arguments ``wrt`` (by default every array argument)."""
    __tracebackhide__ = True
    if call is None:
        call = f"{getattr(vjp, '__name__', 'vjp')}{describe_args(args)}"
    if wrt is None:
        wrt = [i for i, a in enumerate(args) if isinstance(a, np.ndarray)]
    for r in directional_checks(forward, vjp, args, wrt=wrt, rng=rng, method=method,
                                n_directions=n_directions, initial_step=initial_step,
                                vjp_error=vjp_error):
        if not r.ok:
            fail(spec_id, name,
                 f"gradient disagrees with finite differences along a random direction: "
                 f"⟨vjp(u), d⟩ = {r.analytic!r}, but d/dt⟨u, f(x+t·d)⟩ = {r.numeric!r} "
                 f"({r.method}); |difference| = {abs(r.analytic - r.numeric):.3g} exceeds the "
                 f"bound {r.bound:.3g} (tol.fd: {FD_RTOL[r.method]:g}·Σ|g||d| with "
                 f"Σ|g||d| = {r.scale:.3g}, + {FD_ESTIMATE_FACTOR:g}× error estimate "
                 f"{r.estimate:.3g}, + {FD_ATOL:g}·(1 + Σ|u|)"
                 f"{f', + 2⟨vjp rounding, |d|⟩ = {r.chain:.3g}' if r.chain else ''})", call=call)
