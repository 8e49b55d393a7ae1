"""The corpus of correct alternatives: implementations that compute a formula of the spec another
legitimate way, and so must pass every run.

The catalogue (checks/oracle/catalogue.py) holds implementations that are wrong on purpose; this
corpus is its counterpart for false alarms. Each entry computes some formula differently from the
reference — another algebraic form, another evaluation order, another precision, another
framework — in a way that a conforming library may and real libraries do. A failure of an entry is
a false alarm of the oracle (or a bug in the entry, which is fixed here), never a tolerance to
loosen by hand.

Entries are :class:`Alternative` objects, catalogue entries of kind *correct* with the reason they
are legitimate. NumPy entries carry their functions; framework-backed ones name a module of
``nnspec/implementations`` (ONNX's reference evaluator, ONNX Runtime, Flax, torch modules through
:mod:`nnspec.adapters`), which raises ``ImplementationUnavailable`` on import when its package is
absent. checks/meta/test_alternatives.py runs the oracle on every entry; :func:`nnspec.selftest.
alternatives` gives the pass rate for the report, beside the catalogue's own correct entries
(``catalogue.CORRECT``: other parametrisations and random streams), which stay there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from scipy.special import expit, logsumexp

from nnspec.checks.oracle.catalogue import Entry


@dataclass(frozen=True)
class Alternative(Entry):
    """A correct alternative: a catalogue :class:`Entry` of kind *correct* (``origin`` names the
    formula it computes differently) with ``legitimate``, why a conforming implementation may
    compute it so, and, for a framework-backed entry, ``implementation``, the module path to
    import instead of ``functions``."""

    legitimate: str = ""
    implementation: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind != "correct" or not self.legitimate:
            raise ValueError(f"alternative {self.name}: kind must be 'correct' and legitimate "
                             f"must say why")
        if bool(self.functions) == (self.implementation is not None):
            raise ValueError(f"alternative {self.name}: give functions or implementation, "
                             f"not both")

    def module(self) -> ModuleType:
        """The module to check: built from ``functions``, or ``implementation`` imported (which
        raises ImplementationUnavailable when its framework is absent)."""
        if self.implementation is None:
            return super().module()
        return importlib.import_module(self.implementation)


def _or_zeros(b: np.ndarray | None, like: np.ndarray) -> np.ndarray:
    return np.zeros(like.shape[0], like.dtype) if b is None else b


# ---- σ three other ways ----------------------------------------------------------------------

def _sigmoid_tanh(x, alpha=1.0):
    """σ(αx) = ½(1 + tanh(αx/2))."""
    return 0.5 * (1.0 + np.tanh(0.5 * (alpha * x)))


def _vjp_sigmoid_tanh(g, x, alpha=1.0):
    """∂x = g·α σ(αx) σ(−αx), both factors in the tanh form."""
    return (g * alpha * _sigmoid_tanh(x, alpha) * _sigmoid_tanh(-x, alpha),)


def _sigmoid_expit(x, alpha=1.0):
    """σ(αx) by scipy.special.expit."""
    return expit(alpha * x)


def _vjp_sigmoid_expit(g, x, alpha=1.0):
    """∂x = g·α expit(αx) expit(−αx)."""
    return (g * alpha * expit(alpha * x) * expit(-alpha * x),)


def _sigmoid_exp_minus_abs(x, alpha=1.0):
    """σ(z) = where(z ≥ 0, 1, e)/(1 + e), e = exp(−|z|): one exponential, no branch, no overflow."""
    z = alpha * x
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def _vjp_sigmoid_exp_minus_abs(g, x, alpha=1.0):
    """σ'(z) = e/(1 + e)², e = exp(−|z|): σ(1 − σ) is even in z."""
    e = np.exp(-np.abs(alpha * x))
    return (g * alpha * e / (1.0 + e) ** 2,)


def _tanh_via_sigmoid(x):
    """tanh(x) = 2σ(2x) − 1, σ by expit."""
    return 2.0 * expit(2.0 * x) - 1.0


def _vjp_tanh_via_sigmoid(g, x):
    """∂x = g·(1 − t²), t = 2σ(2x) − 1; written 4σ(2x)σ(−2x) to keep it from cancelling."""
    return (g * 4.0 * expit(2.0 * x) * expit(-2.0 * x),)


# ---- softplus as max(x, 0) + log1p(exp(−|x|)) ------------------------------------------------

def _softplus_log1p(x):
    """log(1 + eˣ) = max(x, 0) + log1p(exp(−|x|)) (TensorFlow's and JAX's stable form)."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _vjp_softplus_expit(g, x):
    """softplus' = σ."""
    return (g * expit(x),)


# ---- log-softmax through logsumexp, cross-entropy through it ---------------------------------

def _log_softmax_logsumexp(x):
    """log ŷ = x − scipy.special.logsumexp(x) over the last axis."""
    return x - logsumexp(x, axis=-1, keepdims=True)


def _nll(logits, target):
    """−log ŷ_k per position, picked from the log-softmax."""
    picked = np.take_along_axis(_log_softmax_logsumexp(logits), np.asarray(target)[..., None], axis=-1)
    return -picked[..., 0]


def _cross_entropy_logsumexp(logits, target):
    return np.mean(_nll(logits, target))


def _cross_entropy_sum_logsumexp(logits, target):
    return np.sum(_nll(logits, target))


def _vjp_cross_entropy_logsumexp(g, logits, target):
    """∂logits = g·(exp(log ŷ) − onehot(k))/N, N the number of positions."""
    onehot = np.asarray(target)[..., None] == np.arange(logits.shape[-1])
    n = max(int(np.prod(np.shape(target))), 1)
    return (g * (np.exp(_log_softmax_logsumexp(logits)) - onehot) / n,)


# ---- the recurrent cells: einsum over the stacked gates, or one matmul per gate --------------

def _blocks(a: np.ndarray, count: int) -> list[np.ndarray]:
    return np.split(a, count, axis=-1)


def _einsum_preactivations(x, h, w_ih, w_hh, b_ih, b_hh, count):
    """(x w_ihᵀ + b_ih, h w_hhᵀ + b_hh) by einsum, split into the ``count`` gate blocks."""
    gi = np.einsum("bd,gd->bg", x, w_ih) + _or_zeros(b_ih, w_ih)
    gh = np.einsum("bk,gk->bg", h, w_hh) + _or_zeros(b_hh, w_hh)
    return _blocks(gi, count), _blocks(gh, count)


def _per_gate_preactivations(x, h, w_ih, w_hh, b_ih, b_hh, count):
    """The same, one matmul per gate block of rows: x W_ikᵀ + b_ik and h W_hkᵀ + b_hk for each k."""
    b_i, b_h = _or_zeros(b_ih, w_ih), _or_zeros(b_hh, w_hh)
    W_i, W_h = np.split(w_ih, count), np.split(w_hh, count)
    B_i, B_h = np.split(b_i, count), np.split(b_h, count)
    return ([x @ W.T + b for W, b in zip(W_i, B_i, strict=True)],
            [h @ W.T + b for W, b in zip(W_h, B_h, strict=True)])


Preactivations = Callable[..., tuple[list[np.ndarray], list[np.ndarray]]]


def _cells(pre: Preactivations, sigmoid: Callable[[np.ndarray], np.ndarray] = expit,
           gru_mix: str = "convex") -> dict[str, Callable[..., Any]]:
    """rnn_cell, gru_cell, lstm_cell and their layers from a way of forming the pre-activations,
    a σ, and the GRU's final mix: "convex" h' = (1 − z) n + z h, or "interpolation" h' = n +
    z (h − n)."""

    def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        (a_i,), (a_h,) = pre(x, h, w_ih, w_hh, b_ih, b_hh, 1)
        return np.tanh(a_i + a_h) if nonlinearity == "tanh" else np.maximum(a_i + a_h, 0.0)

    def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        (i_r, i_z, i_n), (h_r, h_z, h_n) = pre(x, h, w_ih, w_hh, b_ih, b_hh, 3)
        r = sigmoid(i_r + h_r)
        z = sigmoid(i_z + h_z)
        n = np.tanh(i_n + r * h_n)
        return n + z * (h - n) if gru_mix == "interpolation" else (1 - z) * n + z * h

    def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
        (a_i, a_f, a_g, a_o), (h_i, h_f, h_g, h_o) = pre(x, h, w_ih, w_hh, b_ih, b_hh, 4)
        i, f, o = sigmoid(a_i + h_i), sigmoid(a_f + h_f), sigmoid(a_o + h_o)
        c_new = f * c + i * np.tanh(a_g + h_g)
        return o * np.tanh(c_new), c_new

    def over_time(step, x, states):
        ys = []
        for x_t in x:
            out = step(x_t, *states)
            states = out if isinstance(out, tuple) else (out,)
            ys.append(states[0])
        y = np.stack(ys) if ys else np.zeros((0, *states[0].shape), states[0].dtype)
        return (y, *states)

    def rnn_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        return over_time(lambda x_t, h: rnn_cell(x_t, h, w_ih, w_hh, b_ih, b_hh, nonlinearity),
                         x, (h0,))

    def gru_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
        return over_time(lambda x_t, h: gru_cell(x_t, h, w_ih, w_hh, b_ih, b_hh), x, (h0,))

    def lstm_layer(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
        return over_time(lambda x_t, h, c: lstm_cell(x_t, h, c, w_ih, w_hh, b_ih, b_hh), x,
                         (h0, c0))

    return {"rnn_cell": rnn_cell, "gru_cell": gru_cell, "lstm_cell": lstm_cell,
            "rnn_layer": rnn_layer, "gru_layer": gru_layer, "lstm_layer": lstm_layer}


def _only(functions: dict[str, Callable[..., Any]], *names: str) -> dict[str, Callable[..., Any]]:
    return {n: functions[n] for n in names}


def _linear_rowwise(x, w, b=None):
    """y = w x per row, as a stack of matrix-vector products (w @ x[..., None]), x (…, in)."""
    y = (w @ x[..., None])[..., 0]
    return y if b is None else y + b


def _vjp_linear_einsum(g, x, w, b=None):
    """∂x = g w, ∂w = Σ gᵀ x, ∂b = Σ g over every leading axis (flattened into one), by einsum."""
    rows_g, rows_x = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
    return (np.einsum("...o,oi->...i", g, w), np.einsum("bo,bi->oi", rows_g, rows_x),
            None if b is None else np.einsum("bo->o", rows_g))


# ---- the corpus --------------------------------------------------------------------------------

CELL_IDS = ("rnn.cell", "gru.cell.pytorch", "lstm.cell", "rnn.layer", "gru.layer", "lstm.layer")

NUMPY: tuple[Alternative, ...] = (
    Alternative(name="sigmoid_tanh_form", kind="correct", only=("activations.sigmoid",),
                functions={"sigmoid": _sigmoid_tanh, "vjp_sigmoid": _vjp_sigmoid_tanh},
                origin="σ(x) = ½(1 + tanh(x/2)) in float64",
                legitimate="an exact identity of σ; with a tanh accurate to a few ulp it is accurate "
                           "to a few ulp absolute (not relative: ½(1 + t) cancels where σ is tiny)"),
    Alternative(name="sigmoid_expit", kind="correct", only=("activations.sigmoid",),
                functions={"sigmoid": _sigmoid_expit, "vjp_sigmoid": _vjp_sigmoid_expit},
                origin="σ by scipy.special.expit",
                legitimate="SciPy's logistic function, a library σ"),
    Alternative(name="sigmoid_exp_minus_abs", kind="correct", only=("activations.sigmoid",),
                functions={"sigmoid": _sigmoid_exp_minus_abs,
                           "vjp_sigmoid": _vjp_sigmoid_exp_minus_abs},
                origin="σ(z) = where(z ≥ 0, 1, e)/(1 + e), e = exp(−|z|), branch-free; "
                       "σ' = e/(1 + e)²",
                legitimate="the same stable split as the reference written with one exponential "
                           "and a select; σ(1 − σ) = e/(1 + e)² for either sign of z"),
    Alternative(name="tanh_via_sigmoid", kind="correct", only=("activations.tanh",),
                functions={"tanh": _tanh_via_sigmoid, "vjp_tanh": _vjp_tanh_via_sigmoid},
                origin="tanh(x) = 2σ(2x) − 1; tanh' = 4σ(2x)σ(−2x)",
                legitimate="an exact identity of tanh, how libraries with only a fast σ kernel "
                           "compute it; 2s − 1 cancels near 0, so its error is a few u absolutely "
                           "(spec/tolerances.md)"),
    Alternative(name="softplus_log1p", kind="correct", only=("activations.softplus",),
                functions={"softplus": _softplus_log1p, "vjp_softplus": _vjp_softplus_expit},
                origin="softplus(x) = max(x, 0) + log1p(exp(−|x|)); softplus' = expit",
                legitimate="an exact identity of log(1 + eˣ), the stable form of JAX's "
                           "logaddexp(x, 0)"),
    Alternative(name="log_softmax_logsumexp", kind="correct",
                only=("losses.log_softmax", "losses.cross_entropy", "losses.sequence_mean",
                      "losses.sequence_sum"),
                functions={"log_softmax": _log_softmax_logsumexp,
                           "cross_entropy": _cross_entropy_logsumexp,
                           "cross_entropy_sum": _cross_entropy_sum_logsumexp,
                           "vjp_cross_entropy": _vjp_cross_entropy_logsumexp},
                origin="log ŷ = y − scipy.special.logsumexp(y); cross-entropy −log ŷ_k picked "
                       "from it; its gradient (exp(log ŷ) − onehot)/N",
                legitimate="the definition of log-softmax with SciPy's shifted logsumexp; "
                           "cross-entropy as torch's nll_loss(log_softmax) composes it"),
    Alternative(name="linear_rowwise", kind="correct", only=("linear.affine",),
                functions={"linear": _linear_rowwise, "vjp_linear": _vjp_linear_einsum},
                origin="y = w x + b row by row (matrix-vector products); gradients by einsum",
                legitimate="the same sums of products in another memory order"),
    Alternative(name="cells_einsum", kind="correct", only=CELL_IDS, functions=_cells(
                    _einsum_preactivations),
                origin="every recurrent cell's pre-activations by einsum over the stacked gate "
                       "blocks, split afterwards",
                legitimate="the same matrix products, another contraction routine and order"),
    Alternative(name="cells_per_gate_matmul", kind="correct", only=CELL_IDS, functions=_cells(
                    _per_gate_preactivations),
                origin="one matmul per gate block (x W_ikᵀ + b_ik, h W_hkᵀ + b_hk for each k)",
                legitimate="the block rows of the stacked product, computed block by block as "
                           "d2l's from-scratch cells do (W_xr, W_hr, …)"),
    Alternative(name="gru_interpolation", kind="correct", only=("gru.cell.pytorch", "gru.layer"),
                functions=_only(_cells(_einsum_preactivations, gru_mix="interpolation"),
                                "gru_cell", "gru_layer"),
                origin="GRU h' = n + z ⊙ (h − n)",
                legitimate="algebraically (1 − z) ⊙ n + z ⊙ h, with one multiplication fewer"),
    Alternative(name="gated_cells_tanh_form_sigmoid", kind="correct",
                only=("gru.cell.pytorch", "lstm.cell", "gru.layer", "lstm.layer"),
                functions=_only(_cells(_per_gate_preactivations, sigmoid=_sigmoid_tanh),
                                "gru_cell", "lstm_cell", "gru_layer", "lstm_layer"),
                origin="GRU and LSTM gates through σ(x) = ½(1 + tanh(x/2)) in float64",
                legitimate="an exact identity of σ inside the gates; absolute error of a few ulp"),
    Alternative(name="float32_tanh_form_sigmoid", kind="correct", dtype=np.float32,
                only=("activations.sigmoid", *CELL_IDS),
                functions={"sigmoid": _sigmoid_tanh, "vjp_sigmoid": _vjp_sigmoid_tanh,
                           **_cells(_einsum_preactivations, sigmoid=_sigmoid_tanh)},
                origin="DTYPE float32, σ(x) = ½(1 + tanh(x/2)), cells by einsum",
                legitimate="what a float32 framework with a tanh-form σ computes; it declares "
                           "float32, so it is held to float32 bounds"),
)

FRAMEWORKS: tuple[Alternative, ...] = (
    Alternative(name="onnx_reference", kind="correct", functions={},
                implementation="nnspec.implementations.onnx_reference",
                only=("activations.sigmoid", "activations.tanh", "losses.softmax", *CELL_IDS,
                      "gru.cell.textbook"),
                origin="ONNX's GRU (linear_before_reset=1, and 0 as gru_cell_textbook; gates z, r, "
                       "h), LSTM (gates i, o, f, c) and RNN operators, and Sigmoid, Tanh, "
                       "Softmax, in float64 graphs run by "
                       "onnx.reference.ReferenceEvaluator (its LogSoftmax, log(Softmax(X)), is "
                       "losses.bug.log_of_softmax and is left out)",
                legitimate="ONNX's definition of the operators; PyTorch's weights mapped block by "
                           "block onto ONNX's layout"),
    Alternative(name="onnx_runtime", kind="correct", functions={},
                implementation="nnspec.implementations.onnx_runtime", dtype=np.float32,
                only=("losses.softmax", "losses.log_softmax", *CELL_IDS, "gru.cell.textbook"),
                origin="the same ONNX graphs (and LogSoftmax) in float32 run by ONNX Runtime's CPU "
                       "kernels; its standalone Sigmoid and Tanh are left out: they return "
                       "1.0000001 and −1.0000001, outside σ's and tanh's ranges, which the spec "
                       "does not allow (activations.sigmoid, activations.tanh fail by name)",
                legitimate="a production runtime's float32 kernels, declaring float32"),
    Alternative(name="flax_cells", kind="correct", functions={},
                implementation="nnspec.implementations.flax_cells",
                only=("rnn.cell", "gru.cell.pytorch", "lstm.cell"),
                origin="flax.linen's SimpleCell, GRUCell and LSTMCell in float64 (jax_enable_x64), "
                       "gradients by jax.vjp",
                legitimate="Flax's cells compute PyTorch's formulas with the input and recurrent "
                           "biases of a gate summed into one (b_ir + b_hr …), which is exact "
                           "algebra; only b_hn stays apart, as Flax keeps it inside r ⊙ (·)"),
    Alternative(name="torch_modules", kind="correct", functions={},
                implementation="nnspec.implementations.torch_modules",
                only=("rnn.cell", "gru.cell.pytorch", "lstm.cell"),
                origin="torch.nn.RNNCell, GRUCell and LSTMCell wrapped by nnspec.adapters."
                       "from_torch_cell in float64, gradients by autograd",
                legitimate="PyTorch's own modules, through the adapters a user would write"),
)

CORPUS: tuple[Alternative, ...] = NUMPY + FRAMEWORKS
