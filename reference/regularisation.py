"""Reference for spec/regularisation.md: weight decay (seed 000, 权重衰减), in SGD and in Adam.

Symbols follow the seed: X_B holds the inputs x_i of a minibatch B as rows, y_B its labels, w the
weights, b the bias, η the learning rate, λ the penalty; r = X w + b − y are the residuals.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

#: The bias b: a float or a 0-d array (the checks hold it as an array; :func:`_check_regression`
#: accepts any scalar).
Scalar = float | np.ndarray


def _check_nonnegative(name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{name} = {value!r} must be ≥ 0")


def _check_same_shape(name: str, a: np.ndarray, like: str, ref: np.ndarray) -> None:
    if np.shape(a) != np.shape(ref):
        raise ValueError(f"{name} has shape {np.shape(a)}, but {like} has shape {np.shape(ref)}")


def _check_data(X: np.ndarray, y: np.ndarray) -> None:
    if np.ndim(X) != 2 or np.shape(X)[0] < 1:
        raise ValueError(f"X has shape {np.shape(X)}; it must be (n, d) with n ≥ 1 samples")
    n = np.shape(X)[0]
    if np.shape(y) != (n,):
        raise ValueError(f"y has shape {np.shape(y)}, but X has {n} rows: y must be ({n},)")


def _check_regression(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: Scalar) -> None:
    _check_data(X, y)
    d = np.shape(X)[1]
    if np.shape(w) != (d,):
        raise ValueError(f"w has shape {np.shape(w)}, but X has {d} columns: w must be ({d},)")
    if np.ndim(b) != 0:
        raise ValueError(f"b has shape {np.shape(b)}; the bias is a scalar")


def _residuals(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: Scalar) -> np.ndarray:
    """r_i = x_iᵀw + b − y_i."""
    return X @ w + b - y


# --- the penalised loss --------------------------------------------------------------------------

def l2_penalised_loss(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: Scalar,
                      lam: float) -> np.ndarray:
    """regularisation.l2_penalty — ℓ(w, b) + λ/(2n)·‖w‖², ℓ = 1/n Σ_i ½(x_iᵀw + b − y_i)².

    X: (n, d), y: (n,), w: (d,), b: scalar, λ ≥ 0 → a scalar. ‖w‖² is written w·w (not |w|²) so
    that complex-step differentiation applies.
    """
    _check_regression(X, y, w, b)
    _check_nonnegative("λ", lam)
    n = X.shape[0]
    r = _residuals(X, y, w, b)
    return (r @ r) / (2 * n) + lam / (2 * n) * (w @ w)


def l2_penalised_loss_grad(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: Scalar,
                           lam: float) -> tuple[np.ndarray, float]:
    """regularisation.l2_penalty — gradient: ∂w = 1/n Σ_i x_i r_i + λ/n·w, ∂b = 1/n Σ_i r_i.

    Same shapes as :func:`l2_penalised_loss`; returns (∂w of shape (d,), ∂b a scalar). With λ = 0
    it is the gradient of the plain squared loss ℓ.
    """
    _check_regression(X, y, w, b)
    _check_nonnegative("λ", lam)
    n = X.shape[0]
    r = _residuals(X, y, w, b)
    return X.T @ r / n + lam / n * w, r.sum() / n


def l2_penalised_loss_vjp(g: np.ndarray, X: np.ndarray, y: np.ndarray, w: np.ndarray, b: Scalar,
                          lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, None]:
    """regularisation.l2_penalty — backward: (∂X, ∂y, ∂w, ∂b) = g·(r wᵀ/n, −r/n, ∂w, ∂b); λ fixed."""
    n = X.shape[0]
    r = _residuals(X, y, w, b)
    dw, db = l2_penalised_loss_grad(X, y, w, b, lam)
    return g * np.outer(r, w) / n, -g * r / n, g * dw, g * db, None


def l2_penalised_loss_grad_magnitude(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: Scalar,
                                     lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Σ|terms| of the gradient of regularisation.l2_penalty (for its tol.accumulated bound).

    |∂w| ≤ 1/n Σ_i |x_i|(|x_i|ᵀ|w| + |b| + |y_i|) + λ/n·|w|, |∂b| ≤ 1/n Σ_i (|x_i|ᵀ|w| + |b| + |y_i|).
    """
    n = X.shape[0]
    r_abs = np.abs(X) @ np.abs(w) + np.abs(b) + np.abs(y)
    return (np.abs(X).T @ r_abs + lam * np.abs(w)) / n, r_abs.sum() / n


# --- SGD with weight decay -----------------------------------------------------------------------

def sgd_step_seed000(X_B: np.ndarray, y_B: np.ndarray, w: np.ndarray, b: Scalar, eta: float,
                     lam: float) -> tuple[np.ndarray, np.ndarray]:
    """regularisation.sgd_step.seed000 — the seed's minibatch update with weight decay.

    w ← (1 − ηλ/|B|)·w − η/|B|·Σ_{i∈B} x_i(x_iᵀw + b − y_i),
    b ← b − η/|B|·Σ_{i∈B} (x_iᵀw + b − y_i)            (the bias is not decayed).

    X_B: (|B|, d), y_B: (|B|,), w: (d,), b: scalar, η ≥ 0, λ ≥ 0 → (w', b'). It is one gradient
    step on the penalised loss of the batch itself, ℓ_B + λ/(2|B|)·‖w‖² (n = |B|).
    """
    _check_regression(X_B, y_B, w, b)
    _check_nonnegative("η", eta)
    _check_nonnegative("λ", lam)
    B = X_B.shape[0]
    r = _residuals(X_B, y_B, w, b)
    return (1 - eta * lam / B) * w - eta / B * (X_B.T @ r), b - eta / B * r.sum()


def sgd_step_textbook(X_B: np.ndarray, y_B: np.ndarray, w: np.ndarray, b: Scalar, eta: float,
                      lam: float) -> tuple[np.ndarray, np.ndarray]:
    """regularisation.sgd_step.textbook — w ← (1 − ηλ)·w − η/|B|·Σ_{i∈B} x_i r_i, b as in seed 000.

    The convention of later textbooks (penalty λ/2·‖w‖², not divided by the sample count), which is
    torch.optim.SGD with weight_decay = λ. Shapes as :func:`sgd_step_seed000`.
    """
    _check_regression(X_B, y_B, w, b)
    _check_nonnegative("η", eta)
    _check_nonnegative("λ", lam)
    B = X_B.shape[0]
    r = _residuals(X_B, y_B, w, b)
    return (1 - eta * lam) * w - eta / B * (X_B.T @ r), b - eta / B * r.sum()


def sgd_step(w: np.ndarray, grad: np.ndarray, lr: float, weight_decay: float) -> np.ndarray:
    """regularisation.sgd_step.torch — w' = w − lr·(grad + weight_decay·w) (torch.optim.SGD).

    w, grad: the same shape (any) → w' of that shape; lr ≥ 0, weight_decay ≥ 0. The seed's update
    is this with lr = η, grad = 1/|B| Σ x_i r_i and weight_decay = λ/|B| (0 for the bias).
    """
    _check_same_shape("grad", grad, "w", w)
    _check_nonnegative("lr", lr)
    _check_nonnegative("weight_decay", weight_decay)
    return w - lr * (grad + weight_decay * w)


def sgd_step_magnitude(w: np.ndarray, grad: np.ndarray, lr: float,
                       weight_decay: float) -> np.ndarray:
    """Σ|terms| of regularisation.sgd_step.torch: |w| + lr·|grad| + lr·weight_decay·|w|."""
    return np.abs(w) + lr * np.abs(grad) + lr * weight_decay * np.abs(w)


# --- Adam: L2 in the gradient versus decoupled weight decay --------------------------------------

def _check_adam(w: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
                beta1: float, beta2: float, eps: float, weight_decay: float) -> None:
    for name, a in (("grad", grad), ("m", m), ("v", v)):
        _check_same_shape(name, a, "w", w)
    if not np.all(v >= 0):
        raise ValueError(f"v holds a negative value {float(np.min(v))!r}; it is a mean of squares")
    if isinstance(t, bool) or not isinstance(t, int | np.integer) or t < 1:
        raise ValueError(f"t = {t!r} must be an integer ≥ 1 (the number of this step)")
    for name, beta in (("beta1", beta1), ("beta2", beta2)):
        if not 0 <= beta < 1:
            raise ValueError(f"{name} = {beta!r} must be in [0, 1)")
    _check_nonnegative("lr", lr)
    _check_nonnegative("eps", eps)
    _check_nonnegative("weight_decay", weight_decay)


def adam_denominator_and_update(m_new: np.ndarray, v_new: np.ndarray, t: int, lr: float,
                                beta1: float, beta2: float,
                                eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The denominator √v̂ + ε and the update lr·m̂/(√v̂ + ε) of an Adam step (also for its bounds).

    m̂ = m'/(1 − β₁ᵗ), v̂ = v'/(1 − β₂ᵗ): the bias corrections of step t.
    """
    m_hat = m_new / (1 - beta1**t)
    v_hat = v_new / (1 - beta2**t)
    denominator = np.sqrt(v_hat) + eps
    return denominator, lr * m_hat / denominator


def _adam(w: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
          beta1: float, beta2: float, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Adam update of w with gradient g: moments, bias corrections, step."""
    m_new = beta1 * m + (1 - beta1) * g
    v_new = beta2 * v + (1 - beta2) * g * g
    _, update = adam_denominator_and_update(m_new, v_new, t, lr, beta1, beta2, eps)
    return w - update, m_new, v_new


def adam_step(w: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
              beta1: float, beta2: float, eps: float,
              weight_decay: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """regularisation.adam_l2 — Adam with the L2 term added to the gradient (torch.optim.Adam).

    g = grad + λ·w;  m' = β₁m + (1 − β₁)g;  v' = β₂v + (1 − β₂)g²;
    m̂ = m'/(1 − β₁ᵗ);  v̂ = v'/(1 − β₂ᵗ);  w' = w − lr·m̂/(√v̂ + ε),   λ = weight_decay.

    w, grad, m, v (v ≥ 0): one shape → (w', m', v'); t ≥ 1 is the number of this step.
    """
    _check_adam(w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay)
    g = grad + weight_decay * w
    return _adam(w, g, m, v, t, lr, beta1, beta2, eps)


def adamw_step(w: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
               beta1: float, beta2: float, eps: float,
               weight_decay: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """regularisation.adamw — decoupled weight decay (torch.optim.AdamW).

    w ← (1 − lr·λ)·w, then the Adam update of that w with g = grad (λ never enters m or v).
    Arguments and shapes as :func:`adam_step`.
    """
    _check_adam(w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay)
    return _adam((1 - lr * weight_decay) * w, grad, m, v, t, lr, beta1, beta2, eps)


# --- ridge regression: the minimiser of the penalised loss ---------------------------------------

def _augmented(X: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """A = [X, 1] (the bias as a column of ones) and λD, D = diag(1, …, 1, 0) (b not penalised)."""
    n, d = X.shape
    return np.column_stack([X, np.ones(n)]), lam * np.diag(np.r_[np.ones(d), 0.0])


def ridge_hessian(X: np.ndarray, lam: float) -> np.ndarray:
    """H = (AᵀA + λD)/n, the (constant) Hessian of the penalised loss in θ = (w, b)."""
    A, lamD = _augmented(X, lam)
    return (A.T @ A + lamD) / X.shape[0]


def ridge_magnitude(X: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Σ|terms| of the normal equations of regularisation.ridge: |A|ᵀ|A| + λD and |A|ᵀ|y|."""
    A, lamD = _augmented(X, lam)
    return np.abs(A).T @ np.abs(A) + lamD, np.abs(A).T @ np.abs(y)


def _check_ridge(X: np.ndarray, y: np.ndarray, lam: float) -> None:
    _check_data(X, y)
    if not lam > 0:
        raise ValueError(f"λ = {lam!r} must be > 0 (the seed's λ > 0 makes the minimiser unique)")


def ridge(X: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """regularisation.ridge — the minimiser of ℓ + λ/(2n)‖w‖²: θ* = (AᵀA + λD)⁻¹Aᵀy.

    θ = (w, b), A = [X, 1], D = diag(1, …, 1, 0): the bias is an unpenalised column, and λ' = λ
    because the loss and the penalty share the factor 1/n. X: (n, d), y: (n,), λ > 0 →
    (w*: (d,), b*: scalar). Solved by Cholesky (the matrix is symmetric positive definite).
    """
    _check_ridge(X, y, lam)
    A, lamD = _augmented(X, lam)
    θ = scipy.linalg.solve(A.T @ A + lamD, A.T @ y, assume_a="pos")
    return θ[:-1], θ[-1]


def ridge_by_gradient_descent(X: np.ndarray, y: np.ndarray, lam: float, *, rtol: float,
                              max_steps: int = 100_000) -> tuple[np.ndarray, float]:
    """regularisation.ridge — the same minimiser by full-batch gradient descent from θ = 0.

    Each step is w ← w − η∂w, b ← b − η∂b with the gradient of :func:`l2_penalised_loss`, i.e. the
    seed's update with B = all n samples; η = 1/L, L the largest eigenvalue of
    :func:`ridge_hessian`. Stops at the first θ with ‖∇‖₂ ≤ rtol·‖∇ at θ = 0‖₂ (raises
    RuntimeError if max_steps pass first). Shapes as :func:`ridge`.
    """
    _check_ridge(X, y, lam)
    if not 0 < rtol < 1:
        raise ValueError(f"rtol = {rtol!r} must be in (0, 1)")
    eta = 1 / np.linalg.eigvalsh(ridge_hessian(X, lam))[-1]
    w, b = np.zeros(X.shape[1]), np.float64(0.0)
    dw, db = l2_penalised_loss_grad(X, y, w, b, lam)
    tau = rtol * np.hypot(np.linalg.norm(dw), db)
    for _ in range(max_steps):
        if np.hypot(np.linalg.norm(dw), db) <= tau:
            return w, b
        w, b = w - eta * dw, b - eta * db
        dw, db = l2_penalised_loss_grad(X, y, w, b, lam)
    raise RuntimeError(f"gradient descent did not reach ‖∇‖ ≤ {tau:.3g} in {max_steps} steps")


# --- known bugs ----------------------------------------------------------------------------------

def decay_bias(X_B: np.ndarray, y_B: np.ndarray, w: np.ndarray, b: Scalar, eta: float,
               lam: float) -> tuple[np.ndarray, np.ndarray]:
    """regularisation.bug.decay_bias — the bias decayed too: b ← (1 − ηλ/|B|)·b − η/|B|·Σ r_i.

    What optimizer weight_decay does to every parameter handed to it, the bias included.
    """
    w_new, _ = sgd_step_seed000(X_B, y_B, w, b, eta, lam)
    B = X_B.shape[0]
    return w_new, (1 - eta * lam / B) * b - eta / B * _residuals(X_B, y_B, w, b).sum()


def lambda_not_divided(X_B: np.ndarray, y_B: np.ndarray, w: np.ndarray, b: Scalar, eta: float,
                       lam: float) -> tuple[np.ndarray, np.ndarray]:
    """regularisation.bug.lambda_not_divided — (1 − ηλ)·w where the seed's (1 − ηλ/|B|)·w is meant.

    Passing the seed's λ as torch's weight_decay (instead of λ/|B|) does this. The result is the
    textbook convention's step, so it is only a bug where the seed's convention is meant: the decay
    is |B| times too strong (it coincides with the seed's step for |B| = 1).
    """
    return sgd_step_textbook(X_B, y_B, w, b, eta, lam)


def decay_sign(X_B: np.ndarray, y_B: np.ndarray, w: np.ndarray, b: Scalar, eta: float,
               lam: float) -> tuple[np.ndarray, np.ndarray]:
    """regularisation.bug.decay_sign — w ← (1 + ηλ/|B|)·w − …: the weights grow instead of decaying.

    The penalty's gradient added instead of subtracted (a sign slip in the hand-written update).
    """
    _, b_new = sgd_step_seed000(X_B, y_B, w, b, eta, lam)
    B = X_B.shape[0]
    r = _residuals(X_B, y_B, w, b)
    return (1 + eta * lam / B) * w - eta / B * (X_B.T @ r), b_new


def sgd_step_decay_sign(w: np.ndarray, grad: np.ndarray, lr: float,
                        weight_decay: float) -> np.ndarray:
    """regularisation.bug.decay_sign — w' = w − lr·(grad − weight_decay·w): torch's step with the
    decay's sign slipped, (1 + lr·weight_decay)·w − lr·grad, the form a contract sgd_step takes."""
    return w - lr * (grad - weight_decay * w)


def ridge_lambda_over_n(X: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """regularisation.bug.ridge_lambda_over_n — θ = (AᵀA + (λ/n)·D)⁻¹Aᵀy: λ' = λ/n instead of λ.

    Matching the penalty λ/(2n)‖w‖² against ½‖Aθ − y‖² + λ'/2·‖w‖² while forgetting that the seed's
    loss ℓ carries the same 1/n: the fitted weights are the minimiser of a weaker penalty.
    """
    return ridge(X, y, lam / X.shape[0])


def adam_l2_as_adamw(w: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, t: int,
                     lr: float, beta1: float, beta2: float, eps: float,
                     weight_decay: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """regularisation.bug.adam_l2_as_adamw — Adam with L2 in the gradient where AdamW is meant.

    torch.optim.Adam(weight_decay=λ) taken for decoupled weight decay: the decay λ·w passes through
    m and v and is divided by √v̂ + ε, so coordinates with a large gradient history decay less.
    """
    return adam_step(w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay)


def adamw_decay_not_scaled_by_lr(w: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                                 t: int, lr: float, beta1: float, beta2: float, eps: float,
                                 weight_decay: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """regularisation.bug.adamw_decay_not_scaled_by_lr — w ← (1 − λ)·w, then the Adam update of
    that w with g = grad: decoupled decay by λ itself, not by lr·λ.

    TensorFlow Addons' AdamW (DecoupledWeightDecayExtension) subtracts weight_decay·w and leaves
    scheduling the decay with the learning rate to the user (tensorflow/addons#2282), as
    Loshchilov and Hutter's Algorithm 2 multiplies λ by the schedule factor η_t and not by α;
    torch.optim.AdamW decays by lr·λ. The same λ therefore decays 1/lr times faster.
    Arguments and shapes as :func:`adam_step`.
    """
    _check_adam(w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay)
    return _adam((1 - weight_decay) * w, grad, m, v, t, lr, beta1, beta2, eps)
