"""ONNX Runtime's CPU kernels running the ONNX graphs of nnspec.implementations.onnx_graphs in
float32 (its GRU, LSTM and RNN kernels are float32 only): the GRU (linear_before_reset=1 as
gru_cell and gru_layer, 0 as gru_cell_textbook), LSTM and RNN operators, and Sigmoid, Tanh, Softmax
and LogSoftmax. Forward only.

A correct alternative of the corpus (checks/oracle/alternatives.py). Unavailable (its checks skip)
without the onnx and onnxruntime packages.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnspec.checks.harness.loading import ImplementationUnavailable
from nnspec.implementations.onnx_graphs import contract_functions

try:
    import onnxruntime
except ImportError as exc:
    raise ImplementationUnavailable(f"the onnxruntime package is not installed ({exc}); "
                                    f"pip install 'nnspec[onnx]'") from exc

DTYPE = np.float32

_sessions: dict[int, Any] = {}


def _run(model: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run ``model`` in one CPU inference session per graph, built on first use; one thread, so
    the results do not depend on the machine's core count."""
    if id(model) not in _sessions:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        _sessions[id(model)] = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return _sessions[id(model)].run(None, feeds)


globals().update(contract_functions(_run, DTYPE))
