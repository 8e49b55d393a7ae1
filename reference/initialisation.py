"""Reference for spec/initialisation.md."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Gate blocks stacked in the rows of an nn.RNN / nn.GRU / nn.LSTM weight (r, z, n and i, f, g, o).
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """initialisation.fans — fan_in = shape[1]·∏shape[2:], fan_out = shape[0]·∏shape[2:].

    shape: (out, in) for a linear weight, (out, in, *kernel) for a convolution weight; the
    kernel's size is the receptive field that every input and output feature map spans.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"fans need a weight shape (out, in, *kernel) of at least 2 "
                         f"dimensions; got {shape}")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _check_gain(gain: float) -> None:
    if not gain > 0:
        raise ValueError(f"gain = {gain!r} must be positive")


def xavier_uniform_bound(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """initialisation.xavier_uniform — bound = gain·√(6/(a + b)), a = fan_in, b = fan_out."""
    _check_gain(gain)
    return gain * math.sqrt(6.0 / (fan_in + fan_out))


def xavier_uniform(shape: Sequence[int], gain: float, rng: np.random.Generator) -> np.ndarray:
    """initialisation.xavier_uniform — W ~ U(−bound, bound) elementwise, Var W = gain²·2/(a + b).

    shape: (out, in, *kernel) → W of that shape (the contract's xavier_uniform).
    """
    bound = xavier_uniform_bound(*fans(shape), gain)
    return rng.uniform(-bound, bound, size=tuple(shape))


def xavier_normal_std(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """initialisation.xavier_normal — σ = gain·√(2/(a + b)), a = fan_in, b = fan_out."""
    _check_gain(gain)
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def xavier_normal(shape: Sequence[int], gain: float, rng: np.random.Generator) -> np.ndarray:
    """initialisation.xavier_normal — W ~ N(0, σ²) elementwise.

    shape: (out, in, *kernel) → W of that shape (the contract's xavier_normal).
    """
    σ = xavier_normal_std(*fans(shape), gain)
    return rng.normal(0.0, σ, size=tuple(shape))


def torch_default_linear_bound(in_features: int) -> float:
    """initialisation.torch_default_linear — bound = 1/√in_features for both W and b."""
    if in_features < 1:
        raise ValueError(f"in_features = {in_features!r} must be at least 1")
    return 1.0 / math.sqrt(in_features)


def torch_default_linear(out_features: int, in_features: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """initialisation.torch_default_linear — W, b ~ U(−1/√in, 1/√in) elementwise.

    W: (out_features, in_features), b: (out_features,): nn.Linear's initial parameters.
    """
    bound = torch_default_linear_bound(in_features)
    W = rng.uniform(-bound, bound, size=(out_features, in_features))
    b = rng.uniform(-bound, bound, size=(out_features,))
    return W, b


def torch_default_rnn_bound(hidden_size: int) -> float:
    """initialisation.torch_default_rnn — bound = 1/√H for every parameter."""
    if hidden_size < 1:
        raise ValueError(f"hidden_size = {hidden_size!r} must be at least 1")
    return 1.0 / math.sqrt(hidden_size)


def torch_default_rnn(kind: str, input_size: int, hidden_size: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """initialisation.torch_default_rnn — w_ih, w_hh, b_ih, b_hh ~ U(−1/√H, 1/√H) elementwise.

    kind: "rnn", "gru" or "lstm" (k = 1, 3, 4 gate blocks) → w_ih: (k·H, input_size),
    w_hh: (k·H, H), b_ih, b_hh: (k·H,): a one-layer nn.RNN / nn.GRU / nn.LSTM's parameters.
    """
    if kind not in GATES:
        raise ValueError(f"kind = {kind!r} must be one of {sorted(GATES)}")
    bound = torch_default_rnn_bound(hidden_size)
    rows = GATES[kind] * hidden_size
    shapes = ((rows, input_size), (rows, hidden_size), (rows,), (rows,))
    return tuple(rng.uniform(-bound, bound, size=s) for s in shapes)


def mlp_loss(X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray, w_o: np.ndarray,
             b_o: float) -> np.ndarray:
    """initialisation.symmetry — the seed's one-output MLP and its loss ℓ = 1/(2n)·Σ(o − y)².

    H = tanh(X W + b), o = H w_o + b_o. X: (n, d), y: (n,), W: (d, h) (column i holds hidden
    unit i's weights w_1i … w_di), b: (h,), w_o: (h,), b_o: scalar → ℓ: scalar.
    """
    H = _hidden(X, W, b)
    o = (H * w_o).sum(axis=1) + b_o
    return ((o - y) ** 2).sum() / (2 * X.shape[0])


def _hidden(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    # X W as a broadcast sum rather than BLAS: every hidden unit then goes through the same
    # operations in the same order, so units that are equal stay equal bit for bit (a BLAS
    # kernel may block the columns of W differently).
    return np.tanh((X[:, :, None] * W[None, :, :]).sum(axis=1) + b)


def mlp_loss_vjp(g: float | np.ndarray, X: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray,
                 w_o: np.ndarray, b_o: float) -> tuple[None, None, np.ndarray, np.ndarray,
                                                       np.ndarray, float]:
    """initialisation.symmetry — backward of mlp_loss: with r = (o − y)/n and Z = X W + b,

    ∂w_o = Hᵀ r, ∂b_o = Σ r, ∂Z = (r w_oᵀ) ⊙ (1 − H²), ∂W = Xᵀ ∂Z, ∂b = Σ_n ∂Z (times g).
    """
    H = _hidden(X, W, b)
    o = (H * w_o).sum(axis=1) + b_o
    r = g * (o - y) / X.shape[0]
    dZ = r[:, None] * w_o[None, :] * (1 - H**2)
    dW = (X[:, :, None] * dZ[:, None, :]).sum(axis=0)
    return None, None, dW, dZ.sum(axis=0), (H * r[:, None]).sum(axis=0), r.sum()


def mlp_sgd(X: np.ndarray, y: np.ndarray, params: tuple[np.ndarray, np.ndarray, np.ndarray, float],
            lr: float, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """initialisation.symmetry — `steps` full-batch SGD steps θ ← θ − η·∂ℓ/∂θ on mlp_loss.

    params = (W, b, w_o, b_o) as in mlp_loss; returns the parameters after the last step.
    """
    if steps < 0:
        raise ValueError(f"steps = {steps!r} must be non-negative")
    W, b, w_o, b_o = params
    for _ in range(steps):
        _, _, dW, db, dw_o, db_o = mlp_loss_vjp(np.float64(1.0), X, y, W, b, w_o, b_o)
        W, b, w_o, b_o = W - lr * dW, b - lr * db, w_o - lr * dw_o, b_o - lr * db_o
    return W, b, w_o, b_o


def xavier_fan_in_only(shape: Sequence[int], gain: float, rng: np.random.Generator) -> np.ndarray:
    """initialisation.bug.xavier_fan_in_only — U(±gain·√(3/a)): Var = gain²/fan_in, fan_out ignored.

    Caffe's "xavier" filler (by default) and LeCun's variance; equals Xavier only if a = b.
    """
    fan_in, _ = fans(shape)
    bound = gain * math.sqrt(3.0 / fan_in)
    return rng.uniform(-bound, bound, size=tuple(shape))


def xavier_variance_as_bound(shape: Sequence[int], gain: float,
                             rng: np.random.Generator) -> np.ndarray:
    """initialisation.bug.xavier_variance_as_bound — U(±gain²·2/(a + b)): the variance as the bound."""
    fan_in, fan_out = fans(shape)
    bound = gain**2 * 2.0 / (fan_in + fan_out)
    return rng.uniform(-bound, bound, size=tuple(shape))
