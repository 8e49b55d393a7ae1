"""torch.nn.RNNCell, GRUCell and LSTMCell wrapped by nnspec.adapters.from_torch_cell, in float64:
the cells as a user checks a torch module, forward and gradients through autograd.

A correct alternative of the corpus (checks/oracle/alternatives.py): the same kernels as the
shipped ``torch`` implementation, reached through the adapters' parameter substitution
(torch.func.functional_call) instead of torch.nn.functional calls.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from nnspec.adapters import from_torch_cell

DTYPE = np.float64

_rnn = from_torch_cell(nn.RNNCell, kind="rnn", dtype=DTYPE)
_gru = from_torch_cell(nn.GRUCell, kind="gru", dtype=DTYPE)
_lstm = from_torch_cell(nn.LSTMCell, kind="lstm", dtype=DTYPE)

rnn_cell, vjp_rnn_cell = _rnn.rnn_cell, _rnn.vjp_rnn_cell
gru_cell, vjp_gru_cell = _gru.gru_cell, _gru.vjp_gru_cell
lstm_cell, vjp_lstm_cell = _lstm.lstm_cell, _lstm.vjp_lstm_cell
