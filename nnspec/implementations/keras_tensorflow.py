"""Keras 3 on its TensorFlow backend (what ``tf.keras`` is since TensorFlow 2.16) in float32:
SimpleRNNCell, GRUCell (``reset_after=True`` as ``gru_cell``, ``reset_after=False`` as
``gru_cell_textbook``), LSTMCell and the layers SimpleRNN, GRU, LSTM. Forward only.

The weight mapping is nnspec.implementations.keras_cells'. Keras' backend is chosen before its
first import (``KERAS_BACKEND=tensorflow``), so it runs in a worker process of its own (the default
isolation). Unavailable (its checks skip) without the tensorflow package: pip install
'nnspec[tensorflow]' (tensorflow-cpu).
"""

from __future__ import annotations

import numpy as np

from nnspec.implementations.keras_cells import contract_functions, import_keras

DTYPE = np.float32

keras = import_keras("tensorflow", extra="tensorflow")

globals().update(contract_functions(keras, DTYPE))
