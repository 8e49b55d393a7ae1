"""Keras 3's GRU, LSTM and SimpleRNN on the torch backend in float32, loaded the way
keras-team/keras#15915 loads PyTorch's weights: transposed, the GRU's two biases split, but the
gate blocks left in PyTorch's order r, z, n where Keras reads z, r, h. Forward only.

A deliberately mis-mapped adapter, not a conforming implementation: its GRU swaps the reset and
update gates, which the oracle names (``gru.bug.gate_order_zrn``); its LSTM and SimpleRNN, whose
block orders Keras shares with PyTorch, conform. It exists to show that the atlas
(reports/atlas.md) and checks/meta/test_atlas.py reject a wrong mapping and name it.
"""

from __future__ import annotations

import numpy as np

from nnspec.implementations.keras_cells import contract_functions, import_keras

DTYPE = np.float32

keras = import_keras("torch")

#: PyTorch's GRU blocks r, z, n handed to Keras unchanged (Keras reads them as z, r, h).
TORCH_ORDER = {"gru": (0, 1, 2)}

globals().update(contract_functions(keras, DTYPE, order=TORCH_ORDER))
