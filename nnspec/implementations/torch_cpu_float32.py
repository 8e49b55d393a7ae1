"""PyTorch on the CPU in float32."""

import numpy as np

from nnspec.implementations.torch_backend import TorchBackend

_backend = TorchBackend("cpu", np.float32)
DTYPE = _backend.DTYPE
globals().update(_backend.functions())
