"""PyTorch on CUDA in float32 with TF32 on, cuDNN's default for its RNNs (and matmuls with it):
it declares PRECISION = "tf32" and is checked as that. Unavailable (its checks skip) without a
GPU."""

import numpy as np

from nnspec.implementations.torch_backend import cuda_backend

_backend = cuda_backend(np.float32, tf32=True)
DTYPE = _backend.DTYPE
PRECISION = "tf32"
globals().update(_backend.functions())
