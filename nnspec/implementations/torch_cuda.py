"""PyTorch on CUDA in float64; unavailable (checks skip) on a machine without a GPU.

TF32 is switched off for matmuls and cuDNN, so float32 means IEEE float32 and the tolerance
model applies; the TF32 state is recorded by the CUDA report.
"""

import numpy as np
import torch

from nnspec.checks.implementation import ImplementationUnavailable
from nnspec.implementations.torch_backend import TorchBackend

if not torch.cuda.is_available():
    raise ImplementationUnavailable(
        f"no CUDA device (torch {torch.__version__}, built with CUDA {torch.version.cuda})"
    )
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

_backend = TorchBackend("cuda", np.float64)
DTYPE = _backend.DTYPE
globals().update(_backend.functions())
