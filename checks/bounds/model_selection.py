"""The bounds spec/model_selection.md derives (reference only, float64).

Least-squares fits are compared with NumPy's and SciPy's solvers by the perturbation theory of the
least-squares problem (Higham, ch. 20): a backward-stable solver's normwise backward error ε, and
the forward error it implies through κ(A). The other bounds are tol.accumulated over the sums the
formulas contain. checks/test_model_selection.py uses these and writes none of its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from nnspec.checks.bounds import rules as tol
from nnspec.reference import model_selection as ref

U = tol.unit_roundoff(np.float64)


def backward_error(n: int, m: int) -> float:
    """ε = √min(n, m)·(γ_{nm+1} + 4u), tol.accumulated's factor for nm + 1 terms made normwise:
    the backward error allowed to a least-squares solver on an n × m matrix
    (spec/model_selection.md)."""
    return math.sqrt(min(n, m)) * float(tol.accumulated(1.0, n * m + 1, np.float64).atol)


def forward_error(A: np.ndarray, θ: np.ndarray, r: float, ε: float) -> float:
    """The bound on ‖θ̂ − θ‖ for a solution with normwise backward error ε, given an upper bound r
    on the least residual's norm: Higham Thm. 20.1, κε/(1 − κε)·(2‖θ‖ + (κ + 1)·r/‖A‖), for
    n ≥ K + 1, and 3κε/(1 − κε)·‖θ‖ for the minimum-norm solution when n < K + 1."""
    κ, norm_A = np.linalg.cond(A), np.linalg.norm(A, 2)
    if not κ * ε < 1:
        raise ValueError(f"κ·ε = {κ * ε:.3g} ≥ 1: the perturbation bound says nothing")
    if A.shape[0] < A.shape[1]:
        return 3 * κ * ε / (1 - κ * ε) * np.linalg.norm(θ)
    return κ * ε / (1 - κ * ε) * (2 * np.linalg.norm(θ) + (κ + 1) * r / norm_A)


def evaluation_error(A: np.ndarray, θ: np.ndarray, y: np.ndarray) -> float:
    """‖e‖: the rounding of evaluating ŷ − y = Aθ − y in float64, per element below
    (γ_{K+3} + 16u)·(|A||θ| + |y|) (a power, K + 1 products and sums, one subtraction)."""
    per_element = tol.gamma(A.shape[1] + 2, np.float64) + tol.ELEMENTWISE_ULPS * U
    return float(np.linalg.norm(per_element * (np.abs(A) @ np.abs(θ) + np.abs(y))))


def residual_error(x: np.ndarray, y: np.ndarray, K: int, b: float, w: np.ndarray) -> float:
    """Δ: how far the computed training residual of a fit may be from the exact one (tall A)
    or from 0 (n ≤ K + 1), including the rounding of evaluating ŷ − y."""
    A, θ = ref.design_matrix(x, K), np.concatenate([[b], w])
    n, m = A.shape
    ε = backward_error(n, m)
    stable = np.linalg.norm(A, 2) * np.linalg.norm(θ)
    if n > m:
        return float(ε * ((2 + 2 * np.linalg.cond(A)) * np.linalg.norm(y) + stable)
                     + evaluation_error(A, θ, y))
    return float(ε * (np.linalg.norm(y) + stable) + evaluation_error(A, θ, y))


def polynomial(x: np.ndarray, b: float, w: np.ndarray) -> tol.Bound:
    """model_selection.polynomial, ŷ = b + Σ_k x^k w_k against Horner's polyval: 3K + 2 roundings
    of Σ|terms| = the polynomial of |x|, |b|, |w|, and one more of the result."""
    m = ref.polynomial(np.abs(x), abs(b), np.abs(w))
    return tol.accumulated(m, 3 * w.size + 2, np.float64) + tol.elementwise(m, np.float64)


def least_residual(A: np.ndarray, y: np.ndarray, fits: Iterable[np.ndarray]) -> float:
    """r ≥ ‖y − Aθ*‖: the least residual is at most any fit's computed residual plus the rounding
    of forming it."""
    return min(float(np.linalg.norm(y - A @ t)) + evaluation_error(A, t, y) for t in fits)


def fit_against_solver(A: np.ndarray, θ: np.ndarray, r: float, *, column_scaled: bool) -> tol.Bound:
    """model_selection.polynomial, the fit θ against another backward-stable solver's: both within
    forward_error of the exact solution, 2ρ. A solver that scales the columns of A to unit norm
    (polyfit) is compared in those coordinates Dθ, with κ(A D⁻¹), plus u for its final division
    by D."""
    ε = backward_error(*A.shape)
    if column_scaled:
        D = np.linalg.norm(A, axis=0)
        scaled = D * θ
        allowed = 2 * forward_error(A / D, scaled, r, ε) + U * float(np.linalg.norm(scaled))
        rule = f"2ρ‖Dθ‖ + u‖Dθ‖ with κ(A D⁻¹) = {np.linalg.cond(A / D):.3g}"
    else:
        allowed = 2 * forward_error(A, θ, r, ε)
        rule = f"2ρ‖θ‖ with κ(A) = {np.linalg.cond(A):.3g}"
    return tol.Bound(np.full(θ.shape, allowed), f"{rule}, ε = {ε:.3g} (spec/model_selection.md)", U)


def fit_of_exact_samples(A: np.ndarray, θ_true: np.ndarray) -> tol.Bound:
    """model_selection.polynomial, the fit to y = fl(Aθ): y is the exact sample plus δy,
    ‖δy‖ ≤ ‖e‖, so θ* = θ + A⁺δy solves the rounded data with residual ‖r‖ ≤ ‖δy‖ and a
    backward-stable solver is within Thm. 20.1 of θ*: κ‖δy‖/‖A‖ + ρ‖θ‖ (first order in κ)."""
    δy = evaluation_error(A, θ_true, np.zeros(A.shape[0]))
    κ, norm_A = np.linalg.cond(A), np.linalg.norm(A, 2)
    ε = backward_error(*A.shape)
    allowed = κ * δy / norm_A + forward_error(A, θ_true, δy, ε)
    return tol.Bound(np.full(θ_true.size, allowed), f"κ‖δy‖/‖A‖ + ρ‖θ‖ with κ(A) = {κ:.3g}, "
                                                    f"ε = {ε:.3g} (first order in κ)", U)


def interpolant_training_error(Δ: float, n: int) -> float:
    """model_selection.polynomial, the largest computed training error ½‖r‖²/n of an interpolant
    whose computed residual is within Δ of 0: Δ²/(2n)·(1 + γ_{n+2})."""
    return Δ**2 / (2 * n) * (1 + tol.gamma(n + 2, np.float64))


def residual_norm_range(training_error: float, n: int) -> tuple[float, float]:
    """model_selection.polynomial, the range of ‖r‖ a computed training error E = ½‖r‖²/n implies:
    √(2nE/(1 ± γ_{n+2}))."""
    γ = tol.gamma(n + 2, np.float64)
    return math.sqrt(2 * n * training_error / (1 + γ)), math.sqrt(2 * n * training_error / (1 - γ))


def leave_one_out_mean_predictor(y: np.ndarray) -> tol.Bound:
    """model_selection.kfold_error, leave-one-out errors of the mean predictor against their closed
    forms: 7n + 6 roundings of terms of size ½(n/(n − 1))²·mean((|y| + 2 mean|y|)²)."""
    n = y.size
    μ = 0.5 * (n / (n - 1)) ** 2 * float(np.mean((np.abs(y) + 2 * np.mean(np.abs(y))) ** 2))
    return tol.accumulated(μ, 7 * n + 6, np.float64)


def fixed_predictor_folds(want: float, n: int, K: int) -> tol.Bound:
    """model_selection.kfold_error, a fixed predictor's errors over K equal folds against its loss
    on all n samples: 2n + K + 3 roundings of the loss."""
    return tol.accumulated(want, 2 * n + K + 3, np.float64)
