"""PyTorch on the CPU in float64 (the default implementation under test)."""

import numpy as np

from nnspec.implementations.torch_backend import TorchBackend

_backend = TorchBackend("cpu", np.float64)
DTYPE = _backend.DTYPE
globals().update(_backend.functions())
