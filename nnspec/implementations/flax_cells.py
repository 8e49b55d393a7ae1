"""flax.linen's SimpleCell, GRUCell and LSTMCell in float64, gradients through jax.vjp
(nnspec.adapters.from_jax): the contract's rnn_cell, gru_cell and lstm_cell.

A correct alternative of the corpus (checks/oracle/alternatives.py). Importing it turns on JAX's
float64 mode (``jax_enable_x64``) for the process. Unavailable (its checks skip) without the jax
and flax packages.

The mapping from PyTorch's layout (blocks r, z, n of the GRU, i, f, g, o of the LSTM; a Dense
kernel is the transposed weight, ``x @ kernel + bias``):

| Flax parameter | from the contract |
| --- | --- |
| SimpleCell ``i`` kernel, bias; ``h`` kernel (no bias) | w_ihᵀ, b_ih + b_hh; w_hhᵀ |
| GRUCell ``ir``, ``iz`` kernel, bias; ``hr``, ``hz`` kernel (no bias) | W_ikᵀ, b_ik + b_hk; W_hkᵀ |
| GRUCell ``in`` kernel, bias; ``hn`` kernel, bias | W_inᵀ, b_in; W_hnᵀ, b_hn (inside r ⊙ (·), as PyTorch) |
| LSTMCell ``ii``, ``if``, ``ig``, ``io`` kernel (no bias) | W_ikᵀ for k = i, f, g, o |
| LSTMCell ``hi``, ``hf``, ``hg``, ``ho`` kernel, bias | W_hkᵀ, b_ik + b_hk |

Every formula is representable exactly; only the two biases of a gate outside r ⊙ (·) are added
before the cell adds them to the products (Flax has one bias there), a reordering of a sum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnspec.adapters import from_jax, import_flax

jax, linen = import_flax("linen")

DTYPE = np.float64
_F64 = jax.numpy.float64


def _split(a: Any, count: int) -> list[Any]:
    return jax.numpy.split(a, count)


def _simple(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    """h' = φ(x w_ihᵀ + b_ih + b_hh + h w_hhᵀ) by flax.linen.SimpleCell."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    phi = jax.numpy.tanh if nonlinearity == "tanh" else jax.nn.relu
    params = {"i": {"kernel": w_ih.T, "bias": b_ih + b_hh}, "h": {"kernel": w_hh.T}}
    cell = linen.SimpleCell(features=w_hh.shape[1], activation_fn=phi, dtype=_F64,
                            param_dtype=_F64)
    return cell.apply({"params": params}, h, x)[0]


def _gru(x, h, w_ih, w_hh, b_ih, b_hh):
    """PyTorch's GRU by flax.linen.GRUCell (reset gate applied after W_hn h + b_hn)."""
    (W_ir, W_iz, W_in), (W_hr, W_hz, W_hn) = _split(w_ih, 3), _split(w_hh, 3)
    (b_ir, b_iz, b_in), (b_hr, b_hz, b_hn) = _split(b_ih, 3), _split(b_hh, 3)
    params = {"ir": {"kernel": W_ir.T, "bias": b_ir + b_hr}, "hr": {"kernel": W_hr.T},
              "iz": {"kernel": W_iz.T, "bias": b_iz + b_hz}, "hz": {"kernel": W_hz.T},
              "in": {"kernel": W_in.T, "bias": b_in}, "hn": {"kernel": W_hn.T, "bias": b_hn}}
    cell = linen.GRUCell(features=w_hh.shape[1], dtype=_F64, param_dtype=_F64)
    return cell.apply({"params": params}, h, x)[0]


def _lstm(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """PyTorch's LSTM by flax.linen.LSTMCell, whose carry is (c, h)."""
    params = {}
    b = b_ih + b_hh
    for gate, W_i, W_h, b_k in zip("ifgo", _split(w_ih, 4), _split(w_hh, 4), _split(b, 4),
                                   strict=True):
        params[f"i{gate}"] = {"kernel": W_i.T}
        params[f"h{gate}"] = {"kernel": W_h.T, "bias": b_k}
    cell = linen.LSTMCell(features=w_hh.shape[1], dtype=_F64, param_dtype=_F64)
    (c_new, h_new), _ = cell.apply({"params": params}, (c, h), x)
    return h_new, c_new


_rnn_module = from_jax(_simple, kind="rnn", dtype=DTYPE, name="flax.linen.SimpleCell")
_gru_module = from_jax(_gru, kind="gru", dtype=DTYPE, name="flax.linen.GRUCell")
_lstm_module = from_jax(_lstm, kind="lstm", dtype=DTYPE, name="flax.linen.LSTMCell")

rnn_cell, vjp_rnn_cell = _rnn_module.rnn_cell, _rnn_module.vjp_rnn_cell
gru_cell, vjp_gru_cell = _gru_module.gru_cell, _gru_module.vjp_gru_cell
lstm_cell, vjp_lstm_cell = _lstm_module.lstm_cell, _lstm_module.vjp_lstm_cell
