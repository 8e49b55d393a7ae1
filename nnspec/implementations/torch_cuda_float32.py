"""PyTorch on CUDA in float32, TF32 off; unavailable (its checks skip) without a GPU."""

import numpy as np

from nnspec.implementations.torch_backend import cuda_backend

_backend = cuda_backend(np.float32)
DTYPE = _backend.DTYPE
globals().update(_backend.functions())
