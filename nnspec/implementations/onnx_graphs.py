"""ONNX graphs of the contract's recurrent cells and activations, for the implementations that run
them (``onnx_reference``: onnx.reference.ReferenceEvaluator; ``onnx_runtime``: ONNX Runtime).

The weights are graph inputs, mapped from PyTorch's layout onto ONNX's (operators GRU-14,
LSTM-14 and RNN-14 of the ONNX specification):

- GRU: ONNX stacks the blocks z, r, h where PyTorch stacks r, z, n; B = [Wb, Rb] holds b_ih and
  b_hh apart, so nothing is summed. ``linear_before_reset=1`` is PyTorch's variant, h =
  tanh(W_h x + Wb_h + r ⊙ (R_h H + Rb_h)), the contract's ``gru_cell`` and ``gru_layer``;
  ``linear_before_reset=0`` (the operator's default) is the textbook cell, h = tanh(W_h x +
  R_h (r ⊙ H) + Rb_h + Wb_h), the contract's ``gru_cell_textbook``. Both keep H' = (1 − z) ⊙ h +
  z ⊙ H, PyTorch's convention. An exporter that drops the attribute turns PyTorch's GRU into the
  textbook one (microsoft/onnxscript#2852).
- LSTM: ONNX stacks i, o, f, c where PyTorch stacks i, f, g, o; no peepholes.
- RNN: one block; the activation is ONNX's ``Tanh`` or ``Relu``. A runner without the RNN
  operator's ``Relu`` (the reference evaluator has Tanh and Affine only) runs the ReLU cell one
  step at a time as the operator with the identity (``Affine``, α = 1, β = 0) followed by ONNX's
  ``Relu`` operator.

A cell is the layer's operator run over a sequence of length one. Raises ImplementationUnavailable
on import when the ``onnx`` package is absent (pip install 'nnspec[onnx]').
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np

from nnspec.checks.harness.loading import ImplementationUnavailable

try:
    import onnx
    from onnx import helper
except ImportError as exc:
    raise ImplementationUnavailable(f"the onnx package is not installed ({exc}); "
                                    f"pip install 'nnspec[onnx]'") from exc

#: The operator set the graphs are written for (GRU, LSTM, RNN: version 14; Softmax: 13).
OPSET = 17

#: ONNX's gate block k is PyTorch's block ONNX_FROM_TORCH[kind][k].
ONNX_FROM_TORCH = {"gru": (1, 0, 2), "lstm": (0, 3, 1, 2), "rnn": (0,)}

OPERATOR = {"gru": "GRU", "lstm": "LSTM", "rnn": "RNN"}

#: A runner: (model, {input name: array}) → the outputs, in the graph's order.
Runner = Callable[[onnx.ModelProto, dict[str, np.ndarray]], Sequence[np.ndarray]]


def onnx_weights(kind: str, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None,
                 b_hh: np.ndarray | None, dtype: np.dtype) -> dict[str, np.ndarray]:
    """PyTorch's w_ih (G·H, D), w_hh (G·H, H), b_ih, b_hh (G·H,) or None → ONNX's W (1, G·H, D),
    R (1, G·H, H) and B (1, 2·G·H) = [Wb, Rb], blocks reordered by :data:`ONNX_FROM_TORCH`."""
    H = w_hh.shape[1]
    order = ONNX_FROM_TORCH[kind]

    def reorder(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[k * H:(k + 1) * H] for k in order]).astype(dtype)

    zeros = np.zeros(len(order) * H, dtype)
    biases = [zeros if b is None else reorder(b) for b in (b_ih, b_hh)]
    return {"W": reorder(w_ih)[None], "R": reorder(w_hh)[None],
            "B": np.concatenate(biases)[None]}


def _tensor(name: str, elem: int, rank: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, [None] * rank)


@cache
def recurrent_model(kind: str, hidden: int, dtype: np.dtype, activation: str = "Tanh",
                    linear_before_reset: int = 1) -> onnx.ModelProto:
    """One ONNX GRU, LSTM or RNN operator over X (T, B, D) from initial_h (1, B, H) (and
    initial_c for the LSTM): outputs Y (T, 1, B, H), Y_h (1, B, H) (and Y_c).
    ``linear_before_reset``: the GRU's variant, 1 PyTorch's, 0 the textbook one."""
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    states = ["initial_h", "initial_c"] if kind == "lstm" else ["initial_h"]
    outputs = ["Y", "Y_h", "Y_c"] if kind == "lstm" else ["Y", "Y_h"]
    attributes: dict[str, Any] = {"hidden_size": hidden}
    if kind == "gru":
        attributes["linear_before_reset"] = linear_before_reset
    if kind == "rnn":
        attributes["activations"] = [activation]
        if activation == "Affine":  # the identity α·x + β, for a Relu applied by its own operator
            attributes.update(activation_alpha=[1.0], activation_beta=[0.0])
    # The LSTM's inputs are X, W, R, B, sequence_lens, initial_h, initial_c: "" skips one.
    node = helper.make_node(OPERATOR[kind], ["X", "W", "R", "B", "", *states], outputs,
                            **attributes)
    graph = helper.make_graph(
        [node], f"nnspec_{kind}",
        [_tensor(n, elem, 3) for n in ("X", "W", "R")] + [_tensor("B", elem, 2)]
        + [_tensor(s, elem, 3) for s in states],
        [_tensor("Y", elem, 4)] + [_tensor(o, elem, 3) for o in outputs[1:]])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


@cache
def elementwise_model(op: str, dtype: np.dtype) -> onnx.ModelProto:
    """One operator on X of any rank (Softmax and LogSoftmax over the last axis)."""
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    attributes: dict[str, Any] = {"axis": -1} if op in ("Softmax", "LogSoftmax") else {}
    graph = helper.make_graph([helper.make_node(op, ["X"], ["Y"], **attributes)], f"nnspec_{op}",
                              [helper.make_tensor_value_info("X", elem, None)],
                              [helper.make_tensor_value_info("Y", elem, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def contract_functions(run: Runner, dtype: Any, *, relu_in_rnn: bool = True
                       ) -> dict[str, Callable[..., Any]]:
    """The contract's cells, layers and activations computed by ONNX graphs run by ``run`` in
    ``dtype``. ``relu_in_rnn``: whether the runner's RNN operator has the Relu activation."""
    dt = np.dtype(dtype)

    def layer(kind: str, x, states, w_ih, w_hh, b_ih, b_hh, activation="Tanh",
              linear_before_reset=1):
        if x.shape[0] == 0:  # no step: y is empty and the state is the initial one
            return (np.zeros((0, *states[0].shape), dt), *states)
        if activation == "Relu" and not relu_in_rnn:
            ys = []
            h = states[0]
            for x_t in x:
                _, h_pre = layer("rnn", x_t[None], (h,), w_ih, w_hh, b_ih, b_hh, "Affine")
                h = elementwise("Relu")(h_pre)
                ys.append(h)
            return np.stack(ys), h
        names = ("initial_h", "initial_c")[:len(states)]
        feeds = {"X": np.asarray(x, dt), **onnx_weights(kind, w_ih, w_hh, b_ih, b_hh, dt),
                 **{n: np.asarray(s, dt)[None] for n, s in zip(names, states, strict=True)}}
        model = recurrent_model(kind, w_hh.shape[1], dt, activation, linear_before_reset)
        Y, *finals = run(model, feeds)
        return (np.asarray(Y)[:, 0], *(np.asarray(s)[0] for s in finals))

    def rnn_activation(nonlinearity: str) -> str:
        activation = {"tanh": "Tanh", "relu": "Relu"}.get(nonlinearity)
        if activation is None:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        return activation

    def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        return layer("rnn", x[None], (h,), w_ih, w_hh, b_ih, b_hh, rnn_activation(nonlinearity))[1]

    def rnn_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
        return layer("rnn", x, (h0,), w_ih, w_hh, b_ih, b_hh, rnn_activation(nonlinearity))

    def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        return layer("gru", x[None], (h,), w_ih, w_hh, b_ih, b_hh)[1]

    def gru_cell_textbook(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        return layer("gru", x[None], (h,), w_ih, w_hh, b_ih, b_hh, linear_before_reset=0)[1]

    def gru_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
        return layer("gru", x, (h0,), w_ih, w_hh, b_ih, b_hh)

    def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
        return tuple(layer("lstm", x[None], (h, c), w_ih, w_hh, b_ih, b_hh)[1:])

    def lstm_layer(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
        return layer("lstm", x, (h0, c0), w_ih, w_hh, b_ih, b_hh)

    def elementwise(op: str) -> Callable[[np.ndarray], np.ndarray]:
        def f(x):
            return np.asarray(run(elementwise_model(op, dt), {"X": np.asarray(x, dt)})[0])
        return f

    def sigmoid(x, alpha=1.0):
        return elementwise("Sigmoid")(np.asarray(alpha * x, dt))

    return {"rnn_cell": rnn_cell, "rnn_layer": rnn_layer, "gru_cell": gru_cell,
            "gru_cell_textbook": gru_cell_textbook, "gru_layer": gru_layer,
            "lstm_cell": lstm_cell, "lstm_layer": lstm_layer,
            "sigmoid": sigmoid, "tanh": elementwise("Tanh"), "softmax": elementwise("Softmax"),
            "log_softmax": elementwise("LogSoftmax")}
