"""Keras 3's recurrent cells and layers as contract functions, for whichever backend Keras was
imported with (``keras_torch`` and ``keras_jax`` select one and build their functions here).

The mapping from PyTorch's layout (checks/harness/contract.py) onto Keras' weights, as Keras 3
defines them (keras/src/layers/rnn/gru.py, lstm.py, simple_rnn.py; a kernel is the transposed
weight, ``x @ kernel + bias``):

| Keras weight | shape | from the contract |
| --- | --- | --- |
| GRU ``kernel``, ``recurrent_kernel`` | (D, 3H), (H, 3H) | w_ihᵀ, w_hhᵀ; blocks z, r, h ← r, z, n |
| GRU ``bias``, ``reset_after=True`` | (2, 3H) | [b_ih; b_hh], blocks z, r, h ¹ |
| GRU ``bias``, ``reset_after=False`` | (3H,) | b_ih + b_hh, blocks z, r, h |
| LSTM ``kernel``, ``recurrent_kernel`` | (D, 4H), (H, 4H) | w_ihᵀ, w_hhᵀ; blocks i, f, c, o ← i, f, g, o |
| LSTM ``bias`` | (4H,) | b_ih + b_hh (``unit_forget_bias`` only initialises it) |
| SimpleRNN ``kernel``, ``recurrent_kernel``, ``bias`` | (D, H), (H, H), (H,) | w_ihᵀ, w_hhᵀ, b_ih + b_hh |

¹ Row 1 is the recurrent bias, which Keras keeps inside r ⊙ (·) as PyTorch keeps b_hn.

So Keras' GRU with ``reset_after=True`` (its default) computes ``gru_cell`` (spec gru.cell.pytorch)
and with ``reset_after=False`` the textbook cell, ``gru_cell_textbook`` (gru.cell.textbook): the
reset gate scales h before the matmul, h̃ = tanh(x W_h + (r ⊙ h) U_h + b_h). Both keep Keras'
h' = z ⊙ h + (1 − z) ⊙ h̃, PyTorch's convention. PyTorch weights loaded into a Keras GRU without
the z, r block swap and the bias split give different outputs (keras-team/keras#15915). Every
layout is exact: only two biases outside r ⊙ (·) are summed before Keras adds them, a reordering
of a sum. :func:`to_keras` and :func:`from_keras` convert weights both ways; the round trip is
the identity up to that sum (b_hh comes back as zeros where Keras keeps one bias).

The cells run through ``Layer.stateless_call`` with the converted weights, so one built cell
serves every call. Keras' layers take x batch-major (B, T, D); the contract's (T, B, D) is
transposed on the way in and out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

#: Keras' block k of a kind is PyTorch's block KERAS_FROM_TORCH[kind][k] (GRU: z, r, h from r,
#: z, n; LSTM: i, f, c, o from i, f, g, o; RNN: one block).
KERAS_FROM_TORCH: dict[str, tuple[int, ...]] = {"gru": (1, 0, 2), "lstm": (0, 1, 2, 3), "rnn": (0,)}

#: The contract's nonlinearity → Keras' activation name (SimpleRNN).
ACTIVATIONS = {"tanh": "tanh", "relu": "relu"}


def _blocks(a: Any, order: Sequence[int], hidden: int, ops: Any) -> Any:
    """The row blocks of ``a`` (G·H, …) in ``order``."""
    return ops.concatenate([a[k * hidden:(k + 1) * hidden] for k in order], axis=0)


def to_keras(kind: str, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, *, reset_after: bool = True,
             order: Sequence[int] | None = None, ops: Any = np) -> list[Any]:
    """The contract's weights (PyTorch's layout; absent biases as zeros) → Keras' ``[kernel,
    recurrent_kernel, bias]`` for a ``kind`` cell (table above). ``ops``: the array namespace
    (NumPy, or ``keras.ops`` inside a traced call); ``order``: the block order (default
    :data:`KERAS_FROM_TORCH`; another one is a deliberate mis-mapping, for tests)."""
    order = KERAS_FROM_TORCH[kind] if order is None else tuple(order)
    hidden = w_hh.shape[1]
    kernel = ops.transpose(_blocks(w_ih, order, hidden, ops))
    recurrent = ops.transpose(_blocks(w_hh, order, hidden, ops))
    if kind == "gru" and reset_after:
        bias = ops.stack([_blocks(b_ih, order, hidden, ops), _blocks(b_hh, order, hidden, ops)])
    else:
        bias = _blocks(b_ih + b_hh, order, hidden, ops)
    return [kernel, recurrent, bias]


def from_keras(kind: str, kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray,
               *, reset_after: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keras' ``[kernel, recurrent_kernel, bias]`` → the contract's (w_ih, w_hh, b_ih, b_hh);
    a single Keras bias becomes b_ih, with b_hh zeros (the cell only sees their sum)."""
    order = KERAS_FROM_TORCH[kind]
    inverse = tuple(order.index(k) for k in range(len(order)))
    hidden = recurrent_kernel.shape[0]
    w_ih = _blocks(np.asarray(kernel).T, inverse, hidden, np)
    w_hh = _blocks(np.asarray(recurrent_kernel).T, inverse, hidden, np)
    bias = np.asarray(bias)
    if kind == "gru" and reset_after:
        return w_ih, w_hh, _blocks(bias[0], inverse, hidden, np), _blocks(bias[1], inverse, hidden, np)
    b_ih = _blocks(bias, inverse, hidden, np)
    return w_ih, w_hh, b_ih, np.zeros_like(b_ih)


def contract_functions(keras: Any, dtype: Any, *, order: Mapping[str, Sequence[int]] | None = None,
                       compile: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None
                       ) -> dict[str, Callable[..., Any]]:
    """The contract's cells and layers computed by Keras' ``SimpleRNNCell``, ``GRUCell``
    (``reset_after`` True: ``gru_cell``; False: ``gru_cell_textbook``), ``LSTMCell`` and the
    layers ``SimpleRNN``, ``GRU``, ``LSTM``, in ``dtype`` on ``keras``'s backend, forward only.
    ``order``: per kind, a block order other than :data:`KERAS_FROM_TORCH` (a mis-mapping).
    ``compile``: wraps each module's stateless call (``jax.jit`` on JAX, where op-by-op
    execution recompiles every primitive for every new shape)."""
    dt = np.dtype(dtype)
    ops = keras.ops
    built: dict[tuple[Any, ...], Any] = {}

    def block_order(kind: str) -> Sequence[int]:
        return (order or {}).get(kind, KERAS_FROM_TORCH[kind])

    def make(kind: str, layer: bool, D: int, H: int, reset_after: bool, phi: str
             ) -> Callable[..., Any]:
        """One Keras cell or layer for these sizes, built once, as its stateless call
        ``(weights, x, states) -> new states`` (a layer's: ``(y, *final states)``)."""
        key = (kind, layer, D, H, reset_after, phi)
        if key not in built:
            options: dict[str, Any] = {"dtype": dt.name}
            if kind == "gru":
                options["reset_after"] = reset_after
            if kind == "rnn":
                options["activation"] = ACTIVATIONS[phi]
            if layer:
                cls = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM,
                       "rnn": keras.layers.SimpleRNN}[kind]
                module = cls(H, return_sequences=True, return_state=True, **options)
                module.build((None, None, D))
            else:
                cls = {"gru": keras.layers.GRUCell, "lstm": keras.layers.LSTMCell,
                       "rnn": keras.layers.SimpleRNNCell}[kind]
                module = cls(H, **options)
                module.build((None, D))
            built[key] = stateless(module, layer)
        return built[key]

    def stateless(module: Any, layer: bool) -> Callable[..., Any]:
        # The non-trainable variables (the dropout seed) are constants: dropout is off.
        fixed = [v.value for v in module.non_trainable_variables]

        def call(weights: list[Any], x: Any, states: tuple[Any, ...]) -> tuple[Any, ...]:
            if layer:
                (y, *finals), _ = module.stateless_call(weights, fixed, x, initial_state=list(states))
                return (y, *finals)
            (_, new), _ = module.stateless_call(weights, fixed, x, list(states))
            return tuple(new)

        return compile(call) if compile else call

    def weights(kind: str, params: tuple[Any, ...], reset_after: bool) -> list[Any]:
        """The contract's (w_ih, w_hh, b_ih, b_hh) as Keras' weights, on its backend."""
        zeros = np.zeros(params[1].shape[0], dt)
        arrays = [np.asarray(a if a is not None else zeros, dt) for a in params]
        return [ops.convert_to_tensor(a, dtype=dt.name) for a in
                to_keras(kind, *arrays, reset_after=reset_after, order=block_order(kind))]

    def tensor(a: Any) -> Any:
        return ops.convert_to_tensor(np.asarray(a, dt), dtype=dt.name)

    def numpy(a: Any) -> np.ndarray:
        return np.asarray(ops.convert_to_numpy(a))

    def cell(kind: str, x, states, params, reset_after: bool = True, phi: str = "tanh"):
        call = make(kind, False, x.shape[1], states[0].shape[1], reset_after, phi)
        new = call(weights(kind, params, reset_after), tensor(x), tuple(tensor(s) for s in states))
        return tuple(numpy(s) for s in new)

    def layer(kind: str, x, states, params, phi: str = "tanh"):
        T, _, D = x.shape
        if T == 0:  # no step: y is empty and the state is the initial one
            return (np.zeros((0, *states[0].shape), dt), *(np.asarray(s, dt) for s in states))
        call = make(kind, True, D, states[0].shape[1], True, phi)
        y, *finals = call(weights(kind, params, True), tensor(np.swapaxes(x, 0, 1)),
                          tuple(tensor(s) for s in states))
        return (np.swapaxes(numpy(y), 0, 1), *(numpy(s) for s in finals))

    def nonlinearity_of(name: str) -> str:
        if name not in ACTIVATIONS:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {name!r}")
        return name

    def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        return cell("rnn", x, (h,), (w_ih, w_hh, b_ih, b_hh), phi=nonlinearity_of(nonlinearity))[0]

    def rnn_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        return layer("rnn", x, (h0,), (w_ih, w_hh, b_ih, b_hh), nonlinearity_of(nonlinearity))

    def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        return cell("gru", x, (h,), (w_ih, w_hh, b_ih, b_hh), reset_after=True)[0]

    def gru_cell_textbook(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        return cell("gru", x, (h,), (w_ih, w_hh, b_ih, b_hh), reset_after=False)[0]

    def gru_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
        return layer("gru", x, (h0,), (w_ih, w_hh, b_ih, b_hh))

    def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
        return cell("lstm", x, (h, c), (w_ih, w_hh, b_ih, b_hh))

    def lstm_layer(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
        return layer("lstm", x, (h0, c0), (w_ih, w_hh, b_ih, b_hh))

    return {"rnn_cell": rnn_cell, "rnn_layer": rnn_layer, "gru_cell": gru_cell,
            "gru_cell_textbook": gru_cell_textbook, "gru_layer": gru_layer,
            "lstm_cell": lstm_cell, "lstm_layer": lstm_layer}


def import_keras(backend: str, extra: str = "keras") -> Any:
    """Import Keras with ``backend``, which must be chosen before Keras' first import: raise
    ImplementationUnavailable when the backend's package (named like it: torch, jax, tensorflow)
    or Keras is absent — ``extra`` is the nnspec extra that installs them — or when this process
    already runs Keras on another backend (run each Keras implementation in a worker process of
    its own, the default)."""
    import importlib
    import os
    import sys

    from nnspec.checks.harness.loading import ImplementationUnavailable

    try:
        importlib.import_module(backend)
    except ImportError as exc:
        raise ImplementationUnavailable(f"the {backend} package is not installed ({exc}); "
                                        f"pip install 'nnspec[{extra}]'") from exc
    if sys.modules.get("keras") is not None:
        current = sys.modules["keras"].backend.backend()
        if current != backend:
            raise ImplementationUnavailable(
                f"Keras is already imported with the {current} backend in this process; the "
                f"{backend} backend needs a process of its own (drop --no-isolation)")
    os.environ["KERAS_BACKEND"] = backend
    try:
        import keras
    except ImportError as exc:
        raise ImplementationUnavailable(f"the keras package is not installed ({exc}); "
                                        f"pip install 'nnspec[{extra}]'") from exc
    if keras.backend.backend() != backend:
        raise ImplementationUnavailable(
            f"Keras runs on {keras.backend.backend()}, not {backend}")
    return keras
