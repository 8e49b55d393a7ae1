"""Reference for spec/activations.md.

Every function is elementwise (maxout groups the last axis) and written in a form that neither
overflows nor loses relative accuracy at large |x|. The smooth ones accept complex arrays, so
complex-step differentiation applies: branches are chosen on the real part only, and the
exponentials are always of arguments with non-positive real part, e = exp(−|x|).
"""

from __future__ import annotations

import numpy as np


def _sign(x: np.ndarray) -> np.ndarray:
    """s = +1 where Re x ≥ 0, −1 elsewhere, so that s·x has the real part |Re x|."""
    return np.where(np.real(x) >= 0, 1.0, -1.0)


def _check_alpha(alpha: float) -> None:
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha = {alpha!r} is not a positive finite slope")


def threshold(x: np.ndarray) -> np.ndarray:
    """activations.threshold — φ(x) = 1 if x > 0 else 0 (the value at 0 is 0).

    x: any shape → same shape, values in {0, 1}. Its derivative is 0 wherever it exists
    (x ≠ 0), so back-propagation cannot train through it.
    """
    return np.where(np.real(x) > 0, 1.0, 0.0)


def sigmoid(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """activations.sigmoid — φ(x) = 1 / (1 + exp(−α x)), slope α > 0.

    Evaluated by the sign of z = α x so that no exponential overflows: with e = exp(−|z|),
    φ = 1/(1 + e) for z ≥ 0 and e/(1 + e) for z < 0. x: any shape → same shape.
    """
    _check_alpha(alpha)
    z = x if alpha == 1 else alpha * x
    if np.isrealobj(z):
        z = np.asarray(z, dtype=np.result_type(z, np.float64))  # float64 at least, as before
        return _sigmoid_real(z[None])[0] if z.ndim == 0 else _sigmoid_real(z)
    s = _sign(z)
    e = np.exp(-s * z)
    return np.where(s > 0, 1.0, e) / (1.0 + e)


def _sigmoid_real(z: np.ndarray) -> np.ndarray:
    """σ(z) for a real array z (ndim ≥ 1): 1/(1 + e) where z ≥ 0 and e/(1 + e) where z < 0,
    e = exp(min(z, −z)) = exp(−|z|).

    The recurrent layers spend a good part of their time here, so one division serves both signs
    and one exponential both terms: the numerator, 1 where z ≥ 0 and e where z < 0, is
    max(e, [z ≥ 0]) since 0 ≤ e ≤ 1 (it equals exp(min(z, 0)) bit for bit, NaN included).
    """
    z = np.ascontiguousarray(z)  # a column block of the gates, say: one copy, then fast passes
    e = np.negative(z)
    np.minimum(z, e, out=e)  # −|z|, with the NaN bits min(z, −z) had before
    np.exp(e, out=e)
    denominator = e + 1.0
    step = np.greater_equal(z, 0, out=np.empty_like(e), casting="unsafe")  # [z ≥ 0] as 1.0, 0.0
    np.maximum(e, step, out=e)  # NaN stays NaN: maximum propagates e's
    e /= denominator
    return e


def sigmoid_vjp(g: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray]:
    """activations.sigmoid — backward: ∂x = g · α φ(x) (1 − φ(x)).

    1 − φ(αx) is formed as φ(−αx), without cancellation, so the derivative keeps its relative
    accuracy where φ saturates. g, x: same shape → (∂x,).
    """
    return (g * alpha * sigmoid(x, alpha) * sigmoid(-x, alpha),)


def tanh(x: np.ndarray) -> np.ndarray:
    """activations.tanh — φ(x) = (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ) = 2σ(2x) − 1, odd, values in (−1, 1).

    x: any shape → same shape.
    """
    return np.tanh(x)


def tanh_vjp(g: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    """activations.tanh — backward: ∂x = g · (1 − φ(x)²) = g · sech²(x).

    1 − φ² cancels to 0 in floating point once |x| ≳ 19 (float64), so the reference uses the
    equal sech²(x) = 4e/(1 + e)², e = exp(−2|x|), which keeps its relative accuracy.
    g, x: same shape → (∂x,).
    """
    e = np.exp(-2.0 * _sign(x) * x)
    return (g * 4.0 * e / (1.0 + e) ** 2,)


def relu(x: np.ndarray) -> np.ndarray:
    """activations.relu — φ(x) = max(x, 0). x: any shape → same shape."""
    return np.where(np.real(x) > 0, x, 0.0)


def relu_vjp(g: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    """activations.relu — backward: ∂x = g where x > 0, 0 where x ≤ 0 (PyTorch's value at 0)."""
    return (np.where(np.real(x) > 0, g, 0.0),)


def softplus(x: np.ndarray) -> np.ndarray:
    """activations.softplus — φ(x) = log(1 + eˣ) = max(x, 0) + log1p(exp(−|x|)).

    The second form never overflows and is accurate for x → −∞ (φ ≈ eˣ) and x → +∞ (φ ≈ x).
    x: any shape → same shape.
    """
    s = _sign(x)
    return np.where(s > 0, x, 0.0) + np.log1p(np.exp(-s * x))


def softplus_vjp(g: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    """activations.softplus — backward: ∂x = g · σ(x), the logistic function."""
    return (g * sigmoid(x),)


#: PyTorch's F.softplus default: above β·x > threshold it returns x itself.
TORCH_SOFTPLUS_THRESHOLD = 20.0


def softplus_torch_threshold(x: np.ndarray) -> np.ndarray:
    """activations.softplus.torch_threshold — φ(x) = x for x > 20, log(1 + eˣ) otherwise.

    torch.nn.functional.softplus(x, beta=1, threshold=20) linearises above the threshold; it
    differs from activations.softplus by log1p(e⁻ˣ) < e⁻²⁰ ≈ 2.1e-9 there.
    x: any shape → same shape.
    """
    return np.where(np.real(x) > TORCH_SOFTPLUS_THRESHOLD, x, softplus(x))


def softplus_torch_threshold_vjp(g: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    """activations.softplus.torch_threshold — backward: ∂x = g for x > 20, g · σ(x) otherwise."""
    return (np.where(np.real(x) > TORCH_SOFTPLUS_THRESHOLD, g, softplus_vjp(g, x)[0]),)


def _channel_slope(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """a broadcast against x: a scalar as is, a per-channel vector along axis 1."""
    a = np.asarray(a)
    if a.ndim == 0 or a.shape == (1,):
        return a.reshape(())
    if a.ndim != 1 or np.ndim(x) < 2 or a.shape[0] != np.shape(x)[1]:
        raise ValueError(f"prelu slope a has shape {a.shape}; it must be a scalar, (1,), or "
                         f"(C,) with C = x.shape[1] for x of shape {np.shape(x)}")
    return a.reshape((1, -1) + (1,) * (np.ndim(x) - 2))


def prelu(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """activations.prelu — φ(x) = x if x > 0 else a·x, a learnt slope per channel.

    x: (N, C, …) or any shape for a scalar a; a: scalar, (1,) or (C,), channel axis 1.
    """
    return np.where(np.real(x) > 0, x, _channel_slope(x, a) * x)


def prelu_vjp(g: np.ndarray, x: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """activations.prelu — backward: ∂x = g where x > 0 else a·g; ∂a = Σ g·x over x ≤ 0.

    ∂a sums over every axis but the channel axis (all axes for a scalar a) → shape of a.
    At x = 0 the derivative taken is a (PyTorch's convention; relu's 0 when a = 0).
    """
    negative = np.real(x) <= 0
    dx = np.where(negative, _channel_slope(x, a) * g, g)
    gx = np.where(negative, g * x, 0.0)
    a = np.asarray(a)
    if a.ndim == 1 and a.shape[0] > 1:
        da = gx.sum(axis=tuple(i for i in range(gx.ndim) if i != 1))
    else:
        da = np.reshape(gx.sum(), a.shape)
    return dx, da


def _check_pieces(z: np.ndarray, k: int) -> None:
    if not (isinstance(k, int | np.integer) and k >= 1):
        raise ValueError(f"maxout k = {k!r} is not a positive integer")
    if np.ndim(z) < 1 or np.shape(z)[-1] % k:
        raise ValueError(f"maxout: the last axis of z (shape {np.shape(z)}) is not a multiple "
                         f"of k = {k}")


def _grouped(z: np.ndarray, k: int) -> np.ndarray:
    """z: (…, m·k) → (…, m, k): piece j of unit i is z[…, i·k + j]."""
    return z.reshape(*z.shape[:-1], z.shape[-1] // k, k)


def maxout(z: np.ndarray, k: int) -> np.ndarray:
    """activations.maxout — h_i = max_{j ∈ [1, k]} z_ij, z_ij = xᵀ W_·ij + b_ij.

    z: (…, m·k), the k pieces of each of the m units side by side (z_ij at index i·k + j, the
    layout of a linear layer with m·k outputs) → h: (…, m).
    """
    _check_pieces(z, k)
    return _grouped(z, k).max(axis=-1)


def maxout_vjp(g: np.ndarray, z: np.ndarray, k: int) -> tuple[np.ndarray]:
    """activations.maxout — backward: g_i goes to the maximal piece of unit i.

    Where several pieces tie for the maximum, any split of g_i among them with non-negative
    weights is a subgradient; the reference splits evenly, as torch.amax does.
    g: (…, m), z: (…, m·k) → (∂z,) of shape (…, m·k).
    """
    _check_pieces(z, k)
    pieces = _grouped(z, k)
    at_max = pieces == pieces.max(axis=-1, keepdims=True)
    share = at_max / at_max.sum(axis=-1, keepdims=True)
    return ((share * g[..., None]).reshape(z.shape),)


def sigmoid_overflow(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """activations.bug.sigmoid_overflow — φ(x) = exp(αx) / (1 + exp(αx)), unguarded.

    exp(αx) overflows for αx > 709 (float64; 88 in float32) and inf/inf is NaN.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # the NaN is the bug being modelled
        e = np.exp(alpha * x)
        return e / (1.0 + e)


def softplus_naive(x: np.ndarray) -> np.ndarray:
    """activations.bug.softplus_naive — φ(x) = log(1 + exp(x)) as written.

    Overflows to inf for x > 709, and 1 + eˣ rounds to 1 for x < −37, giving 0 instead of eˣ.
    """
    with np.errstate(over="ignore"):  # the inf is the bug being modelled
        return np.log(1.0 + np.exp(x))


def tanh_derivative_from_input(g: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    """activations.bug.tanh_derivative_from_input — ∂x = g · (1 − x²), f' = 1 − f² misread.

    The seed's identity f'(x) = 1 − f(x)² applied to the input x instead of the output f(x).
    """
    return (g * (1.0 - x**2),)


# ---- hard sigmoids: piecewise-linear σ that frameworks ship as a recurrent activation ----------

def _hard_sigmoid(z: np.ndarray, slope: float) -> np.ndarray:
    """clip(slope·z + ½, 0, 1): the line through (0, ½) with the given slope, clipped to [0, 1]."""
    return np.clip(slope * np.asarray(z) + 0.5, 0.0, 1.0)


#: Keras 2's hard_sigmoid: slope 0.2, reaching 0 and 1 at z = ∓2.5.
HARD_SIGMOID_SLOPE_KERAS2 = 0.2

#: Keras 3's (TF ≥ 2.16) hard_sigmoid, relu6(z + 3)/6: slope 1/6, reaching 0 and 1 at z = ∓3.
HARD_SIGMOID_SLOPE_KERAS3 = 1.0 / 6.0


def hard_sigmoid_keras2(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """activations.bug.hard_sigmoid_keras2 — φ(x) = clip(0.2·αx + 0.5, 0, 1).

    Keras 2's `hard_sigmoid` (its documented formula, and the one it computed through Keras 2.15),
    the default `recurrent_activation` of Keras ≤ 2.2's LSTM and GRU; ONNX's HardSigmoid with its
    default alpha = 0.2, beta = 0.5. It is within 0.08 of σ(αx), not σ itself.
    """
    _check_alpha(alpha)
    return _hard_sigmoid(alpha * np.asarray(x), HARD_SIGMOID_SLOPE_KERAS2)


def hard_sigmoid_keras3(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """activations.bug.hard_sigmoid_keras3 — φ(x) = relu6(αx + 3)/6 = clip(αx/6 + 0.5, 0, 1).

    What Keras 3 (TensorFlow ≥ 2.16) computes for `hard_sigmoid` while its documentation still
    states 0.2x + 0.5 clipped at ±2.5 (tensorflow/tensorflow#65381); torch.nn.Hardsigmoid's
    formula. Within 0.07 of σ(αx).
    """
    _check_alpha(alpha)
    return _hard_sigmoid(alpha * np.asarray(x), HARD_SIGMOID_SLOPE_KERAS3)
