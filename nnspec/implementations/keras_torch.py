"""Keras 3 on its torch backend in float32, Keras' default precision: SimpleRNNCell, GRUCell
(``reset_after=True`` as ``gru_cell``, ``reset_after=False`` as ``gru_cell_textbook``), LSTMCell
and the layers SimpleRNN, GRU, LSTM. Forward only.

The weight mapping is nnspec.implementations.keras_cells'. Keras' backend is chosen before its
first import (``KERAS_BACKEND=torch``); a process that already runs Keras on another backend
cannot load this module, so it runs in a worker process of its own (the default isolation).
float32, because Keras 3.15's torch backend does not keep float64: ``ops.matmul`` of two float64
tensors computes and returns float32 (keras-team/keras#23704), so its cells built with
``dtype="float64"`` compute in float32 (``keras_torch_float64`` makes that claim, and fails).
Unavailable (its checks skip) without the keras package: pip install 'nnspec[keras]'.
"""

from __future__ import annotations

import numpy as np

from nnspec.implementations.keras_cells import contract_functions, import_keras

DTYPE = np.float32

keras = import_keras("torch")

globals().update(contract_functions(keras, DTYPE))
