"""The oracle's catalogue: implementations that are wrong on purpose, and some that are right in
another parametrisation.

Every entry is a small module built on demand (:meth:`Entry.module`): ``DTYPE`` and the contract
functions it defines. Most bind a known bug's reference function to the contract name (the bug
functions of ``reference/`` take the contract's arguments); where a bug or a variant is written
for other arguments, a wrapper maps the contract's arguments onto them. checks/meta/test_oracle.py runs
the oracle (:func:`nnspec.oracle.check`) on each entry, restricted to the spec ids of ``only``, and
proves that

- every bug id of spec/*.md has an entry, or an entry in :data:`UNREACHABLE` saying why no
  implementation under test can exhibit it;
- every bug, variant handed in where another is asked for, and mistake is *detected* (each id of
  ``only`` fails) and every bug and variant is *diagnosed* (a diagnosis line names it);
- every correct implementation passes.

``FRAMEWORK_BUGS`` (part of ``BUGS``) holds what real frameworks compute where the contract asks
for PyTorch's formula — Flax NNX's GRU, CoreML's, PaddlePaddle's, TF 1's LSTM cells, the gate
orders of ONNX, TensorFlow and OpenVINO, Keras's hard sigmoids, TensorFlow Addons' AdamW — some in
the framework's own layout; checks/meta/test_framework_variants.py runs the oracle on each.

:func:`detection` runs the whole catalogue and returns the figures for the report.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from scipy.special import expit

from nnspec.reference import (
    activations,
    dropout,
    gru,
    initialisation,
    linear,
    losses,
    lstm,
    regularisation,
    rnn,
    sequence,
    stability,
)

#: Hypothesis examples per check when the oracle runs an entry: every entry fails within them.
EXAMPLES = 10

KINDS = ("bug", "variant", "mistake", "correct")


@dataclass(frozen=True)
class Entry:
    """One implementation of the catalogue.

    - ``name``: unique, made of [a-z0-9_] (the module is ``nnspec_catalogue_<name>``).
    - ``kind``: *bug* (exhibits a bug id), *variant* (a variant id handed in where ``only`` asks for
      another), *mistake* (a real-world mistake with no id yet), *correct* (must pass).
    - ``functions``: contract name → function.
    - ``only``: the spec ids the oracle runs; all of them must fail, except for *correct*, where
      none may fail and each must pass at least one check.
    - ``exhibits``: the bug or variant id (None for mistakes and correct entries).
    - ``named_as``: ids of which the diagnosis must name one (default: ``exhibits``).
    - ``origin``: where the mistake comes from.
    """

    name: str
    kind: str
    functions: Mapping[str, Callable[..., Any]]
    only: tuple[str, ...]
    origin: str
    exhibits: str | None = None
    named_as: tuple[str, ...] = field(default=())
    dtype: type = np.float64

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]+", self.name):
            raise ValueError(f"entry name {self.name!r} must be made of [a-z0-9_]")
        if self.kind not in KINDS:
            raise ValueError(f"entry {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if (self.exhibits is None) != (self.kind in ("mistake", "correct")):
            raise ValueError(f"entry {self.name}: a {self.kind} entry "
                             f"{'needs' if self.exhibits is None else 'takes no'} exhibits")

    @property
    def module_name(self) -> str:
        return f"nnspec_catalogue_{self.name}"

    @property
    def expected_names(self) -> tuple[str, ...]:
        return self.named_as or ((self.exhibits,) if self.exhibits else ())

    def module(self) -> ModuleType:
        """A fresh module object holding DTYPE and the entry's contract functions."""
        module = ModuleType(self.module_name, f"nnspec catalogue entry {self.name}: {self.origin}")
        vars(module).update({"DTYPE": self.dtype, **self.functions})
        return module


# ---- wrappers: the contract's arguments mapped onto another parametrisation ---------------------

def _bias(b: np.ndarray | None, size: int) -> np.ndarray:
    return np.zeros(size) if b is None else b


def _concatenated_lstm(cell: Callable[..., tuple[np.ndarray, np.ndarray]]) -> Callable[..., Any]:
    """A contract lstm_cell computed by a cell of seeds 002/004's concatenated parametrisation:
    W_k = [W_hkᵀ, W_xkᵀ] (h, h + d) per gate k (reference/lstm.py's mapping)."""

    def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
        return cell(x, h, c, lstm.concat_params_from(lstm.params_from_torch(w_ih, w_hh, b_ih, b_hh)))

    return lstm_cell


def _softmax_state_rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """Seed 002 ④'s state a_t = softmax(W_ax x_t + W_aa a_{t−1} + b_a) as the contract's rnn_cell,
    one row of the batch at a time (the seed's output h_t = tanh(W_h a_t + b_h) is not a state)."""
    H = w_hh.shape[0]
    b_a = _bias(b_ih, H) + _bias(b_hh, H)
    W_h, b_h = np.eye(H), np.zeros(H)  # the seed's output layer, which rnn_cell does not return
    return np.stack([losses.softmax_hidden_activation(x_t, a, w_ih, w_hh, b_a, W_h, b_h)[0]
                     for x_t, a in zip(x, h, strict=True)]).reshape(h.shape)


# ---- a GRU in Keras's layout, in its own NumPy code ---------------------------------------------

#: Keras's gate blocks z, r, h from PyTorch's r, z, n: Keras's block k is PyTorch's block
#: KERAS_FROM_TORCH[k].
KERAS_FROM_TORCH = (1, 0, 2)


def keras_weights(w_ih, w_hh, b_ih=None, b_hh=None, order=KERAS_FROM_TORCH):
    """PyTorch's w_ih (3H, D), w_hh (3H, H), b_ih, b_hh (3H,) → Keras's GRU weights: kernel (D, 3H),
    recurrent_kernel (H, 3H) with column blocks z, r, h, and bias (2, 3H), row 0 for the input,
    row 1 for the recurrent projection (keras.layers.GRU with reset_after=True)."""
    H = w_hh.shape[1]

    def blocks(a):
        return [a[k * H:(k + 1) * H] for k in order]

    kernel = np.concatenate([W.T for W in blocks(w_ih)], axis=1)
    recurrent_kernel = np.concatenate([W.T for W in blocks(w_hh)], axis=1)
    bias = np.stack([np.concatenate(blocks(_bias(b, 3 * H).astype(w_ih.dtype)))
                     for b in (b_ih, b_hh)])
    return kernel, recurrent_kernel, bias


def keras_gru_step(x, h_tm1, kernel, recurrent_kernel, bias, *, reset_after=True):
    """One step of keras.layers.GRUCell: x (B, D), h_tm1 (B, H) → h (B, H).

    reset_after=True (Keras's default since TF 2): hh = tanh(x_h + r ⊙ (h_tm1 U_h + b_rh)).
    reset_after=False (Keras 2's and TF 1's default): hh = tanh(x_h + (r ⊙ h_tm1) U_h) with a
    single bias, here the sum of the two rows. Both mix h = z ⊙ h_tm1 + (1 − z) ⊙ hh.
    """
    if reset_after:
        b_x, b_rec = bias[0], bias[1]
    else:
        b_x, b_rec = bias[0] + bias[1], np.zeros_like(bias[1])
    x_z, x_r, x_h = np.split(x @ kernel + b_x, 3, axis=1)
    U_z, U_r, U_h = np.split(recurrent_kernel, 3, axis=1)
    b_rz, b_rr, b_rh = np.split(b_rec, 3)
    z = expit(x_z + h_tm1 @ U_z + b_rz)
    r = expit(x_r + h_tm1 @ U_r + b_rr)
    recurrent_h = r * (h_tm1 @ U_h + b_rh) if reset_after else (r * h_tm1) @ U_h
    hh = np.tanh(x_h + recurrent_h)
    return z * h_tm1 + (1 - z) * hh


def _keras_gru(*, reset_after=True, order=KERAS_FROM_TORCH) -> dict[str, Callable[..., Any]]:
    """The contract's gru_cell and gru_layer computed by :func:`keras_gru_step` on the Keras
    layout of the contract's weights (``order``: which PyTorch block fills each Keras block)."""

    def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        return keras_gru_step(x, h, *keras_weights(w_ih, w_hh, b_ih, b_hh, order),
                              reset_after=reset_after)

    def gru_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
        weights = keras_weights(w_ih, w_hh, b_ih, b_hh, order)
        h, ys = h0, []
        for x_t in x:
            h = keras_gru_step(x_t, h, *weights, reset_after=reset_after)
            ys.append(h)
        return np.stack(ys) if ys else np.zeros((0, *h0.shape), h0.dtype), h

    return {"gru_cell": gru_cell, "gru_layer": gru_layer}


# ---- cells in other frameworks' layouts, each in its own NumPy code ------------------------------

def _onnx_lstm_step(x, h, c, W, R, B):
    """One step of ONNX's LSTM operator with its default activations and no peepholes: W (4H, D)
    and R (4H, H) stack the gates i, o, f, c; B (8H,) is [Wb, Rb]."""
    H = R.shape[1]
    i, o, f, g = np.split(x @ W.T + h @ R.T + B[:4 * H] + B[4 * H:], 4, axis=1)
    c_new = expit(f) * c + expit(i) * np.tanh(g)
    return expit(o) * np.tanh(c_new), c_new


def _onnx_lstm_unconverted(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """The contract's lstm_cell handed to :func:`_onnx_lstm_step` as it comes: PyTorch's blocks
    i, f, g, o where ONNX reads i, o, f, c."""
    H4 = w_ih.shape[0]
    return _onnx_lstm_step(x, h, c, w_ih, w_hh, np.concatenate([_bias(b_ih, H4), _bias(b_hh, H4)]))


#: TensorFlow 1's gate blocks i, j, f, o (j the candidate) from PyTorch's i, f, g, o.
TF1_FROM_TORCH = (0, 2, 1, 3)


def _tf1_basic_lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, forget_bias=1.0):
    """tf.compat.v1.nn.rnn_cell.BasicLSTMCell's step on weights converted from PyTorch's layout:
    kernel (D + H, 4H) over [x, h] with column blocks i, j, f, o, one bias (4H,);
    c' = c·σ(f + forget_bias) + σ(i)·tanh(j), h' = tanh(c')·σ(o), forget_bias = 1.0 by default."""
    H = w_hh.shape[1]

    def blocks(a):
        return np.concatenate([a[k * H:(k + 1) * H] for k in TF1_FROM_TORCH])

    kernel = np.concatenate([blocks(w_ih).T, blocks(w_hh).T])
    bias = blocks(_bias(b_ih, 4 * H) + _bias(b_hh, 4 * H))
    i, j, f, o = np.split(np.concatenate([x, h], axis=1) @ kernel + bias, 4, axis=1)
    c_new = c * expit(f + forget_bias) + expit(i) * np.tanh(j)
    return np.tanh(c_new) * expit(o), c_new


def _flax_nnx_gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """flax.nnx.GRUCell's step on weights mapped from PyTorch's layout: dense_i, kernel (D, 3H) with
    a bias, and dense_h, kernel (H, 3H) without one, both in the blocks r, z, n. b_hr and b_hz
    fold into dense_i's bias; b_hn has no parameter to go to and is dropped (google/flax#5594)."""
    H = w_hh.shape[1]
    b_h = _bias(b_hh, 3 * H)
    xi_r, xi_z, xi_n = np.split(x @ w_ih.T + _bias(b_ih, 3 * H) + np.r_[b_h[:2 * H], np.zeros(H)],
                                3, axis=1)
    hh_r, hh_z, hh_n = np.split(h @ w_hh.T, 3, axis=1)
    r, z = expit(xi_r + hh_r), expit(xi_z + hh_z)
    n = np.tanh(xi_n + r * hh_n)
    return (1 - z) * n + z * h


def _coreml_gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """CoreML's GRU as apple/coremltools#1124 reports it, on weights converted from PyTorch's
    layout: one bias per gate, b = b_ih + b_hh, and the candidate n = tanh(W_in x + r ⊙ (W_hn h)
    + b_n), its bias outside the reset."""
    H = w_hh.shape[1]
    b = _bias(b_ih, 3 * H) + _bias(b_hh, 3 * H)
    x_r, x_z, x_n = np.split(x @ w_ih.T + b, 3, axis=1)
    h_r, h_z, h_n = np.split(h @ w_hh.T, 3, axis=1)
    r, z = expit(x_r + h_r), expit(x_z + h_z)
    return (1 - z) * np.tanh(x_n + r * h_n) + z * h


def _sklearn_mlp_l2_step(X_B, y_B, w, b, eta, lam):
    """One SGD step of scikit-learn's MLP convention for the seed's linear regression: the loss
    is the batch mean of ½r² plus (alpha/2)·‖w‖²/n_samples with alpha = lam and n_samples the
    batch's rows, so the penalty's gradient lam·w is divided by the sample count with the rest."""
    n_samples = X_B.shape[0]
    r = X_B @ w + b - y_B
    coef_grad = (X_B.T @ r + lam * w) / n_samples
    return w - eta * coef_grad, b - eta * r.sum() / n_samples


# ---- real-world mistakes that have no bug id yet ------------------------------------------------

def _lstm_coupled_gates(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """Seed 003's LSTM under GRU gate names, taken literally: the forget gate used as GRU's update
    gate z and the input gate as 1 − z, C_t = F ⊙ C + (1 − F) ⊙ C̃ (the input gate is unused)."""
    _, F, O, C_tilde = lstm.gates(x, h, lstm.params_from_torch(w_ih, w_hh, b_ih, b_hh))
    C_t = F * c + (1 - F) * C_tilde
    return O * np.tanh(C_t), C_t


def _lstm_without_b_hh(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One bias where PyTorch has two: b_hh is dropped."""
    return lstm.lstm_cell(x, h, c, w_ih, w_hh, b_ih, None)


def _rnn_cell_always_tanh(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """The nonlinearity argument ignored: tanh even where ReLU is asked for."""
    return rnn.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh)


#: The chunk length of :func:`_lstm_layer_chunked_state_reset`.
CHUNK = 64


def _lstm_layer_chunked_state_reset(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """An LSTM layer run in chunks of CHUNK steps that restarts each chunk from (h0, c0) instead
    of the previous chunk's last state: right for T ≤ 64, wrong after."""
    ys, h, c = [], h0, c0
    for t, x_t in enumerate(x):
        if t and t % CHUNK == 0:
            h, c = h0, c0
        h, c = lstm.lstm_cell(x_t, h, c, w_ih, w_hh, b_ih, b_hh)
        ys.append(h)
    return np.stack(ys), h, c


def _sigmoid_derivative_from_input(g, x, alpha=1.0):
    """σ' = α·x(1 − x): the identity σ' = σ(1 − σ) applied to the input (the tanh bug, for σ)."""
    return (g * alpha * x * (1 - x),)


def _softmax_over_first_axis(y):
    """The softmax taken over the leading axis (dim=0) instead of the classes."""
    return np.moveaxis(losses.softmax(np.moveaxis(y, 0, -1)), -1, 0)


def _adam_without_bias_correction(w, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    """Adam with m̂ = m' and v̂ = v': the bias corrections 1/(1 − βᵗ) left out."""
    g = grad + weight_decay * w
    m_new = beta1 * m + (1 - beta1) * g
    v_new = beta2 * v + (1 - beta2) * g * g
    return w - lr * m_new / (np.sqrt(v_new) + eps), m_new, v_new


def _clip_elementwise(grads, max_norm, norm_type=2.0):
    """Every element clipped to [−max_norm, max_norm] (clip_grad_value) where the global norm is
    meant."""
    return stability.clip_grad_value(grads, max_norm), stability.total_norm(grads, norm_type)


def _dropout_fixed_seed(x, p, training, rng):
    """The generator ignored for a fixed seed: every call draws the same mask."""
    return dropout.dropout(x, p, training, np.random.default_rng(0))


def _dropout_mask_per_column(x, p, training, rng):
    """One Bernoulli variable per column, broadcast down the rows (a mask shaped like a bias)."""
    if not training:
        return x.copy()
    keep = rng.random(x.shape[-1:]) < 1.0 - p
    return dropout.inverted(x, np.broadcast_to(keep, x.shape), p)


def _xavier_normal_bound_as_std(shape, gain, rng):
    """σ = gain·√(6/(a + b)), the uniform law's bound, where gain·√(2/(a + b)) is meant."""
    bound = initialisation.xavier_uniform_bound(*initialisation.fans(shape), gain)
    return bound * rng.standard_normal(tuple(shape))


# ---- σ and tanh that leave their range, and approximate ones (spec/activations.md, "Range") -------

_F32 = np.float32


def _sigmoid_unclamped_tanh(x, alpha=1.0):
    """ONNX Runtime's GRU-kernel σ, modelled: ½(1 + t) in float32 with a tanh approximation t whose
    relative error (4u, within tol.elementwise) is not clamped to [−1, 1], so σ(x) = −1.2e-7 for
    x ≲ −17 where 1 + t goes below 0."""
    t = np.tanh(_F32(0.5) * _F32(alpha) * np.asarray(x, _F32)) * _F32(1.0 + 2.0**-22)
    return _F32(0.5) * (_F32(1.0) + t)


def _tanh_above_one(x):
    """ONNX Runtime's float32 tanh, modelled: within 8u of tanh, but 1.0000005 for x > 10 (a
    rational approximation not clamped to [−1, 1])."""
    return np.tanh(np.asarray(x, _F32)) * _F32(1.0 + 2.0**-21)


def _fast_exp(y):
    """exp with 1e-4 relative error that oscillates with the mantissa of y/ln 2, as a low-degree
    polynomial for 2^frac does (the "fast exp" of vectorised math code)."""
    with np.errstate(over="ignore"):
        return np.exp(y) * (1.0 + 1e-4 * np.cos(2.0 * np.pi * (y / np.log(2.0))))


def _sigmoid_fast_exp(x, alpha=1.0):
    """σ(αx) = 1/(1 + fast_exp(−αx)), |error| ≤ 2.5e-5."""
    return 1.0 / (1.0 + _fast_exp(-alpha * np.asarray(x)))


def _sigmoid_piecewise_linear(x, alpha=1.0):
    """PLAN (Amin, Curtis and Hayes-Gill 1997), the piecewise-linear σ of hardware: for z = α|x|,
    ¼z + ½ below 1, ⅛z + 0.625 below 2.375, z/32 + 0.84375 below 5, then 1, mirrored as 1 − y
    for x < 0; within 0.019 of σ. Keras's hard sigmoids are named variants
    (activations.bug.hard_sigmoid_keras2, _keras3); this one is not, so it is an approximation."""
    z = np.abs(alpha * np.asarray(x, dtype=np.float64))
    y = np.select([z < 1.0, z < 2.375, z < 5.0], [0.25 * z + 0.5, 0.125 * z + 0.625,
                                                  0.03125 * z + 0.84375], 1.0)
    return np.where(np.asarray(x) < 0, 1.0 - y, y)


def _tanh_rational(x):
    """tanh by Lambert's continued fraction cut after three terms, x(27 + x²)/(27 + 9x²), clipped
    to [−1, 1]: within 0.02 of tanh."""
    x = np.asarray(x)
    return np.clip(x * (27.0 + x * x) / (27.0 + 9.0 * x * x), -1.0, 1.0)


def _lstm_cell_fast_exp(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """An LSTM cell whose σ is :func:`_sigmoid_fast_exp`."""
    a = x @ w_ih.T + h @ w_hh.T + _bias(b_ih, w_ih.shape[0]) + _bias(b_hh, w_ih.shape[0])
    i, f, g, o = np.split(a, 4, axis=-1)
    c_new = _sigmoid_fast_exp(f) * c + _sigmoid_fast_exp(i) * np.tanh(g)
    return _sigmoid_fast_exp(o) * np.tanh(c_new), c_new


# ---- correct implementations with their own random streams --------------------------------------

def _dropout_keep_prob(x, p, training, rng):
    """dropout.inverted_keep_prob in its own code: keep probability q = 1 − p, ξ ~ Bernoulli(q)
    drawn by rng.binomial (another stream than the reference's), h' = ξ/q·x."""
    if not training:
        return x.copy()
    q = 1.0 - p
    if q == 0.0:
        return np.zeros_like(x)
    ξ = rng.binomial(1, q, size=x.shape)
    return ξ * x / q


def _xavier_uniform_own(shape, gain, rng):
    """U(−a, a), a = gain·√(6/(fan_in + fan_out)), as a·(2U − 1), U ~ U[0, 1)."""
    fan_in, fan_out = initialisation.fans(shape)
    a = gain * np.sqrt(6.0 / (fan_in + fan_out))
    return a * (2.0 * rng.random(tuple(shape)) - 1.0)


def _xavier_normal_own(shape, gain, rng):
    """N(0, σ²), σ = gain·√(2/(fan_in + fan_out)), from rng.normal."""
    fan_in, fan_out = initialisation.fans(shape)
    return rng.normal(0.0, gain * np.sqrt(2.0 / (fan_in + fan_out)), size=tuple(shape))


# ---- the catalogue ------------------------------------------------------------------------------

def _bug(bug_id: str, fn: str, f: Callable[..., Any], only: str, origin: str, *,
         name: str | None = None, named_as: tuple[str, ...] = ()) -> Entry:
    return Entry(name=name or bug_id.split(".bug.")[0] + "_" + bug_id.split(".bug.")[1],
                 kind="bug", functions={fn: f}, only=(only,), origin=origin, exhibits=bug_id,
                 named_as=named_as)


#: What real frameworks compute where the contract's formula is asked (issue 12; spec/gru.md,
#: spec/lstm.md, spec/activations.md, spec/regularisation.md, spec/stability.md): each bug model,
#: and where the framework's step is simple, that step in the framework's own layout.
FRAMEWORK_BUGS: tuple[Entry, ...] = (
    _bug("activations.bug.hard_sigmoid_keras2", "sigmoid", activations.hard_sigmoid_keras2,
         "activations.sigmoid", "Keras 2's hard_sigmoid, 0.2x + 0.5 clipped, for σ"),
    _bug("activations.bug.hard_sigmoid_keras3", "sigmoid", activations.hard_sigmoid_keras3,
         "activations.sigmoid",
         "Keras 3's hard_sigmoid as computed, relu6(x + 3)/6 (tensorflow/tensorflow#65381), for σ"),
    _bug("gru.bug.no_bias_hn", "gru_cell", gru.no_bias_hn, "gru.cell.pytorch",
         "Flax NNX's GRUCell: no b_hn (google/flax#5594)"),
    Entry(name="gru_flax_nnx_layout", kind="bug", functions={"gru_cell": _flax_nnx_gru_cell},
          only=("gru.cell.pytorch",), exhibits="gru.bug.no_bias_hn",
          origin="flax.nnx.GRUCell's step in its own layout (fused bias-free dense_h), PyTorch's "
                 "b_hr, b_hz folded into dense_i's bias and b_hn dropped"),
    Entry(name="gru_coreml_layout", kind="bug", functions={"gru_cell": _coreml_gru_cell},
          only=("gru.cell.pytorch",), exhibits="gru.bug.bias_hn_outside_reset",
          origin="CoreML's GRU (apple/coremltools#1124) in its own code: one bias b_ih + b_hh, "
                 "the candidate's outside the reset"),
    _bug("gru.bug.reset_before_update_flipped", "gru_cell_textbook",
         gru.reset_before_update_flipped, "gru.cell.textbook",
         "PaddlePaddle's gru_unit/dynamic_gru default (origin_mode=False): the seeds' candidate, "
         "the update flipped"),
    _bug("gru.bug.hard_sigmoid_gates_keras2", "gru_cell_textbook", gru.hard_sigmoid_gates_keras2,
         "gru.cell.textbook", "Keras ≤ 2.2's default GRU: reset_after=False, hard_sigmoid gates"),
    _bug("gru.bug.hard_sigmoid_gates_keras3", "gru_cell", gru.hard_sigmoid_gates_keras3,
         "gru.cell.pytorch", "Keras 3's GRU with recurrent_activation='hard_sigmoid'"),
    _bug("lstm.bug.gate_order_onnx", "lstm_cell", lstm.gate_order_onnx, "lstm.cell",
         "gate order mix-up: PyTorch's i, f, g, o read in ONNX's i, o, f, c"),
    Entry(name="lstm_onnx_layout_torch_order", kind="bug",
          functions={"lstm_cell": _onnx_lstm_unconverted}, only=("lstm.cell",),
          exhibits="lstm.bug.gate_order_onnx",
          origin="ONNX's LSTM step in its own code, handed PyTorch's weights unreordered"),
    _bug("lstm.bug.gate_order_tensorflow", "lstm_cell", lstm.gate_order_tensorflow, "lstm.cell",
         "gate order mix-up: PyTorch's i, f, g, o read in TensorFlow 1's i, c, f, o "
         "(BasicLSTMCell's i, j, f, o; LSTMBlockCell's ICFO)"),
    _bug("lstm.bug.gate_order_openvino", "lstm_cell", lstm.gate_order_openvino, "lstm.cell",
         "gate order mix-up: PyTorch's i, f, g, o read in OpenVINO's f, i, c, o"),
    _bug("lstm.bug.forget_bias_every_step", "lstm_cell", lstm.forget_bias_every_step,
         "lstm.cell", "TF 1's forget_bias=1.0 added at every step"),
    Entry(name="lstm_tf1_basic_cell", kind="bug", functions={"lstm_cell": _tf1_basic_lstm_cell},
          only=("lstm.cell",), exhibits="lstm.bug.forget_bias_every_step",
          origin="tf.compat.v1 BasicLSTMCell's step in its own layout (kernel over [x, h], blocks "
                 "i, j, f, o, weights converted right) with its default forget_bias=1.0"),
    _bug("lstm.bug.hard_sigmoid_gates_keras2", "lstm_cell", lstm.hard_sigmoid_gates_keras2,
         "lstm.cell", "Keras ≤ 2.2's default LSTM: hard_sigmoid gates, slope 0.2"),
    _bug("lstm.bug.hard_sigmoid_gates_keras3", "lstm_cell", lstm.hard_sigmoid_gates_keras3,
         "lstm.cell", "Keras 3's LSTM with recurrent_activation='hard_sigmoid', slope 1/6"),
    _bug("regularisation.bug.adamw_decay_not_scaled_by_lr", "adamw_step",
         regularisation.adamw_decay_not_scaled_by_lr, "regularisation.adamw",
         "TensorFlow Addons' AdamW: decay by weight_decay, not lr·weight_decay "
         "(tensorflow/addons#2282)"),
)

BUGS: tuple[Entry, ...] = (
    _bug("activations.bug.sigmoid_overflow", "sigmoid", activations.sigmoid_overflow,
         "activations.sigmoid", "exp(x)/(1 + exp(x)) written as on paper"),
    _bug("activations.bug.softplus_naive", "softplus", activations.softplus_naive,
         "activations.softplus", "log(1 + exp(x)) written as on paper"),
    _bug("activations.bug.tanh_derivative_from_input", "vjp_tanh",
         activations.tanh_derivative_from_input, "activations.tanh",
         "f' = 1 − f² (seed 003) applied to the input"),
    _bug("dropout.bug.no_rescale", "dropout", dropout.no_rescale, "dropout.inverted",
         "dropout without rescaling (the original, non-inverted dropout at training time)"),
    _bug("dropout.bug.active_in_eval", "dropout", dropout.active_in_eval, "dropout.inverted",
         "dropout active in evaluation mode (model.eval() forgotten)"),
    _bug("dropout.bug.keep_prob_as_drop_prob", "dropout", dropout.keep_prob_as_drop_prob,
         "dropout.inverted", "TF 1's keep_prob passed where a drop probability is meant"),
    _bug("dropout.bug.scale_by_p", "dropout", dropout.scale_by_p, "dropout.inverted",
         "the survivors divided by p instead of 1 − p"),
    _bug("gru.bug.gate_order_zrn", "gru_cell", gru.gate_order_zrn, "gru.cell.pytorch",
         "gate order mix-up: PyTorch's r, z, n read in ONNX's z, r, n order"),
    Entry(name="gru_keras_layout_torch_order", kind="bug",
          functions=_keras_gru(order=(0, 1, 2)), only=("gru.cell.pytorch", "gru.layer"),
          origin="PyTorch weights transposed into Keras's layout without reordering the blocks "
                 "(Keras reads z, r, h)",
          exhibits="gru.bug.gate_order_zrn"),
    _bug("gru.bug.reset_on_input", "gru_cell", gru.reset_on_input, "gru.cell.pytorch",
         "the reset gate applied to the input projection"),
    _bug("gru.bug.bias_hn_outside_reset", "gru_cell", gru.bias_hn_outside_reset,
         "gru.cell.pytorch", "misplaced bias: b_ih and b_hh merged, so b_hn escapes r ⊙ (·)"),
    _bug("initialisation.bug.xavier_fan_in_only", "xavier_uniform",
         initialisation.xavier_fan_in_only, "initialisation.xavier_uniform",
         "Xavier from fan-in only (Caffe's 'xavier' filler)"),
    _bug("initialisation.bug.xavier_variance_as_bound", "xavier_uniform",
         initialisation.xavier_variance_as_bound, "initialisation.xavier_uniform",
         "Xavier with the variance 2/(a + b) used as the bound"),
    _bug("linear.bug.no_bias", "linear", linear.no_bias, "linear.affine", "missing bias"),
    _bug("losses.bug.softmax_no_shift", "softmax", losses.softmax_no_shift, "losses.softmax",
         "softmax without the max shift"),
    _bug("losses.bug.softmax_hidden_activation", "rnn_cell", _softmax_state_rnn_cell, "rnn.cell",
         "seed 002 ④: softmax as the hidden activation, written for one sample; the contract's "
         "rnn_cell exhibits it as its twin rnn.bug.softmax_hidden",
         named_as=("rnn.bug.softmax_hidden",)),
    _bug("losses.bug.log_of_softmax", "log_softmax", losses.log_of_softmax, "losses.log_softmax",
         "log(softmax(y)) instead of y − logsumexp(y)"),
    _bug("losses.bug.sum_instead_of_mean", "cross_entropy", losses.sum_instead_of_mean,
         "losses.sequence_mean", "sum over time (seed 002 ⑦) where the mean (seed 001) is meant"),
    _bug("lstm.bug.no_tanh_on_cell", "lstm_cell", lstm.no_tanh_on_cell, "lstm.cell",
         "seed 002 ⑰: h = o ⊙ c without tanh"),
    _bug("lstm.bug.ungated_hidden", "lstm_cell", lstm.ungated_hidden, "lstm.cell",
         "seed 002 ⑰: h = tanh(c), the output gate left out"),
    _bug("lstm.bug.gate_order_ifog", "lstm_cell", lstm.gate_order_ifog, "lstm.cell",
         "gate order mix-up: i, f, g, o read as i, f, o, g"),
    _bug("lstm.bug.concat_order", "lstm_cell", _concatenated_lstm(lstm.concat_order), "lstm.cell",
         "concatenation order: weights for [h, x] (seed 002) applied to [x, h] (seed 004)"),
    _bug("regularisation.bug.decay_bias", "sgd_step_seed000", regularisation.decay_bias,
         "regularisation.sgd_step.seed000",
         "weight decay applied to the bias too (every parameter handed to one weight_decay)"),
    _bug("regularisation.bug.lambda_not_divided", "sgd_step_seed000",
         regularisation.lambda_not_divided, "regularisation.sgd_step.seed000",
         "the seed's λ passed as weight_decay instead of λ/|B|", named_as=(
             "regularisation.bug.lambda_not_divided", "regularisation.sgd_step.textbook")),
    _bug("regularisation.bug.decay_sign", "sgd_step", regularisation.sgd_step_decay_sign,
         "regularisation.sgd_step.torch", "the decay's sign slipped: the weights grow"),
    _bug("regularisation.bug.adam_l2_as_adamw", "adamw_step", regularisation.adam_l2_as_adamw,
         "regularisation.adamw", "torch.optim.Adam(weight_decay=λ) taken for AdamW"),
    _bug("rnn.bug.softmax_hidden", "rnn_cell", rnn.softmax_hidden, "rnn.cell",
         "seed 002 ④: softmax as the hidden activation"),
    _bug("rnn.bug.missing_nonlinearity", "rnn_cell", rnn.missing_nonlinearity, "rnn.cell",
         "seed 004 §1: no nonlinearity on the hidden state"),
    _bug("rnn.bug.time_reversed", "rnn_layer", rnn.time_reversed, "rnn.layer",
         "the sequence consumed backwards"),
    _bug("sequence.bug.bidirectional_not_reversed", "rnn_module",
         sequence.bidirectional_not_reversed, "sequence.bidirectional",
         "the backward direction fed x_1 … x_T: bidirectional=True without the reversal"),
    _bug("sequence.bug.bidirectional_concat_order", "rnn_module",
         sequence.bidirectional_concat_order, "sequence.bidirectional",
         "concatenation order: [←h_t; →h_t] where PyTorch puts the forward features first"),
    _bug("sequence.bug.packed_padding_leaks", "rnn_module", sequence.packed_padding_leaks,
         "sequence.packed", "a padded batch run without its lengths: padding steps processed"),
    _bug("sequence.bug.dropout_in_eval", "rnn_module", sequence.dropout_in_eval,
         "sequence.inter_layer_dropout", "nn.RNN's dropout active in evaluation mode"),
    _bug("sequence.bug.dropout_after_last_layer", "rnn_module",
         sequence.dropout_after_last_layer, "sequence.inter_layer_dropout",
         "dropout after the last layer too (nn.RNN drops only between layers)"),
    _bug("stability.bug.clip_per_tensor", "clip_grad_norm", stability.clip_per_tensor,
         "stability.clip_grad_norm", "clipping per tensor instead of by the global norm (tf.keras "
         "optimisers' clipnorm: keras-team/keras#13575)"),
    _bug("stability.bug.clip_no_eps", "clip_grad_norm", stability.clip_no_eps,
         "stability.clip_grad_norm", "max_norm/total without torch's ε"),
    _bug("stability.bug.clip_always_scales", "clip_grad_norm", stability.clip_always_scales,
         "stability.clip_grad_norm", "min(·, 1) forgotten: small gradients scaled up"),
    *FRAMEWORK_BUGS,
)

VARIANTS: tuple[Entry, ...] = (
    Entry(name="gru_textbook_as_pytorch", kind="variant",
          functions={"gru_cell": gru.gru_cell_textbook}, only=("gru.cell.pytorch",),
          origin="d2l's trap: the seeds' GRU (reset before the matmul) where PyTorch's is asked",
          exhibits="gru.cell.textbook"),
    Entry(name="gru_keras_reset_before", kind="variant",
          functions=_keras_gru(reset_after=False), only=("gru.cell.pytorch", "gru.layer"),
          origin="a NumPy GRU in Keras's layout with reset_after=False (Keras 2's default)",
          exhibits="gru.cell.textbook"),
    Entry(name="gru_update_flipped", kind="variant",
          functions={"gru_cell": gru.gru_cell_flipped}, only=("gru.cell.pytorch",),
          origin="h' = z ⊙ n + (1 − z) ⊙ h: the update gate's roles swapped (Cho et al. vs d2l)",
          exhibits="gru.update.flipped"),
    Entry(name="adamw_as_adam", kind="variant",
          functions={"adam_step": regularisation.adamw_step}, only=("regularisation.adam_l2",),
          origin="AdamW's decoupled decay where Adam's L2 term is asked",
          exhibits="regularisation.adamw"),
)

MISTAKES: tuple[Entry, ...] = (
    Entry(name="lstm_coupled_gates", kind="mistake", functions={"lstm_cell": _lstm_coupled_gates},
          only=("lstm.cell",), origin="seed 003: an LSTM's gates under GRU names (r_t, z_t), "
                                      "the update gate's 1 − z taken for the input gate"),
    Entry(name="lstm_layer_chunked_state_reset", kind="mistake",
          functions={"lstm_layer": _lstm_layer_chunked_state_reset}, only=("lstm.layer",),
          origin="a layer run in chunks of 64 steps that restarts the state at every chunk "
                 "(truncated BPTT's detach mistaken for a reset)"),
    Entry(name="lstm_without_b_hh", kind="mistake", functions={"lstm_cell": _lstm_without_b_hh},
          only=("lstm.cell",), origin="missing bias: b_hh dropped"),
    Entry(name="rnn_always_tanh", kind="mistake", functions={"rnn_cell": _rnn_cell_always_tanh},
          only=("rnn.cell",), origin="nonlinearity='relu' ignored"),
    Entry(name="sigmoid_derivative_from_input", kind="mistake",
          functions={"vjp_sigmoid": _sigmoid_derivative_from_input}, only=("activations.sigmoid",),
          origin="σ' = σ(1 − σ) applied to the input"),
    Entry(name="softmax_over_first_axis", kind="mistake",
          functions={"softmax": _softmax_over_first_axis}, only=("losses.softmax",),
          origin="softmax(dim=0) over the batch instead of the classes"),
    Entry(name="adam_without_bias_correction", kind="mistake",
          functions={"adam_step": _adam_without_bias_correction}, only=("regularisation.adam_l2",),
          origin="Adam without the bias corrections 1/(1 − βᵗ)"),
    Entry(name="clip_elementwise", kind="mistake", functions={"clip_grad_norm": _clip_elementwise},
          only=("stability.clip_grad_norm",), origin="clipping by value where the norm is meant"),
    Entry(name="dropout_fixed_seed", kind="mistake", functions={"dropout": _dropout_fixed_seed},
          only=("dropout.inverted",), origin="the generator ignored: the same mask every call"),
    Entry(name="dropout_mask_per_column", kind="mistake",
          functions={"dropout": _dropout_mask_per_column}, only=("dropout.inverted",),
          origin="one mask value per feature, shared by every row of the batch"),
    Entry(name="sigmoid_outside_unit_interval", kind="mistake",
          functions={"sigmoid": _sigmoid_unclamped_tanh}, only=("activations.sigmoid",),
          dtype=np.float32, origin="ONNX Runtime's GRU kernel: σ = −2.4e-7 for x < −20 (float32)"),
    Entry(name="tanh_above_one", kind="mistake", functions={"tanh": _tanh_above_one},
          only=("activations.tanh",), dtype=np.float32,
          origin="ONNX Runtime's float32 tanh: 1.0000005 for x > 10"),
    Entry(name="sigmoid_fast_exp", kind="mistake", functions={"sigmoid": _sigmoid_fast_exp},
          only=("activations.sigmoid",), origin="σ through a fast exp with 1e-4 relative error"),
    Entry(name="sigmoid_piecewise_linear", kind="mistake", functions={"sigmoid": _sigmoid_piecewise_linear},
          only=("activations.sigmoid",),
          origin="a piecewise-linear σ (PLAN, four segments per side), for σ"),
    Entry(name="tanh_rational", kind="mistake", functions={"tanh": _tanh_rational},
          only=("activations.tanh",), origin="tanh by a rational approximation, clipped"),
    Entry(name="lstm_fast_exp_sigmoid", kind="mistake", functions={"lstm_cell": _lstm_cell_fast_exp},
          only=("lstm.cell",), origin="an LSTM cell whose gates use a fast-exp σ"),
    Entry(name="xavier_normal_bound_as_std", kind="mistake",
          functions={"xavier_normal": _xavier_normal_bound_as_std},
          only=("initialisation.xavier_normal",),
          origin="Xavier normal with the uniform law's bound √(6/(a + b)) as σ"),
)


def _reference_functions(*names: str) -> dict[str, Callable[..., Any]]:
    from nnspec.implementations import reference

    return {fn: getattr(reference, fn) for fn in names}


CORRECT: tuple[Entry, ...] = (
    Entry(name="reference", kind="correct",
          functions=_reference_functions("lstm_cell", "gru_cell", "dropout", "xavier_uniform",
                                         "clip_grad_norm"),
          only=("lstm.cell", "gru.cell.pytorch", "dropout.inverted",
                "initialisation.xavier_uniform", "stability.clip_grad_norm"),
          origin="the reference itself, through the contract"),
    Entry(name="lstm_concatenated", kind="correct",
          functions={"lstm_cell": _concatenated_lstm(lstm.cell_concatenated)}, only=("lstm.cell",),
          origin="seeds 002/004's concatenated LSTM, W_k (h, h + d) over [h, x]"),
    Entry(name="gru_keras_layout", kind="correct", functions=_keras_gru(),
          only=("gru.cell.pytorch", "gru.layer"),
          origin="a NumPy GRU in Keras's layout (kernel (D, 3H), blocks z, r, h, "
                 "reset_after=True)"),
    Entry(name="gru_keras_layout_float32", kind="correct", functions=_keras_gru(),
          only=("gru.cell.pytorch", "gru.layer"), dtype=np.float32,
          origin="the same Keras-layout GRU computing in float32"),
    Entry(name="sklearn_mlp_l2", kind="correct",
          functions={"sgd_step_seed000": _sklearn_mlp_l2_step},
          only=("regularisation.sgd_step.seed000",),
          origin="scikit-learn MLP's L2 convention, alpha·‖w‖²/(2·n_samples) on the batch "
                 "(scikit-learn#10477): the seed's step"),
    Entry(name="softplus_torch_threshold", kind="correct",
          functions={"softplus": activations.softplus_torch_threshold},
          only=("activations.softplus",), origin="softplus with torch's linear tail above 20"),
    Entry(name="own_random_streams", kind="correct",
          functions={"dropout": _dropout_keep_prob, "xavier_uniform": _xavier_uniform_own,
                     "xavier_normal": _xavier_normal_own},
          only=("dropout.inverted", "initialisation.xavier_uniform",
                "initialisation.xavier_normal"),
          origin="dropout in the keep-probability form and Xavier initialisers drawing their "
                 "own random streams"),
)

#: Bug ids of the spec that no implementation under test can exhibit, and why.
UNREACHABLE: dict[str, str] = {
    "decay.bug.eigenvalue_bound":
        "a claim about gradient norms (ρ(W)^k read as a bound), not a function an implementation "
        "computes; checks/test_decay.py shows a non-normal W exceeding it",
    "regularisation.bug.ridge_lambda_over_n":
        "regularisation.ridge is checked on the reference only, the contract has no ridge solver; "
        "checks/test_regularisation.py shows the bug's model is not the minimiser",
    "model_selection.bug.kfold_drops_remainder":
        "model_selection.kfold is checked on the reference only: the contract has no fold splitter",
    "model_selection.bug.validation_leak":
        "model_selection.kfold_error is checked on the reference only: the contract has no "
        "cross-validation",
}

ENTRIES: tuple[Entry, ...] = BUGS + VARIANTS + MISTAKES + CORRECT
