"""Keras 3 on its JAX backend in float32, Keras' default precision: SimpleRNNCell, GRUCell
(``reset_after=True`` as ``gru_cell``, ``reset_after=False`` as ``gru_cell_textbook``), LSTMCell
and the layers SimpleRNN, GRU, LSTM. Forward only.

The weight mapping is nnspec.implementations.keras_cells'. Keras' backend is chosen before its
first import (``KERAS_BACKEND=jax``). float32, because Keras on JAX does not keep float64: without
JAX's ``jax_enable_x64`` a layer built with ``dtype="float64"`` keeps float64 variables but
computes in float32, and with it the GRU and LSTM cells still round to float32 (Keras'
``result_type`` maps float64 to float32, keras-team/keras#23704) while SimpleRNN's ``lax.scan``
then fails on a float64 carry turned float32. Unavailable (its checks skip) without the keras and
jax packages: pip install 'nnspec[keras,jax]'.
"""

from __future__ import annotations

import numpy as np

from nnspec.implementations.keras_cells import contract_functions, import_keras

DTYPE = np.float32

keras = import_keras("jax", extra="keras,jax")
import jax  # noqa: E402  (present: import_keras has imported it)

# Compiled per module and shape: JAX's op-by-op execution compiles each primitive anew for
# every shape the checks draw, seconds per call.
globals().update(contract_functions(keras, DTYPE, compile=jax.jit))
