"""The bounds spec/regularisation.md derives: SGD and Adam steps, and the ridge minimiser.

The tolerance rules (checks/bounds/rules.py) are composed here into the bound of each contract
function (sgd_step, sgd_step_seed000, adam_step, adamw_step) and of the reference-only ridge
comparisons; checks/test_regularisation.py and the exported test vectors use these.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nnspec.checks.bounds import rules as tol
from nnspec.reference import regularisation as ref

#: The longest chain of roundings one term of w − lr·(grad + wd·w) goes through in DTYPE: the
#: scalars lr and wd rounded to DTYPE, wd·w, grad + wd·w, lr·(…), the subtraction (spec).
SGD_ROUNDINGS = 6


def sgd_step(w: np.ndarray, grad: np.ndarray, lr: float, weight_decay: float, *,
             dtype: np.dtype) -> tol.Bound:
    """regularisation.sgd_step.torch, w' = w − lr·(grad + wd·w): tol.accumulated over
    SGD_ROUNDINGS roundings of Σ|terms| = |w| + lr·|grad| + lr·wd·|w|."""
    return tol.accumulated(ref.sgd_step_magnitude(w, grad, lr, weight_decay), SGD_ROUNDINGS, dtype)


def sgd_step_seed000(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray, eta: float,
                     lam: float, *, dtype: np.dtype) -> tuple[tol.Bound, tol.Bound]:
    """regularisation.sgd_step.seed000, (w', b') when the implementation also forms the batch
    gradient itself.

    r = X w + b − y is a (d + 2)-term sum; ∂w = Xᵀ r/|B| and ∂b = Σ r/|B| are (|B| + 1)-term sums
    that also carry r's error through |X|ᵀ/|B|; the step then adds η times the gradient's error to
    the sgd_step bound (weight decay λ/|B| on w, none on b).
    """
    B = X.shape[0]
    r = X @ w + b - y
    err_r = tol.accumulated(np.abs(X) @ np.abs(w) + np.abs(b) + np.abs(y), X.shape[1] + 2,
                            dtype).atol
    err_dw = np.abs(X).T @ err_r / B + tol.accumulated(np.abs(X).T @ np.abs(r) / B, B + 1,
                                                        dtype).atol
    err_db = err_r.sum() / B + tol.accumulated(np.abs(r).sum() / B, B + 1, dtype).atol
    dw, db = ref.l2_penalised_loss_grad(X, y, w, b, 0.0)
    return (sgd_step(w, dw, eta, lam / B, dtype=dtype) + tol.Bound(eta * err_dw, "η·(error of ∂w)"),
            sgd_step(b, np.asarray(db), eta, 0.0, dtype=dtype)
            + tol.Bound(eta * np.asarray(err_db), "η·(error of ∂b)"))


def _adam_chain(args: tuple, dtype: np.dtype, *,
                decoupled: bool) -> tuple[tol.Bound, tol.Bound, tol.Bound]:
    """Bounds on (w', m', v') of an Adam (decoupled=False) or AdamW step: the chain of
    spec/regularisation.md, `regularisation.adam_l2`, composed with Bound.scaled and +."""
    w, grad, m, v, t, lr, beta1, beta2, eps, wd = args
    step = ref.adamw_step if decoupled else ref.adam_step
    _, m_new, v_new = step(*args)
    D, U = ref.adam_denominator_and_update(m_new, v_new, t, lr, beta1, beta2, eps)
    if decoupled:
        G, b_g = np.abs(grad), tol.exact(w)
        w0, b_w0 = (1 - lr * wd) * w, tol.accumulated((1 + lr * wd) * np.abs(w), 2, dtype)
    else:
        G = np.abs(grad) + wd * np.abs(w)
        b_g = tol.accumulated(G, 3, dtype)
        w0, b_w0 = w, tol.exact(w)
    # β and 1 − β may be formed from one another (torch's lerp uses 1 − fl(1 − β₁)), so each
    # coefficient carries an absolute error u, not a relative one: one rounding of |m| + |g|.
    b_m = (b_g.scaled(1 - beta1, "(1 − β₁)")
           + tol.accumulated(beta1 * np.abs(m) + (1 - beta1) * G, 4, dtype)
           + tol.elementwise(np.abs(m) + G, dtype, ulps=1.0))
    b_v = (b_g.scaled(2 * (1 - beta2) * G, "2(1 − β₂)|g|")
           + tol.accumulated(beta2 * v + (1 - beta2) * G**2, 4, dtype)
           + tol.elementwise(v + G**2, dtype, ulps=1.0))
    b_D = (tol.accumulated(D, 6, dtype)
           + b_g.scaled(np.sqrt((1 - beta2) / (1 - beta2**t)), "√((1 − β₂)/(1 − β₂ᵗ))"))
    b_U = (tol.accumulated(U, 3, dtype)
           + b_m.scaled(lr / (1 - beta1**t) / D, "lr/((1 − β₁ᵗ)(√v̂ + ε))")
           + b_D.scaled(np.abs(U) / D, "|update|/(√v̂ + ε)"))
    b_w = tol.accumulated(np.abs(w0) + np.abs(U), 1, dtype) + b_U + b_w0
    return b_w, b_m, b_v


def adam_step(w: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
              beta1: float, beta2: float, eps: float, weight_decay: float, *,
              dtype: np.dtype) -> tuple[tol.Bound, tol.Bound, tol.Bound]:
    """regularisation.adam_l2, (w', m', v') of Adam with λw added to the gradient: the rounding
    chain of the spec section (gradient, moments, denominator, update, subtraction)."""
    return _adam_chain((w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay), dtype,
                       decoupled=False)


def adamw_step(w: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
               beta1: float, beta2: float, eps: float, weight_decay: float, *,
               dtype: np.dtype) -> tuple[tol.Bound, tol.Bound, tol.Bound]:
    """regularisation.adamw, (w', m', v') of AdamW: the same chain with the decay (1 − lr·λ)·w
    applied to w and kept out of the gradient."""
    return _adam_chain((w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay), dtype,
                       decoupled=True)


# ---- regularisation.ridge (reference only, float64) ---------------------------------------------

def ridge_mu(X: np.ndarray, lam: float) -> float:
    """μ, the smallest eigenvalue of the Hessian: ‖θ − θ*‖₂ ≤ ‖∇L(θ)‖₂/μ (strong convexity)."""
    return float(np.linalg.eigvalsh(ref.ridge_hessian(X, lam))[0])


def ridge_gradient_norm_and_rounding(X: np.ndarray, y: np.ndarray, lam: float, w: np.ndarray,
                                     b: float) -> tuple[float, float]:
    """‖∇̂L(θ)‖₂ as evaluated in float64, and the norm of its tol.accumulated rounding bound
    (an (n + d + 4)-rounding chain: residual, Xᵀr, + λw, /n)."""
    dw, db = ref.l2_penalised_loss_grad(X, y, w, b, lam)
    mw, mb = ref.l2_penalised_loss_grad_magnitude(X, y, w, b, lam)
    n, d = X.shape
    rounding = tol.accumulated(np.r_[mw, mb], n + d + 4, np.float64).atol
    return float(np.linalg.norm(np.r_[dw, db])), float(np.linalg.norm(rounding))


def ridge_closed_form_error(X: np.ndarray, y: np.ndarray, lam: float, θ: np.ndarray) -> float:
    """‖θ̂ − θ*‖₂ ≤ γ_m·(‖|A|ᵀ|A| + λD‖₂‖θ̂‖₂ + ‖|A|ᵀ|y|‖₂)/(n·μ), m = n + 1 + (d+1)(3d+4): forming
    the normal equations and solving them by Cholesky (spec)."""
    n, d = X.shape
    M_H, M_c = ref.ridge_magnitude(X, y, lam)
    m = n + 1 + (d + 1) * (3 * d + 4)
    return (tol.gamma(m, np.float64) * (np.linalg.norm(M_H, 2) * np.linalg.norm(θ) + np.linalg.norm(M_c))
            / (n * ridge_mu(X, lam)))


class RidgeAllowance(NamedTuple):
    """The pieces of the allowed ‖θ_closed − θ‖₂ for a θ whose gradient norm is ``gradient`` up
    to ``rounding``: the closed form's own error and the strong-convexity bound of θ."""

    closed: float
    gradient: float
    rounding: float
    mu: float

    @property
    def distance(self) -> float:
        """‖θ_closed − θ‖₂ ≤ closed + (gradient + rounding)/μ."""
        return self.closed + (self.gradient + self.rounding) / self.mu

    @property
    def minimiser_gradient(self) -> float:
        """The largest computed ‖∇L‖ a minimiser may show: rounding + closed·μ."""
        return self.rounding + self.closed * self.mu


def ridge_distance(X: np.ndarray, y: np.ndarray, lam: float, θ_closed: np.ndarray, *,
                   gradient: float, rounding: float) -> RidgeAllowance:
    """regularisation.ridge: how far the closed-form solution θ_closed may lie from a θ whose
    float64 gradient norm is ``gradient`` with rounding bound ``rounding``."""
    return RidgeAllowance(ridge_closed_form_error(X, y, lam, θ_closed), gradient, rounding,
                          ridge_mu(X, lam))
