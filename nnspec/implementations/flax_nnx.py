"""Flax NNX's SimpleCell, GRUCell and LSTMCell (flax.nnx) in float64, gradients through jax.vjp
(nnspec.adapters.from_jax): the contract's rnn_cell, gru_cell and lstm_cell.

Importing it turns on JAX's float64 mode (``jax_enable_x64``) for the process. Unavailable (its
checks skip) without the jax and flax packages: pip install 'nnspec[jax]'.

The mapping from PyTorch's layout (blocks r, z, n of the GRU, i, f, g, o of the LSTM; an
``nnx.Linear`` kernel is the transposed weight, ``x @ kernel + bias``), after Flax 0.12's
flax/nnx/nn/recurrent.py:

| NNX parameter | from the contract |
| --- | --- |
| SimpleCell ``dense_i`` kernel, bias; ``dense_h`` kernel (no bias) | w_ihᵀ, b_ih + b_hh; w_hhᵀ |
| GRUCell ``dense_i`` kernel (D, 3H), bias (3H,), blocks r, z, n | w_ihᵀ; b_ir + b_hr, b_iz + b_hz, b_in |
| GRUCell ``dense_h`` kernel (H, 3H), blocks r, z, n, **no bias** | w_hhᵀ; b_hn has no place |
| LSTMCell ``ii``, ``if_``, ``ig``, ``io`` kernel (no bias) | W_ikᵀ for k = i, f, g, o |
| LSTMCell ``hi``, ``hf``, ``hg``, ``ho`` kernel, bias | W_hkᵀ, b_ik + b_hk |

NNX's GRUCell computes n = tanh(W_in x + b_in + r ⊙ (W_hn h)), PyTorch's reset-after candidate
without b_hn (google/flax#5594): no NNX parameter can hold b_hn, whose term r ⊙ b_hn depends on
the reset gate, so the mapping drops it and ``gru_cell`` here is PyTorch's cell only when b_hn = 0.
It is exposed as ``gru_cell`` so that the checks show it (a finding of reports/atlas.md), not as
a correct implementation; flax.linen's GRUCell (``flax_cells``) has the bias and conforms.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from nnspec.adapters import from_jax, import_flax

jax, nnx = import_flax("nnx")

DTYPE = np.float64
_F64 = jax.numpy.float64
_ACTIVATIONS: dict[str, Callable[..., Any]] = {"tanh": jax.numpy.tanh, "relu": jax.nn.relu}


def _split(a, n):
    return jax.numpy.split(a, n, axis=0)


@cache
def _graph(cls: type, D: int, H: int, nonlinearity: str = "tanh") -> Any:
    """The graph definition of one NNX cell of these sizes (its parameters come from each call)."""
    options: dict[str, Any] = {"dtype": _F64, "param_dtype": _F64}
    if cls is nnx.SimpleCell:
        options["activation_fn"] = _ACTIVATIONS[nonlinearity]
    # Built while a call is traced by jax.jit: its initial values must be arrays, not tracers.
    with jax.ensure_compile_time_eval():
        graphdef, state = nnx.split(cls(D, H, rngs=nnx.Rngs(0), **options))
    return graphdef, state


def _apply(cls: type, params: dict[str, dict[str, Any]], carry: Any, x: Any,
           nonlinearity: str = "tanh") -> Any:
    """Call an NNX cell of class ``cls`` with ``params`` in place of its own; its new carry."""
    graphdef, cached = _graph(cls, x.shape[1], _hidden(params), nonlinearity)
    state = jax.tree_util.tree_map(lambda a: a, cached)  # a copy: the cached state stays as built
    values = nnx.to_pure_dict(state)
    for layer, arrays in params.items():
        values[layer] = {**values[layer], **arrays}
    nnx.replace_by_pure_dict(state, values)
    new_carry, _ = nnx.merge(graphdef, state)(carry, x)
    return new_carry


def _hidden(params: dict[str, dict[str, Any]]) -> int:
    """The hidden size H, from a recurrent kernel (H, G·H)."""
    kernel = params["dense_h"]["kernel"] if "dense_h" in params else params["hi"]["kernel"]
    return int(kernel.shape[0])


def _simple(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    """The Elman cell by nnx.SimpleCell."""
    if nonlinearity not in _ACTIVATIONS:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    params = {"dense_i": {"kernel": w_ih.T, "bias": b_ih + b_hh}, "dense_h": {"kernel": w_hh.T}}
    return _apply(nnx.SimpleCell, params, h, x, nonlinearity)


def _gru(x, h, w_ih, w_hh, b_ih, b_hh):
    """nnx.GRUCell: the reset-after GRU without b_hn, which the mapping drops."""
    (b_ir, b_iz, b_in), (b_hr, b_hz, _b_hn) = _split(b_ih, 3), _split(b_hh, 3)
    bias = jax.numpy.concatenate([b_ir + b_hr, b_iz + b_hz, b_in])
    params = {"dense_i": {"kernel": w_ih.T, "bias": bias}, "dense_h": {"kernel": w_hh.T}}
    return _apply(nnx.GRUCell, params, h, x)


def _lstm(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """nnx.LSTMCell, whose carry is (c, h)."""
    params = {}
    for gate, W_i, W_h, b_k in zip("ifgo", _split(w_ih, 4), _split(w_hh, 4), _split(b_ih + b_hh, 4),
                                   strict=True):
        params["if_" if gate == "f" else f"i{gate}"] = {"kernel": W_i.T}
        params[f"h{gate}"] = {"kernel": W_h.T, "bias": b_k}
    c_new, h_new = _apply(nnx.LSTMCell, params, (c, h), x)
    return h_new, c_new


# Compiled per shape: op by op, JAX compiles each primitive anew for every shape the checks draw.
_rnn_module = from_jax(jax.jit(_simple, static_argnames="nonlinearity"), kind="rnn", dtype=DTYPE,
                       name="flax.nnx.SimpleCell")
_gru_module = from_jax(jax.jit(_gru), kind="gru", dtype=DTYPE, name="flax.nnx.GRUCell")
_lstm_module = from_jax(jax.jit(_lstm), kind="lstm", dtype=DTYPE, name="flax.nnx.LSTMCell")

rnn_cell, vjp_rnn_cell = _rnn_module.rnn_cell, _rnn_module.vjp_rnn_cell
gru_cell, vjp_gru_cell = _gru_module.gru_cell, _gru_module.vjp_gru_cell
lstm_cell, vjp_lstm_cell = _lstm_module.lstm_cell, _lstm_module.vjp_lstm_cell
