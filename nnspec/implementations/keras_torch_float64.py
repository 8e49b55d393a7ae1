"""Keras 3 on its torch backend with ``dtype="float64"``, declared float64 as Keras' variables are:
the cells and layers of nnspec.implementations.keras_torch. Forward only.

Not a conforming implementation: Keras 3.15's ``ops.matmul`` on torch computes two float64
tensors' product in float32 (keras-team/keras#23704), so the cells fail their float64 bounds by
float32-sized errors, which the oracle's diagnosis names. It exists so that the atlas
(reports/atlas.md) can show the dtype Keras really computes in.
"""

from __future__ import annotations

import numpy as np

from nnspec.implementations.keras_cells import contract_functions, import_keras

DTYPE = np.float64

keras = import_keras("torch")

globals().update(contract_functions(keras, DTYPE))
