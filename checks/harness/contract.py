"""The implementation-under-test contract: the functions a module may define, as typed stubs.

An implementation under test is an importable module of plain functions on NumPy arrays in
PyTorch's layout (weights ``(gates·H, in)``, gate blocks r, z, n for the GRU and i, f, g, o for
the LSTM, biases ``b_ih``/``b_hh`` with ``None`` meaning no bias, sequences ``(T, B, features)``,
states ``(B, H)``). It defines ``DTYPE`` and any subset of the functions below, with their
parameter names, order and defaults; a function it does not define, or one that raises
``NotImplementedError``, is reported as *not provided*. Its functions must return: a call that
raises, ends the process (``sys.exit``, ``os._exit``, a crash) or takes longer than the per-call
time limit fails, naming the function (checks/harness/isolation.py). They must treat their
arguments as read-only: a function that writes into one fails, naming the argument
(checks/harness/mutation.py). A random generator argument is the exception: it is meant to advance.

Each stub is the function's whole contract, and has no body but its docstring: its signature
(names, order, defaults and types), its outputs (a :class:`typing.NamedTuple` for a tuple,
``Annotated[type, "name", ...]`` otherwise; an implementation returns plain tuples) and, as the
docstring's first paragraph, what it computes. Everything else is derived from the stubs:
:data:`CORE`, :data:`EXTENSIONS` and :data:`ALL` (name → one-line signature text, ``name[]`` for
a list output), :func:`signature`, :func:`parameters`, :func:`arguments`, :func:`outputs` and
:func:`returns`.

``CORE`` is the published contract of the foundation issue and never changes. ``EXTENSIONS`` are
added beside it (activations, gradients as vector-Jacobian products, optimiser variants).
"""

# The stubs have no body: they state signatures, not computations.
# mypy: disable-error-code="empty-body"

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence
from functools import cache
from typing import Annotated, Any, NamedTuple

import numpy as np

Array = np.ndarray
Generator = np.random.Generator

_CORE: list[Callable[..., Any]] = []
_EXTENSIONS: list[Callable[..., Any]] = []


def _core(f: Callable[..., Any]) -> Callable[..., Any]:
    _CORE.append(f)
    return f


def _extension(f: Callable[..., Any]) -> Callable[..., Any]:
    _EXTENSIONS.append(f)
    return f


# ---- named outputs and cotangents: what a tuple holds, in order ----------------------------------

class CellState(NamedTuple):
    """An LSTM cell's new state."""

    h_new: Array
    c_new: Array


class LayerOutput(NamedTuple):
    """A layer's every state y and last state h_T."""

    y: Array
    h_T: Array  # noqa: N815


class LSTMLayerOutput(NamedTuple):
    y: Array
    h_T: Array  # noqa: N815
    c_T: Array  # noqa: N815


class ClipGradNormOutput(NamedTuple):
    clipped: list[Array]
    total: float


class SeedStep(NamedTuple):
    w_new: Array
    b_new: Array


class AdamStep(NamedTuple):
    w_new: Array
    m_new: Array
    v_new: Array


class LinearInit(NamedTuple):
    w: Array
    b: Array


class RecurrentInit(NamedTuple):
    w_ih: Array
    w_hh: Array
    b_ih: Array
    b_hh: Array


class InputGradient(NamedTuple):
    dx: Array


class LinearGradients(NamedTuple):
    """None for an absent bias (here and below)."""

    dx: Array
    dw: Array
    db: Array | None


class LogitsGradient(NamedTuple):
    dlogits: Array


class PReLUGradients(NamedTuple):
    dx: Array
    da: Array


class CellGradients(NamedTuple):
    """Of an Elman or GRU cell."""

    dx: Array
    dh: Array
    dw_ih: Array
    dw_hh: Array
    db_ih: Array | None
    db_hh: Array | None


class LayerGradients(NamedTuple):
    """Of an Elman or GRU layer."""

    dx: Array
    dh0: Array
    dw_ih: Array
    dw_hh: Array
    db_ih: Array | None
    db_hh: Array | None


class LSTMCellGradients(NamedTuple):
    dx: Array
    dh: Array
    dc: Array
    dw_ih: Array
    dw_hh: Array
    db_ih: Array | None
    db_hh: Array | None


class LSTMLayerGradients(NamedTuple):
    dx: Array
    dh0: Array
    dc0: Array
    dw_ih: Array
    dw_hh: Array
    db_ih: Array | None
    db_hh: Array | None


class ProjectionCellGradients(NamedTuple):
    dx: Array
    dh: Array
    dc: Array
    dw_ih: Array
    dw_hh: Array
    dw_hr: Array
    db_ih: Array | None
    db_hh: Array | None


class ModuleGradients(NamedTuple):
    """dstate is None when state is None, else shaped like it; dparams has params' keys."""

    dx: Array
    dstate: Any
    dparams: dict[str, Array]


class CellCotangent(NamedTuple):
    """The cotangent of an LSTM cell's (h', c'), passed as one argument."""

    gh: Array
    gc: Array


class LayerCotangent(NamedTuple):
    """The cotangent of a layer's (y, h_T)."""

    gy: Array
    ghT: Array  # noqa: N815


class LSTMLayerCotangent(NamedTuple):
    """The cotangent of an LSTM layer's (y, h_T, c_T)."""

    gy: Array
    ghT: Array  # noqa: N815
    gcT: Array  # noqa: N815


# ---- CORE: the published contract ---------------------------------------------------------------

@_core
def linear(x: Array, w: Array, b: Array | None = None) -> Annotated[Array, "y"]:
    """y = x wᵀ + b"""


@_core
def rnn_cell(x: Array, h: Array, w_ih: Array, w_hh: Array, b_ih: Array | None = None,
             b_hh: Array | None = None, nonlinearity: str = "tanh") -> Annotated[Array, "h_new"]:
    """h' = nonlinearity(x w_ihᵀ + b_ih + h w_hhᵀ + b_hh), nonlinearity "tanh" or "relu"."""


@_core
def gru_cell(x: Array, h: Array, w_ih: Array, w_hh: Array, b_ih: Array | None = None,
             b_hh: Array | None = None) -> Annotated[Array, "h_new"]:
    """PyTorch's reset-gate variant: n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n
    + z ⊙ h."""


@_core
def lstm_cell(x: Array, h: Array, c: Array, w_ih: Array, w_hh: Array, b_ih: Array | None = None,
              b_hh: Array | None = None) -> CellState:
    """c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c'), gate blocks i, f, g, o."""


@_core
def rnn_layer(x: Array, h0: Array, w_ih: Array, w_hh: Array, b_ih: Array | None = None,
              b_hh: Array | None = None, nonlinearity: str = "tanh") -> LayerOutput:
    """rnn_cell over x (T, B, D) from h0: y (T, B, H) every state, h_T the last."""


@_core
def gru_layer(x: Array, h0: Array, w_ih: Array, w_hh: Array, b_ih: Array | None = None,
              b_hh: Array | None = None) -> LayerOutput:
    """gru_cell over x (T, B, D) from h0: y (T, B, H) every state, h_T the last."""


@_core
def lstm_layer(x: Array, h0: Array, c0: Array, w_ih: Array, w_hh: Array, b_ih: Array | None = None,
               b_hh: Array | None = None) -> LSTMLayerOutput:
    """lstm_cell over x (T, B, D) from (h0, c0) → the flat tuple (y, h_T, c_T): y (T, B, H) every h,
    h_T and c_T (B, H) the last state (not nn.LSTM's nested (y, (h_T, c_T)))."""


@_core
def dropout(x: Array, p: float, training: bool, rng: Generator) -> Annotated[Array, "y"]:
    """y = ξ ⊙ x / (1 − p), ξ ~ Bernoulli(1 − p) drawn from rng, in training; y = x otherwise."""


@_core
def xavier_uniform(shape: Sequence[int], gain: float, rng: Generator) -> Annotated[Array, "w"]:
    """An array of that shape, W ~ U(−bound, bound), bound = gain·√(6/(fan_in + fan_out))."""


@_core
def xavier_normal(shape: Sequence[int], gain: float, rng: Generator) -> Annotated[Array, "w"]:
    """An array of that shape, W ~ N(0, σ²), σ = gain·√(2/(fan_in + fan_out))."""


@_core
def sgd_step(w: Array, grad: Array, lr: float, weight_decay: float) -> Annotated[Array, "w_new"]:
    """w − lr·(grad + weight_decay·w)"""


@_core
def clip_grad_norm(grads: Sequence[Array], max_norm: float,
                   norm_type: float = 2.0) -> ClipGradNormOutput:
    """The clipped list g_i·min(max_norm/(total + 1e-6), 1) and the total norm of all grads."""


@_core
def cross_entropy(logits: Array, target: Array) -> Annotated[Array, "L"]:
    """Mean cross-entropy over all leading positions (logits (…, C), integer target (…))."""


# ---- EXTENSIONS: activations (seed 003), elementwise unless stated -------------------------------

@_extension
def threshold(x: Array) -> Annotated[Array, "y"]:
    """1 where x > 0 else 0"""


@_extension
def sigmoid(x: Array, alpha: float = 1.0) -> Annotated[Array, "y"]:
    """1 / (1 + exp(-alpha·x))"""


@_extension
def tanh(x: Array) -> Annotated[Array, "y"]:
    """tanh(x)"""


@_extension
def relu(x: Array) -> Annotated[Array, "y"]:
    """max(x, 0)"""


@_extension
def softplus(x: Array) -> Annotated[Array, "y"]:
    """log(1 + exp(x))"""


@_extension
def prelu(x: Array, a: Array) -> Annotated[Array, "y"]:
    """x if x > 0 else a·x   (a: scalar or per-channel, channel axis 1)"""


@_extension
def maxout(x: Array, k: int) -> Annotated[Array, "h"]:
    """The max over k consecutive features of the last axis."""


@_extension
def softmax(x: Array) -> Annotated[Array, "y_hat"]:
    """softmax over the last axis"""


@_extension
def log_softmax(x: Array) -> Annotated[Array, "log_y_hat"]:
    """log_softmax over the last axis"""


# ---- EXTENSIONS: losses and optimisers ---------------------------------------------------------

@_extension
def cross_entropy_sum(logits: Array, target: Array) -> Annotated[Array, "L"]:
    """The sum of the per-position cross-entropies."""


@_extension
def sgd_step_seed000(X_B: Array, y_B: Array, w: Array, b: float, eta: float,
                     lam: float) -> SeedStep:
    """One minibatch step of seed 000's linear regression with weight decay λ in the seed's
    convention (bias not decayed); the implementation maps it to its optimiser."""


@_extension
def adam_step(w: Array, grad: Array, m: Array, v: Array, t: int, lr: float, beta1: float,
              beta2: float, eps: float, weight_decay: float) -> AdamStep:
    """torch.optim.Adam's step, weight decay added to the gradient: g = grad + weight_decay·w."""


@_extension
def adamw_step(w: Array, grad: Array, m: Array, v: Array, t: int, lr: float, beta1: float,
               beta2: float, eps: float, weight_decay: float) -> AdamStep:
    """torch.optim.AdamW's step: w ← (1 − lr·weight_decay)·w, then Adam's update with g = grad."""


@_extension
def clip_grad_value(grads: Sequence[Array], clip_value: float) -> Annotated[list[Array], "clipped"]:
    """Each gradient clamped to [−clip_value, clip_value]."""


# ---- EXTENSIONS: initialisers, the parameters a freshly constructed torch.nn module starts from ---

@_extension
def torch_default_linear(out_features: int, in_features: int, rng: Generator) -> LinearInit:
    """nn.Linear's initial weight (out, in) and bias (out,)."""


@_extension
def torch_default_rnn(kind: str, input_size: int, hidden_size: int, rng: Generator) -> RecurrentInit:
    """The initial parameters of a one-layer nn.RNN, nn.GRU or nn.LSTM (kind "rnn", "gru", "lstm")."""


# ---- EXTENSIONS: vector-Jacobian products, vjp_NAME(cotangent, *args of NAME) --------------------

@_extension
def vjp_linear(g: Array, x: Array, w: Array, b: Array | None = None) -> LinearGradients:
    """The gradients of linear; db is None without a bias."""


@_extension
def vjp_cross_entropy(g: Array, logits: Array, target: Array) -> LogitsGradient:
    """The gradient of cross_entropy with respect to the logits."""


@_extension
def vjp_sigmoid(g: Array, x: Array, alpha: float = 1.0) -> InputGradient:
    """The gradient of sigmoid."""


@_extension
def vjp_tanh(g: Array, x: Array) -> InputGradient:
    """The gradient of tanh."""


@_extension
def vjp_relu(g: Array, x: Array) -> InputGradient:
    """The gradient of relu (0 at x = 0)."""


@_extension
def vjp_softplus(g: Array, x: Array) -> InputGradient:
    """The gradient of softplus."""


@_extension
def vjp_prelu(g: Array, x: Array, a: Array) -> PReLUGradients:
    """The gradients of prelu (da has a's shape; a·g at x = 0)."""


@_extension
def vjp_maxout(g: Array, x: Array, k: int) -> InputGradient:
    """The gradient of maxout (g of shape (…, m) for x of shape (…, m·k))."""


@_extension
def vjp_dropout(g: Array, x: Array, p: float, training: bool, rng: Generator) -> InputGradient:
    """The gradient of dropout (same rng state as the forward)."""


@_extension
def vjp_lstm_cell(g: CellCotangent, x: Array, h: Array, c: Array, w_ih: Array, w_hh: Array,
                  b_ih: Array | None = None, b_hh: Array | None = None) -> LSTMCellGradients:
    """The 7 gradients of lstm_cell."""


@_extension
def vjp_rnn_cell(gh: Array, x: Array, h: Array, w_ih: Array, w_hh: Array, b_ih: Array | None = None,
                 b_hh: Array | None = None, nonlinearity: str = "tanh") -> CellGradients:
    """The gradients of rnn_cell (None for an absent bias)."""


@_extension
def vjp_rnn_layer(g: LayerCotangent, x: Array, h0: Array, w_ih: Array, w_hh: Array,
                  b_ih: Array | None = None, b_hh: Array | None = None,
                  nonlinearity: str = "tanh") -> LayerGradients:
    """The gradients of rnn_layer (BPTT)."""


# ---- EXTENSIONS: GRU, the seeds' variant (reset before the matmul), which no torch module computes --

@_extension
def gru_cell_textbook(x: Array, h: Array, w_ih: Array, w_hh: Array, b_ih: Array | None = None,
                      b_hh: Array | None = None) -> Annotated[Array, "h_new"]:
    """n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn); r, z, h' as gru_cell."""


@_extension
def vjp_gru_cell(gh: Array, x: Array, h: Array, w_ih: Array, w_hh: Array, b_ih: Array | None = None,
                 b_hh: Array | None = None) -> CellGradients:
    """The gradients of gru_cell (None for an absent bias)."""


@_extension
def vjp_gru_cell_textbook(gh: Array, x: Array, h: Array, w_ih: Array, w_hh: Array,
                          b_ih: Array | None = None, b_hh: Array | None = None) -> CellGradients:
    """The gradients of gru_cell_textbook (None for an absent bias)."""


@_extension
def vjp_gru_layer(g: LayerCotangent, x: Array, h0: Array, w_ih: Array, w_hh: Array,
                  b_ih: Array | None = None, b_hh: Array | None = None) -> LayerGradients:
    """The gradients of gru_layer (backpropagation through time)."""


# ---- EXTENSIONS: LSTM, the layer's gradients and nn.LSTM's projection (proj_size) ---------------

@_extension
def vjp_lstm_layer(g: LSTMLayerCotangent, x: Array, h0: Array, c0: Array, w_ih: Array, w_hh: Array,
                   b_ih: Array | None = None, b_hh: Array | None = None) -> LSTMLayerGradients:
    """The gradients of lstm_layer (backpropagation through time)."""


@_extension
def lstm_cell_projection(x: Array, h: Array, c: Array, w_ih: Array, w_hh: Array, w_hr: Array,
                         b_ih: Array | None = None, b_hh: Array | None = None) -> CellState:
    """lstm_cell with h' = w_hr (o ⊙ tanh c'): (B, P); w_hh (4H, P), w_hr (P, H)."""


@_extension
def vjp_lstm_cell_projection(g: CellCotangent, x: Array, h: Array, c: Array, w_ih: Array,
                             w_hh: Array, w_hr: Array, b_ih: Array | None = None,
                             b_hh: Array | None = None) -> ProjectionCellGradients:
    """The gradients of lstm_cell_projection (None for an absent bias)."""


# ---- EXTENSIONS: whole recurrent modules (spec/sequence.md), nn.RNN / GRU / LSTM with options -----

@_extension
def rnn_module(mode: str, x: Array, state: Any, params: dict[str, Array], *, num_layers: int = 1,
               bidirectional: bool = False, batch_first: bool = False, nonlinearity: str = "tanh",
               proj_size: int = 0, lengths: Array | None = None, dropout: float = 0.0,
               training: bool = False,
               rng: Generator | None = None) -> Annotated[tuple[Array, ...], "y", "h_n", "c_n"]:
    """nn.RNN / nn.GRU / nn.LSTM (mode "rnn", "gru", "lstm"): (y, h_n), and c_n for "lstm".

    params: a dict by PyTorch's names weight_ih_l0, …, *_reverse, weight_hr_l0; state None, h0 or
    (h0, c0), each (num_layers·directions, B, ·); lengths (B,) ints: a packed batch, outputs 0
    beyond each length.
    """


@_extension
def vjp_rnn_module(cotangents: Sequence[Array], mode: str, x: Array, state: Any,
                   params: dict[str, Array], *, num_layers: int = 1, bidirectional: bool = False,
                   batch_first: bool = False, nonlinearity: str = "tanh", proj_size: int = 0,
                   lengths: Array | None = None, dropout: float = 0.0, training: bool = False,
                   rng: Generator | None = None) -> ModuleGradients:
    """The gradients of rnn_module for cotangents (gy, gh_n[, gc_n])."""


# ---- derived: what the rest of nnspec reads -----------------------------------------------------

STUBS: dict[str, Callable[..., Any]] = {f.__name__: f for f in (*_CORE, *_EXTENSIONS)}


@cache
def signature(name: str) -> inspect.Signature:
    """The contract function's signature, annotations resolved."""
    return inspect.signature(STUBS[name], eval_str=True)


def parameters(name: str) -> tuple[str, ...]:
    """The contract function's parameter names, in order."""
    return tuple(signature(name).parameters)


@cache
def _hints(name: str) -> dict[str, Any]:
    return typing.get_type_hints(STUBS[name], include_extras=True)


def _fields(annotation: Any) -> tuple[str, ...] | None:
    """The field names of a NamedTuple type, else None."""
    fields = getattr(annotation, "_fields", None)
    return fields if isinstance(annotation, type) and issubclass(annotation, tuple) and fields else None


def returns(name: str) -> dict[str, Any]:
    """Each output of the contract function, in the order returned → its type."""
    annotation = _hints(name)["return"]
    fields = _fields(annotation)
    if fields is not None:
        return {f: typing.get_type_hints(annotation)[f] for f in fields}
    base, *names = typing.get_args(annotation)
    element = typing.get_args(base)[0] if len(names) > 1 else base
    return dict.fromkeys(names, element)


def outputs(name: str) -> tuple[str, ...]:
    """The names of the contract function's outputs, in the order returned."""
    return tuple(returns(name))


def arguments(name: str) -> tuple[str | tuple[str, ...], ...]:
    """The parameter names, a cotangent tuple parameter as the names of its items: ``(gh, gc)``."""
    hints = _hints(name)
    return tuple(_fields(hints.get(p)) or p for p in parameters(name))


def _text(name: str) -> str:
    """``name(params) -> outputs: what it computes``, on one line."""
    params = []
    for p, arg in zip(signature(name).parameters.values(), arguments(name), strict=True):
        if p.kind is inspect.Parameter.KEYWORD_ONLY and "*" not in params:
            params.append("*")
        label = arg if isinstance(arg, str) else "(" + ", ".join(arg) + ")"
        default = "" if p.default is inspect.Parameter.empty else (
            f'="{p.default}"' if isinstance(p.default, str) else f"={p.default}")
        params.append(label + default)
    outs = [f"{o}[]" if typing.get_origin(t) is list else o for o, t in returns(name).items()]
    shown = outs[0] if len(outs) == 1 and _fields(_hints(name)["return"]) is None else (
        "(" + ", ".join(outs) + ("," if len(outs) == 1 else "") + ")")
    doc = " ".join((inspect.getdoc(STUBS[name]) or "").split("\n\n")[0].split())
    return f"{name}({', '.join(params)}) -> {shown}: {doc}"


CORE: dict[str, str] = {f.__name__: _text(f.__name__) for f in _CORE}
EXTENSIONS: dict[str, str] = {f.__name__: _text(f.__name__) for f in _EXTENSIONS}
ALL: dict[str, str] = {**CORE, **EXTENSIONS}
