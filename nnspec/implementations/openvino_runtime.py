"""OpenVINO's CPU plugin running the ONNX graphs of nnspec.implementations.onnx_graphs in float32:
the GRU (linear_before_reset=1 as gru_cell and gru_layer, 0 as gru_cell_textbook), LSTM and RNN
operators, and Sigmoid, Tanh, Softmax and LogSoftmax. Forward only.

The mapping is onnx_graphs': GRU blocks z, r, h, LSTM blocks i, o, f, c, B = [Wb, Rb]. OpenVINO's
ONNX frontend reads each graph into its GRUSequence, LSTMSequence and RNNSequence operations: it
reorders the LSTM's blocks into OpenVINO's own f, i, c, o (PyTorch's weights handed to those
operations unreordered are lstm.bug.gate_order_openvino), keeps PyTorch's H' = (1 − z) ⊙ h + z ⊙ H
and, for linear_before_reset=1, Rb_h inside r ⊙ (R_h H + Rb_h), and sums the other bias pairs
(Wb_z + Rb_z …) into one, which is exact algebra up to one rounding.

The graphs are compiled for "CPU" with ``INFERENCE_PRECISION_HINT`` f32: without it the plugin
runs a float32 model in bf16 (or f16) on CPUs with AVX512_BF16 or AMX, with errors of 1e-4 to 1e-2
on the checks' cells (the atlas' finding ``openvino_bf16_default``). One thread, so the results do
not depend on the machine's core count. Compiling takes about 65 ms for a small GRU against 0.2 ms
for a call, so each graph is compiled once per set of input shapes. Unavailable (its checks skip)
without the onnx and openvino packages: pip install 'nnspec[openvino]'.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from nnspec.checks.harness.loading import ImplementationUnavailable

# `import openvino` sends a usage event to Google Analytics (openvino_telemetry, from a forked
# process) unless the user opted out with a consent file in the home directory or the process
# looks like a CI job (CI=true, TF_BUILD, JENKINS_URL). Checking a framework must not report to a
# third party: CI=true is set for this import alone, then restored.
_ci = os.environ.get("CI")
os.environ["CI"] = "true"
try:
    import openvino
except ImportError as exc:
    raise ImplementationUnavailable(f"the openvino package is not installed ({exc}); "
                                    f"pip install 'nnspec[openvino]'") from exc
finally:
    if _ci is None:
        del os.environ["CI"]
    else:
        os.environ["CI"] = _ci

try:
    from nnspec.implementations.onnx_graphs import contract_functions
except ImplementationUnavailable as exc:  # openvino without onnx: the graphs cannot be built
    raise ImplementationUnavailable(f"{exc}; the OpenVINO adapter needs it too: "
                                    f"pip install 'nnspec[openvino]'") from exc

DTYPE = np.float32

#: What the CPU plugin is compiled with: float32 arithmetic, one thread.
CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}

_core = openvino.Core()


def runner(config: dict[str, Any]) -> Callable[[Any, dict[str, np.ndarray]], list[np.ndarray]]:
    """``run(model, feeds)``: an onnx.ModelProto run on ``feeds`` by the CPU plugin compiled with
    ``config``, once per graph and input shapes; the outputs in the graph's order."""
    compiled_models: dict[tuple[int, tuple[tuple[str, tuple[int, ...]], ...]], Any] = {}

    def run(model: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        key = (id(model), tuple((name, a.shape) for name, a in feeds.items()))
        if key not in compiled_models:
            read = _core.read_model(model.SerializeToString(), b"")
            read.reshape({name: list(a.shape) for name, a in feeds.items()})
            compiled_models[key] = _core.compile_model(read, "CPU", config)
        compiled = compiled_models[key]
        results = compiled(feeds)
        return [np.asarray(results[output]) for output in compiled.outputs]

    return run


globals().update(contract_functions(runner(CONFIG), DTYPE))
