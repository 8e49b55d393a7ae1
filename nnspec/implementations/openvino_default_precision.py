"""OpenVINO's CPU plugin as nnspec.implementations.openvino_runtime runs it, but compiled with the
plugin's default inference precision instead of the hint f32: the float32 model as a user who
sets nothing runs it. On CPUs with bf16 arithmetic (AVX512_BF16, AMX) the plugin then computes in
bf16, which the float32 bounds reject (the atlas' finding ``openvino_bf16_default``); on CPUs
without it the default is f32 and this module conforms. Kept, like keras_torch_float64, to show
the oracle rejecting it and saying why. Unavailable without openvino: pip install
'nnspec[openvino]'.
"""

from __future__ import annotations

import numpy as np

from nnspec.implementations.onnx_graphs import contract_functions
from nnspec.implementations.openvino_runtime import CONFIG, runner

DTYPE = np.float32

#: openvino_runtime's configuration less the precision hint: one thread, the default precision.
DEFAULT_PRECISION = {k: v for k, v in CONFIG.items() if k != "INFERENCE_PRECISION_HINT"}

globals().update(contract_functions(runner(DEFAULT_PRECISION), DTYPE))
